"""The daemon as a real process with a real firewall in its private network namespace:
what the host does to the tables (a missing parent chain, a flush) is retried and
repaired, and never stops the rest (renumbering) from being repaired."""

import re
import shutil

import pytest
from support.daemonrun import SERIAL, DaemonRun, hctl_line, in_netns, netns_wrapper, wait_for
from support.udevbed import Bed

from tapeshared.daemon.loop import BACKOFF_FIRST

PARENT = "RH-Firewall-1-INPUT"
JUMP = "-A %s -m comment --comment tapeshared -j TAPESHARED" % PARENT


@pytest.fixture
def run(ietroot):
    if netns_wrapper() is None or shutil.which("iptables") is None:
        pytest.skip("needs a private network namespace (unshare -n) and iptables")
    made = []

    def make(**kw):
        bed = Bed()
        daemon = DaemonRun(bed, ietroot, **kw)
        made.append((bed, daemon))
        return daemon

    yield make
    for bed, daemon in made:
        try:
            daemon.close()
        finally:
            bed.close()


def _both(pid, *argv):
    for binary in ("iptables", "ip6tables"):
        in_netns(pid, binary, "-w", *argv)


def _parent(pid, binary="iptables"):
    return in_netns(pid, binary, "-w", "-S").splitlines()


@pytest.mark.daemon
def test_missing_parent_chain_is_retried_while_renumbering_goes_on(run, ietroot):
    d = run(firewall="iptables", firewall_parent=PARENT, resync_interval="1")
    path = d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    pid = d.proc.pid
    # the export is applied although the firewall cannot be: the parent is missing
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the export")
    wait_for(lambda: "parent chain %s does not exist" % PARENT in d.text(),
             what="the firewall error in the log")
    assert "configuration error" not in d.text()
    # renumbering is still followed while the firewall fails
    d.bed.remove(path)
    d.bed.add_tape("3:0:2:0", serial=SERIAL, st_index=1, sg_index=1)
    wait_for(lambda: hctl_line("3:0:2:0") in d.ietd(), timeout=20,
             what="the export to follow the tape while the firewall fails")
    # the firewall service comes up: the jump follows, first in the parent, no SIGHUP
    _both(pid, "-N", PARENT)
    _both(pid, "-A", PARENT, "-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    for binary in ("iptables", "ip6tables"):
        wait_for(lambda b=binary: JUMP in _parent(pid, b), timeout=20,
                 what="the jump in %s %s" % (binary, PARENT))
    rules = [r for r in _parent(pid) if r.startswith("-A %s " % PARENT)]
    assert rules[0] == JUMP
    # an admin deletes the parent chain (a firewall service restart), then it is back
    _both(pid, "-F", PARENT)
    _both(pid, "-X", PARENT)
    wait_for(lambda: len(re.findall("parent chain %s does not exist" % PARENT,
                                    d.text())) >= 2, timeout=20 * BACKOFF_FIRST,
             what="the missing parent reported again")
    _both(pid, "-N", PARENT)
    wait_for(lambda: JUMP in _parent(pid), timeout=20, what="the jump back after -X")
    # an admin's flush of every chain
    _both(pid, "-F")
    wait_for(lambda: JUMP in _parent(pid) and "-A TAPESHARED -s 192.0.2.10/32 " in
             "\n".join(_parent(pid)), timeout=20, what="the rules back after iptables -F")
    assert d.proc.poll() is None and "configuration error" not in d.text()


@pytest.mark.daemon
def test_nft_table_deleted_or_ruleset_flushed_is_repaired(run, ietroot):
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed")
    d = run(firewall="nftables", resync_interval="1")
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    pid = d.proc.pid

    def table():
        return in_netns(pid, "nft", "list", "ruleset")

    wait_for(lambda: "ip saddr 192.0.2.10 tcp dport 3260 accept" in table(),
             what="our nft table")
    in_netns(pid, "nft", "delete", "table", "inet", "tapeshared")
    wait_for(lambda: "192.0.2.10" in table(), timeout=20, what="the table back")
    in_netns(pid, "nft", "flush", "ruleset")
    wait_for(lambda: "192.0.2.10" in table(), timeout=20, what="the table after a flush")
    assert d.proc.poll() is None and "configuration error" not in d.text()
