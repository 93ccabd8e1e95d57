"""Real iptables, ip6tables and nft in private network namespaces, with real TCP."""

import shutil
import subprocess

import pytest
from support.netns_helpers import Listener, Netns, NetnsRunner, connect, link, skip_reason

from tapeshared.core.errors import TransientError
from tapeshared.firewall.iptables.backend import IptablesFirewall
from tapeshared.firewall.nft.backend import NftablesFirewall
from tapeshared.firewall.spec import FirewallSpec

TOOLS = ["iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "nft"]
_REASON = skip_reason(TOOLS)
pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

V4 = ("192.0.2.2",)
SPEC = FirewallSpec(portals=("192.0.2.1", "2001:db8::1"),
                    sources=("192.0.2.2", "2001:db8::2"))
JUMP = "-A INPUT -m comment --comment tapeshared -j TAPESHARED"
TAIL = "-p tcp -m tcp --dport 3260 -m comment --comment tapeshared"
RH_RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:RH-Firewall-1-INPUT - [0:0]
-A INPUT -j RH-Firewall-1-INPUT
-A RH-Firewall-1-INPUT -i lo -j ACCEPT
-A RH-Firewall-1-INPUT -p icmp --icmp-type any -j ACCEPT
-A RH-Firewall-1-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A RH-Firewall-1-INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT
-A RH-Firewall-1-INPUT -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""
VARIANTS = {"nft": ("iptables", "ip6tables", "iptables-restore", "ip6tables-restore"),
            "legacy": ("iptables-legacy", "ip6tables-legacy", "iptables-legacy-restore",
                       "ip6tables-legacy-restore")}


@pytest.fixture
def ns():
    space = Netns()
    yield space
    space.delete()


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    tools = VARIANTS[request.param]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("%s not installed" % ", ".join(missing))
    return tools


class Ipt:
    """A firewall under test plus direct access to the same tables."""

    def __init__(self, ns, tools, families=(4, 6), save_files=None):
        self.ns = ns
        self.tools = tools
        self.fw = IptablesFirewall(NetnsRunner(ns), iptables=tools[0], ip6tables=tools[1],
                                   iptables_restore=tools[2], ip6tables_restore=tools[3],
                                   families=families, save_files=save_files)

    def __call__(self, *args, **kwargs):
        binary = self.tools[1] if kwargs.get("v6") else self.tools[0]
        return self.ns.run([binary, "-w"] + list(args)).stdout

    def rules(self, chain=None, v6=False):
        out = self("-S", *([chain] if chain else []), v6=v6)
        return [line for line in out.splitlines() if line.startswith("-A")]

    def restore(self, text):
        self.ns.run([self.tools[2], "-w"], input_text=text)


@pytest.fixture
def ipt(ns, variant):
    return Ipt(ns, variant)


def test_ensure_creates_chain_and_jump_then_takes_no_action(ipt):
    actions = ipt.fw.ensure(SPEC)
    assert "iptables: create chain TAPESHARED with 2 rules" in actions
    assert "ip6tables: insert jump to TAPESHARED at INPUT position 1" in actions
    assert ipt.rules() == [
        JUMP,
        "-A TAPESHARED -s 192.0.2.2/32 -d 192.0.2.1/32 %s -j ACCEPT" % TAIL,
        "-A TAPESHARED %s -j REJECT --reject-with tcp-reset" % TAIL]
    assert ipt.rules(v6=True) == [
        JUMP,
        "-A TAPESHARED -s 2001:db8::2/128 -d 2001:db8::1/128 %s -j ACCEPT" % TAIL,
        "-A TAPESHARED %s -j REJECT --reject-with tcp-reset" % TAIL]
    assert ipt.fw.ensure(SPEC) == []
    assert ipt.fw.pending(SPEC) == []
    status = ipt.fw.inspect(SPEC)
    assert status.clean and len(status.present) == 8


def test_flushed_chain_is_reported_and_rebuilt(ipt):
    ipt.fw.ensure(SPEC)
    ipt("-F", "TAPESHARED")
    status = ipt.fw.inspect(SPEC)
    assert not status.clean and len(status.missing) == 2
    assert all(m.startswith("iptables: -A TAPESHARED") for m in status.missing)
    assert ipt.fw.pending(SPEC) == ["iptables: rebuild chain TAPESHARED (2 missing, 0 extra)"]
    assert ipt.fw.ensure(SPEC) == ["iptables: rebuild chain TAPESHARED (2 missing, 0 extra)"]
    assert len(ipt.rules("TAPESHARED")) == 2
    assert ipt.fw.ensure(SPEC) == []


def test_deleted_and_duplicated_jumps_are_repaired(ipt):
    ipt.fw.ensure(SPEC)
    ipt("-D", "INPUT", "-m", "comment", "--comment", "tapeshared", "-j", "TAPESHARED")
    assert ipt.fw.inspect(SPEC).missing == ("iptables: " + JUMP,)
    assert ipt.fw.ensure(SPEC) == ["iptables: insert jump to TAPESHARED at INPUT position 1"]
    ipt("-A", "INPUT", "-m", "comment", "--comment", "tapeshared", "-j", "TAPESHARED", v6=True)
    assert ipt.fw.inspect(SPEC).extra == ("ip6tables: " + JUMP,)
    assert ipt.fw.ensure(SPEC) == ["ip6tables: delete " + JUMP, "ip6tables: delete " + JUMP,
                                   "ip6tables: insert jump to TAPESHARED at INPUT position 1"]
    assert ipt.rules("INPUT", v6=True) == [JUMP]
    assert ipt.fw.ensure(SPEC) == []


def test_foreign_rules_survive_ensure_and_remove(ipt):
    ipt("-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
    ipt("-A", "INPUT", "-s", "198.51.100.7", "-m", "comment", "--comment", "admin", "-j", "DROP")
    ipt("-N", "OTHER")
    ipt("-A", "OTHER", "-p", "tcp", "--dport", "3260", "-j", "ACCEPT")
    before = ipt.rules()
    ipt.fw.ensure(SPEC)
    after = ipt.rules()
    assert after[0] == JUMP and [r for r in after if r != JUMP and "TAPESHARED" not in r] == before
    ipt("-A", "TAPESHARED", "-j", "ACCEPT")  # foreign rule in our own chain: drift
    assert ipt.fw.inspect(SPEC).extra == ("iptables: -A TAPESHARED -j ACCEPT",)
    assert ipt.fw.ensure(SPEC) == ["iptables: rebuild chain TAPESHARED (0 missing, 1 extra)"]
    assert ipt.fw.remove(SPEC) == [
        "iptables: delete " + JUMP, "iptables: delete chain TAPESHARED",
        "ip6tables: delete " + JUMP, "ip6tables: delete chain TAPESHARED"]
    assert ipt.rules() == before
    assert "-N TAPESHARED" not in ipt("-S")
    assert ipt.fw.remove(SPEC) == []


def test_deconfigured_initiator_is_removed(ipt):
    wide = FirewallSpec(portals=SPEC.portals, sources=("192.0.2.2", "192.0.2.64/26"))
    ipt.fw.ensure(wide)
    assert len(ipt.rules("TAPESHARED")) == 3
    actions = ipt.fw.ensure(FirewallSpec(portals=SPEC.portals, sources=V4))
    assert actions == ["iptables: rebuild chain TAPESHARED (0 missing, 1 extra)"]
    assert not any("192.0.2.64" in r for r in ipt.rules("TAPESHARED"))
    assert ipt.rules(v6=True)[1:] == [
        "-A TAPESHARED %s -j REJECT --reject-with tcp-reset" % TAIL]


def test_jump_goes_first_in_the_xcpng_parent(ipt):
    ipt.restore(RH_RULES)
    spec = FirewallSpec(parent="RH-Firewall-1-INPUT", sources=V4)
    ipt.fw = IptablesFirewall(ipt.fw.runner, *ipt.tools, families=(4,))
    assert ipt.fw.ensure(spec)[-1] == \
        "iptables: insert jump to TAPESHARED at RH-Firewall-1-INPUT position 1"
    rh = ipt.rules("RH-Firewall-1-INPUT")
    # above the ESTABLISHED accept, so a removed initiator's connection is cut
    assert rh[0] == "-A RH-Firewall-1-INPUT -m comment --comment tapeshared -j TAPESHARED"
    assert "ESTABLISHED" in rh[3]
    assert ipt.fw.ensure(spec) == []
    # A jump appended below the parent's accepts (or its REJECT) is moved back up.
    jump = ["-m", "comment", "--comment", "tapeshared", "-j", "TAPESHARED"]
    ipt("-D", "RH-Firewall-1-INPUT", *jump)
    ipt("-A", "RH-Firewall-1-INPUT", *jump)
    assert any("may accept tcp/3260 first" in e for e in ipt.fw.inspect(spec).extra)
    ipt.fw.ensure(spec)
    assert ipt.rules("RH-Firewall-1-INPUT") == rh
    # Reconfigured to INPUT: the stale jump in RH-Firewall-1-INPUT goes.
    ipt.fw.ensure(FirewallSpec(sources=V4))
    assert ipt.rules("INPUT")[0] == JUMP
    assert not any("tapeshared" in r for r in ipt.rules("RH-Firewall-1-INPUT"))


def test_missing_parent_is_a_runtime_condition_retried_later(ipt):
    spec = FirewallSpec(parent="RH-Firewall-1-INPUT", sources=V4)
    with pytest.raises(TransientError, match="RH-Firewall-1-INPUT does not exist"):
        ipt.fw.ensure(spec)
    assert ipt.rules() == []
    ipt("-N", "RH-Firewall-1-INPUT")
    ipt("-N", "RH-Firewall-1-INPUT", v6=True)
    # our rules go in, but nothing reaches them yet: said, and retried
    with pytest.raises(TransientError, match="not reached from INPUT"):
        ipt.fw.ensure(spec)
    assert ipt.fw.inspect(spec).clean
    ipt("-A", "INPUT", "-j", "RH-Firewall-1-INPUT")
    ipt("-A", "INPUT", "-j", "RH-Firewall-1-INPUT", v6=True)
    assert ipt.fw.ensure(spec) == []
    # an old ACCEPT above the jump to the parent shadows our chain: said, not touched
    ipt("-I", "INPUT", "1", "-p", "tcp", "--dport", "3260", "-j", "ACCEPT")
    with pytest.raises(TransientError, match="rule 1 of INPUT may accept tcp/3260"):
        ipt.fw.ensure(spec)
    assert ipt.rules("INPUT")[0] == "-A INPUT -p tcp -m tcp --dport 3260 -j ACCEPT"


def test_persisted_save_file_loads_to_the_state_ensure_builds(ns, variant, tmp_path):
    path = tmp_path / "iptables"
    path.write_text("# Firewall configuration written by system-config-firewall\n"
                    + RH_RULES)
    saver = Ipt(ns, variant, families=(), save_files={4: str(path)})
    spec = FirewallSpec(parent="RH-Firewall-1-INPUT", portals=("192.0.2.1",), sources=V4)
    assert saver.fw.ensure(spec) == ["wrote %s" % path]
    assert saver.fw.ensure(spec) == []
    ipt = Ipt(ns, variant, families=(4,))
    ipt.restore(path.read_text())  # what iptables.service does at boot
    assert ipt.fw.pending(spec) == []
    assert ipt.fw.inspect(spec).clean


@pytest.mark.parametrize("sources, portals", [
    (("0.0.0.0/0", "::/0"), ()),
    (("10.0.0.0/8", "2001:db8::/32", "0.0.0.0/8"), ("192.0.2.1",)),
    ((), ("2001:db8::1",)),
])
def test_edge_specs_converge_in_both_backends(ns, sources, portals):
    spec = FirewallSpec(sources=sources, portals=portals)
    for fw in (IptablesFirewall(NetnsRunner(ns)), NftablesFirewall(NetnsRunner(ns))):
        assert fw.ensure(spec)  # verifies itself, raising if it did not converge
        assert fw.pending(spec) == [] and fw.inspect(spec).clean


def test_nft_ensure_drift_and_remove(ns):
    fw = NftablesFirewall(NetnsRunner(ns))
    ns.run(["nft", "-f", "-"], input_text="table inet foreign {\n chain c {\n"
           "  type filter hook input priority 0; policy accept;\n"
           "  tcp dport 22 accept\n }\n}\n")
    foreign = ns.run(["nft", "list", "table", "inet", "foreign"]).stdout
    assert fw.ensure(SPEC) == ["create nft table inet tapeshared with 4 rules"]
    assert fw.ensure(SPEC) == [] and fw.pending(SPEC) == [] and fw.inspect(SPEC).clean
    listing = ns.run(["nft", "list", "table", "inet", "tapeshared"]).stdout
    assert 'ip saddr 192.0.2.2 ip daddr 192.0.2.1 tcp dport 3260 accept' in listing
    ns.run(["nft", "flush", "chain", "inet", "tapeshared", "input"])
    assert len(fw.inspect(SPEC).missing) == 4
    assert fw.ensure(SPEC) == ["replace nft table inet tapeshared (4 missing, 0 extra)"]
    ns.run(["nft", "add", "rule", "inet", "tapeshared", "input", "tcp", "dport", "3260",
            "accept"])
    assert fw.inspect(SPEC).extra == (
        "nft table inet tapeshared: chain input: tcp dport 3260 accept",)
    assert fw.ensure(SPEC) == ["replace nft table inet tapeshared (0 missing, 1 extra)"]
    ns.run(["nft", "delete", "table", "inet", "tapeshared"])
    assert fw.ensure(SPEC) == ["create nft table inet tapeshared with 4 rules"]
    fewer = FirewallSpec(portals=SPEC.portals, sources=V4)
    assert fw.ensure(fewer) == ["replace nft table inet tapeshared (0 missing, 1 extra)"]
    assert "2001:db8::2" not in ns.run(["nft", "list", "table", "inet", "tapeshared"]).stdout
    assert fw.remove(fewer) == ["delete nft table inet tapeshared"]
    assert fw.remove(fewer) == []
    assert ns.run(["nft", "list", "table", "inet", "foreign"]).stdout == foreign


@pytest.fixture
def pair():
    portal, initiator = Netns("tsfwp"), Netns("tsfwi")
    listener = None
    try:
        link(portal, initiator, ["192.0.2.1/24", "2001:db8::1/64"],
             ["192.0.2.2/24", "192.0.2.3/24", "2001:db8::2/64", "2001:db8::3/64"])
        listener = Listener(portal, 3260)
        yield portal, initiator
    finally:
        if listener:
            listener.stop()
        portal.delete()
        initiator.delete()


def _reachable(initiator):
    """Which initiator addresses reach the portal now (bounded: 4 attempts, 2 s each)."""
    return {src: connect(initiator, src, dst, 3260)
            for src, dst in (("192.0.2.2", "192.0.2.1"), ("192.0.2.3", "192.0.2.1"),
                             ("2001:db8::2", "2001:db8::1"), ("2001:db8::3", "2001:db8::1"))}


ALLOWED = {"192.0.2.2": "connected", "192.0.2.3": "refused",
           "2001:db8::2": "connected", "2001:db8::3": "refused"}
OPEN = dict.fromkeys(ALLOWED, "connected")


def test_iptables_admits_exactly_the_initiators(pair, variant):
    portal, initiator = pair
    ipt = Ipt(portal, variant)
    assert _reachable(initiator) == OPEN
    ipt.fw.ensure(SPEC)
    assert _reachable(initiator) == ALLOWED
    ipt("-F", "TAPESHARED")
    ipt("-F", "TAPESHARED", v6=True)
    assert _reachable(initiator) == OPEN
    ipt.fw.ensure(SPEC)
    assert _reachable(initiator) == ALLOWED
    ipt.fw.remove(SPEC)
    assert _reachable(initiator) == OPEN


def test_nft_admits_exactly_the_initiators(pair):
    portal, initiator = pair
    fw = NftablesFirewall(NetnsRunner(portal))
    fw.ensure(SPEC)
    assert _reachable(initiator) == ALLOWED
    portal.run(["nft", "flush", "chain", "inet", "tapeshared", "input"])
    assert _reachable(initiator) == OPEN
    fw.ensure(SPEC)
    assert _reachable(initiator) == ALLOWED
    fw.remove(SPEC)
    assert _reachable(initiator) == OPEN


def test_namespaces_are_private():
    """The host's own tables never see our chain (sanity check of the technique)."""
    host = subprocess.run(["iptables", "-w", "-S"], stdout=subprocess.PIPE,
                          universal_newlines=True).stdout
    assert "tapeshared" not in host


def _failing(tmp_path, name):
    script = tmp_path / name
    script.write_text("#!/bin/sh\necho \"%s: can't initialize ip6tables table 'filter': "
                      "Address family not supported by protocol\" >&2\nexit 3\n" % name)
    script.chmod(0o755)
    return str(script)


def test_ipv6_failing_at_apply_keeps_the_ipv4_rules(ns, tmp_path):
    fw = IptablesFirewall(NetnsRunner(ns), ip6tables_restore=_failing(tmp_path, "restore6"))
    with pytest.raises(TransientError, match="ip6tables: .*Address family not supported"):
        fw.ensure(SPEC)
    ipt = Ipt(ns, VARIANTS["nft"])
    assert ipt.rules()[0] == JUMP and len(ipt.rules("TAPESHARED")) == 2
    assert fw.family_states(fw.observe(SPEC), SPEC) == [
        ("ip6tables", "out of step", "4 missing, 0 extra"), ("iptables", "in step", "")]


def test_ipv6_failing_at_read_is_reported_per_family(ns, tmp_path):
    fw = IptablesFirewall(NetnsRunner(ns), ip6tables=_failing(tmp_path, "ip6tables"))
    with pytest.raises(TransientError, match="ip6tables"):
        fw.ensure(SPEC)
    states = fw.family_states(fw.observe(SPEC), SPEC)
    assert [s[:2] for s in states] == [("ip6tables", "failing"), ("iptables", "in step")]
    assert "Address family not supported" in states[0][2]
    parentless = FirewallSpec(parent="RH-Firewall-1-INPUT", sources=V4)
    assert fw.family_states(fw.observe(parentless), parentless)[1] == (
        "iptables", "failing",
        "parent chain RH-Firewall-1-INPUT does not exist in the iptables filter table")
