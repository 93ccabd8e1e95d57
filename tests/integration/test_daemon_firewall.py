"""The daemon as a real process with a real firewall in its private network namespace:
what the host does to the tables (a missing parent chain, a flush) is retried and
repaired, and never stops the rest (renumbering) from being repaired."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from support.daemonrun import (
    SERIAL,
    hctl_line,
    in_netns,
    needs_daemon,
    netns_wrapper,
    wait_for,
)
from support.paths import ROOT

from tapeshared.daemon.loop import BACKOFF_FIRST

PARENT = "RH-Firewall-1-INPUT"
JUMP = "-A %s -m comment --comment tapeshared -j TAPESHARED" % PARENT


@pytest.fixture
def run(daemon_run):
    if netns_wrapper() is None or shutil.which("iptables") is None:
        pytest.skip("needs a private network namespace (unshare -n) and iptables")
    return daemon_run


def _both(pid, *argv):
    for binary in ("iptables", "ip6tables"):
        in_netns(pid, binary, "-w", *argv)


def _parent(pid, binary="iptables"):
    return in_netns(pid, binary, "-w", "-S").splitlines()


@needs_daemon
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
    _both(pid, "-A", "INPUT", "-j", PARENT)
    _both(pid, "-A", PARENT, "-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    for binary in ("iptables", "ip6tables"):
        wait_for(lambda b=binary: JUMP in _parent(pid, b), timeout=20,
                 what="the jump in %s %s" % (binary, PARENT))
    rules = [r for r in _parent(pid) if r.startswith("-A %s " % PARENT)]
    assert rules[0] == JUMP
    # an admin deletes the parent chain (a firewall service restart), then it is back
    _both(pid, "-F", PARENT)
    _both(pid, "-D", "INPUT", "-j", PARENT)
    _both(pid, "-X", PARENT)
    wait_for(lambda: len(re.findall("parent chain %s does not exist" % PARENT,
                                    d.text())) >= 2, timeout=20 * BACKOFF_FIRST,
             what="the missing parent reported again")
    _both(pid, "-N", PARENT)
    _both(pid, "-A", "INPUT", "-j", PARENT)
    wait_for(lambda: JUMP in _parent(pid), timeout=20, what="the jump back after -X")
    # an admin's flush of every chain (the service then reloads its rules)
    _both(pid, "-F")
    _both(pid, "-A", "INPUT", "-j", PARENT)
    wait_for(lambda: JUMP in _parent(pid) and "-A TAPESHARED -s 192.0.2.10/32 " in
             "\n".join(_parent(pid)), timeout=20, what="the rules back after iptables -F")
    assert d.proc.poll() is None and "configuration error" not in d.text()


@needs_daemon
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


NO_IPV6 = """#!/bin/sh
# ip6tables as on a kernel booted with ipv6.disable=1, until the test loads "IPv6"
if [ -e "%(flag)s" ]; then exec %(real)s "$@"; fi
echo "ip6tables v1.8.9 (nf_tables): can't initialize ip6tables table \\`filter': \
Address family not supported by protocol" >&2
exit 3
"""


def _no_ipv6_path(tmp_path):
    """A PATH whose ip6tables and ip6tables-restore fail until tmp_path/ipv6 exists."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("ip6tables", "ip6tables-restore"):
        script = bindir / name
        script.write_text(NO_IPV6 % {"flag": tmp_path / "ipv6", "real": shutil.which(name)})
        script.chmod(0o755)
    return "%s:%s" % (bindir, os.environ["PATH"])


def _status(d, env, text=False):
    out = subprocess.run(["nsenter", "-t", str(d.proc.pid), "-n", sys.executable, "-m",
                          "tapeshared", "-c", d.conf, "status"] + ([] if text else ["--json"]),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    return out.returncode, out.stdout if text else json.loads(out.stdout)


@needs_daemon
def test_no_ipv6_still_gets_ipv4_rules_and_the_export(run, ietroot, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _no_ipv6_path(tmp_path))
    d = run(firewall="iptables", resync_interval="1")
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    pid = d.proc.pid
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the export")
    wait_for(lambda: "-A TAPESHARED -s 192.0.2.10/32" in in_netns(pid, "iptables", "-S"),
             what="the IPv4 rules")
    wait_for(lambda: d.text().count("Address family not supported") >= 2, timeout=20,
             what="the IPv6 family retried")
    env = dict(os.environ, PYTHONPATH=ROOT, UMOCKDEV_DIR=d.bed.tb.get_root_dir())
    code, doc = _status(d, env)
    families = {f["family"]: f for f in doc["firewall"]}
    assert families["iptables"]["state"] == "in step"
    assert families["ip6tables"]["state"] == "failing"
    assert "Address family not supported" in families["ip6tables"]["detail"]
    assert code == 150
    # IPv6 comes back (module loaded): the next retry brings it in step
    (tmp_path / "ipv6").write_text("")
    wait_for(lambda: "-A TAPESHARED -p tcp" in in_netns(pid, "ip6tables", "-S"), timeout=30,
             what="the IPv6 rules once ip6tables works")
    assert [f["state"] for f in _status(d, env)[1]["firewall"]] == ["in step", "in step"]
