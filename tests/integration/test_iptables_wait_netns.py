"""iptables-restore with and without -w against the real iptables in a network
namespace: the build here takes -w; a stand-in for an old CentOS 7 build
rejects it ("unrecognized option") and then runs the real restore."""

import os
import shutil

import pytest
from support.netns_helpers import Netns, NetnsRunner, skip_reason

from tapeshared.firewall.iptables.backend import IptablesFirewall
from tapeshared.firewall.spec import FirewallSpec

_REASON = skip_reason(["iptables", "iptables-restore"])
pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

SPEC = FirewallSpec(portals=("192.0.2.1",), sources=("192.0.2.2",))
ACCEPT = ("-A TAPESHARED -s 192.0.2.2/32 -d 192.0.2.1/32 -p tcp -m tcp --dport 3260 "
          "-m comment --comment tapeshared -j ACCEPT")


@pytest.fixture
def ns():
    space = Netns()
    yield space
    space.delete()


def old_restore(tmp_path) -> str:
    """An iptables-restore that knows no -w, as getopt_long says it."""
    path = tmp_path / "iptables-restore-old"
    path.write_text("#!/bin/sh\nfor a in \"$@\"; do\n"
                    "  if [ \"$a\" = -w ]; then\n"
                    "    echo \"iptables-restore: unrecognized option '-w'\" >&2; exit 2\n"
                    "  fi\ndone\nexec %s \"$@\"\n" % shutil.which("iptables-restore"))
    os.chmod(str(path), 0o755)
    return str(path)


def rules(ns):
    out = ns.run(["iptables", "-w", "-S", "TAPESHARED"]).stdout
    return [line for line in out.splitlines() if line.startswith("-A")]


def test_a_restore_that_takes_w_is_run_with_it(ns):
    runner = NetnsRunner(ns)
    fw = IptablesFirewall(runner, families=(4,))
    assert fw.ensure(SPEC)
    assert [c for c in runner.calls if c[0] == "iptables-restore"] == [
        ["iptables-restore", "-w", "--noflush"]]
    assert fw.restore_wait[4] is True
    assert ACCEPT in rules(ns)


def test_an_old_restore_without_w_still_brings_the_chain_in_step(ns, tmp_path):
    runner = NetnsRunner(ns)
    old = old_restore(tmp_path)
    fw = IptablesFirewall(runner, families=(4,), iptables_restore=old)
    assert fw.ensure(SPEC)
    assert [c for c in runner.calls if c[0] == old] == [[old, "-w", "--noflush"],
                                                        [old, "--noflush"]]
    assert ACCEPT in rules(ns)
    assert fw.ensure(SPEC) == [], "in step: nothing to restore"
    ns.run(["iptables", "-w", "-F", "TAPESHARED"])
    runner.calls.clear()
    assert fw.ensure(SPEC)
    assert [c for c in runner.calls if c[0] == old] == [[old, "--noflush"]], "remembered"
    assert ACCEPT in rules(ns)
