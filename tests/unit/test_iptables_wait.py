"""iptables-restore -w found out at run time: tried once, dropped for a build
that rejects it, never dropped for another failure. (Real iptables and a
stand-in old build in a network namespace: tests/integration/test_iptables_wait_netns.py.)"""

from typing import List

import pytest

from tapeshared.core.errors import TransientError
from tapeshared.firewall.iptables.backend import IptablesFirewall
from tapeshared.firewall.spec import FirewallSpec
from tapeshared.host.runner import Result

SPEC = FirewallSpec(portals=("192.0.2.1",), sources=("192.0.2.2",))
BATCH = "*filter\n:TAPESHARED - [0:0]\nCOMMIT\n"


class Old:
    """iptables with an empty filter table; its restore rejects -w (or everything)."""

    def __init__(self, reject: str = "iptables-restore: unrecognized option '-w'") -> None:
        self.reject = reject
        self.calls: List[List[str]] = []

    def run(self, argv, check=True, timeout=None, input_text=None, quiet=False):
        self.calls.append(list(argv))
        if argv[0] == "iptables" and "-S" in argv:
            return Result(argv, 0, "-P INPUT ACCEPT\n", "")
        if argv[0] == "iptables-restore" and ("-w" in argv or "Bad" in self.reject):
            assert not check, "a rejected -w must be looked at, not raised"
            return Result(argv, 2, "", self.reject)
        return Result(argv, 0, "", "")

    def restores(self):
        return [c for c in self.calls if c[0] == "iptables-restore"]


def test_a_restore_that_rejects_w_gets_the_batch_again_without_it_and_remembers():
    host = Old()
    fw = IptablesFirewall(host, families=(4,))
    fw._restore(4, BATCH)
    assert host.restores() == [["iptables-restore", "-w", "--noflush"],
                               ["iptables-restore", "--noflush"]]
    assert fw.restore_wait[4] is False and fw.restore_wait[6] is None, "per family"
    host.calls.clear()
    fw._restore(4, BATCH)
    assert host.restores() == [["iptables-restore", "--noflush"]]


def test_getopts_short_option_wording_counts_too():
    host = Old(reject="iptables-restore: invalid option -- 'w'")
    fw = IptablesFirewall(host, families=(4,))
    fw._restore(4, BATCH)
    assert host.restores()[-1] == ["iptables-restore", "--noflush"]


def test_another_failure_is_an_error_not_a_retry_without_w():
    host = Old(reject="iptables-restore: line 2 failed: Bad rule")
    fw = IptablesFirewall(host, families=(4,))
    with pytest.raises(TransientError, match="Bad rule"):
        fw.apply(fw.plan(fw.observe(SPEC), SPEC), SPEC)
    assert host.restores() == [["iptables-restore", "-w", "--noflush"]]
    assert fw.restore_wait[4] is None, "still not known"
