"""The firewall is never wider than configured: real tables, real TCP, every local address.

Two namespaces joined by a veth: the portal side has the portal (192.0.2.1,
2001:db8::1), a second local address on a dummy link (198.51.100.1,
2001:db8:1::1) and loopback; the initiator side has one configured and one
unconfigured address per family. The parent chain is hostile: an rc.local-era
ACCEPT for tcp/3260 and a generic ESTABLISHED accept, policy ACCEPT or DROP.
"""

import shutil

import pytest
from support.netns_helpers import (
    EchoListener,
    Netns,
    NetnsRunner,
    Prober,
    Session,
    add_dummy,
    connect,
    link,
    skip_reason,
)

from tapeshared.firewall.iptables.backend import IptablesFirewall
from tapeshared.firewall.nft.backend import NftablesFirewall
from tapeshared.firewall.spec import FirewallSpec

TOOLS = ["iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "nft"]
_REASON = skip_reason(TOOLS)
pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

PORT = 3260
SPEC = FirewallSpec(portals=("192.0.2.1", "2001:db8::1"),
                    sources=("192.0.2.2", "2001:db8::2"))
VARIANTS = {"nft": ("iptables", "ip6tables", "iptables-restore", "ip6tables-restore"),
            "legacy": ("iptables-legacy", "ip6tables-legacy", "iptables-legacy-restore",
                       "ip6tables-legacy-restore")}

# (side, source, destination): every local address, from allowed and other sources
PROBES = [
    ("initiator", "192.0.2.2", "192.0.2.1"), ("initiator", "192.0.2.2", "198.51.100.1"),
    ("initiator", "192.0.2.3", "192.0.2.1"), ("initiator", "192.0.2.3", "198.51.100.1"),
    ("initiator", "2001:db8::2", "2001:db8::1"), ("initiator", "2001:db8::2", "2001:db8:1::1"),
    ("initiator", "2001:db8::3", "2001:db8::1"), ("initiator", "2001:db8::3", "2001:db8:1::1"),
    ("portal", "127.0.0.1", "127.0.0.1"), ("portal", "::1", "::1"),
    ("portal", "198.51.100.1", "198.51.100.1"), ("portal", "192.0.2.1", "192.0.2.1"),
]
# Only a configured initiator, and only to the portal of its family. "closed" is
# refused, or a timeout where a DROP policy also eats the reset on loopback.
ALLOWED = {probe: "connected" if probe[1:] in (("192.0.2.2", "192.0.2.1"),
                                              ("2001:db8::2", "2001:db8::1")) else "closed"
           for probe in PROBES}
OPEN = dict.fromkeys(PROBES, "connected")


def hostile_iptables(policy, v6=False):
    """An old hand-made ruleset that would admit tcp/3260 from anyone."""
    icmp = "-A INPUT -p ipv6-icmp -j ACCEPT\n" if v6 else "-A INPUT -p icmp -j ACCEPT\n"
    # closed hosts end with a REJECT, as RH-Firewall-1-INPUT does
    final = "" if policy == "ACCEPT" else "-A INPUT -j REJECT\n"
    return ("*filter\n:INPUT %s [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n%s"
            "-A INPUT -p tcp -m tcp --dport 3260 -j ACCEPT\n%sCOMMIT\n" % (
                policy, icmp, final))


def hostile_nft(policy):
    return ("table inet filter {\n chain input {\n"
            "  type filter hook input priority 0; policy %s;\n"
            "  ct state established,related accept\n  meta l4proto { icmp, ipv6-icmp } accept\n"
            "  tcp dport 3260 accept\n }\n}\n" % policy)


@pytest.fixture
def world():
    portal, initiator = Netns("tsxp"), Netns("tsxi")
    listener = None
    try:
        link(portal, initiator, ["192.0.2.1/24", "2001:db8::1/64"],
             ["192.0.2.2/24", "192.0.2.3/24", "2001:db8::2/64", "2001:db8::3/64"])
        add_dummy(portal, "second0", ["198.51.100.1/24", "2001:db8:1::1/64"])
        initiator.run(["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.1"])
        initiator.run(["ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8::1"])
        listener = EchoListener(portal, PORT)
        yield portal, initiator
    finally:
        if listener:
            listener.stop()
        portal.delete()
        initiator.delete()


def reachable(world):
    """What each probe gets now (bounded: 12 attempts, 2 s at most each)."""
    sides = dict(zip(("portal", "initiator"), world))
    got = {probe: connect(sides[probe[0]], probe[1], probe[2], PORT) for probe in PROBES}
    return {probe: "closed" if result in ("refused", "timeout") else result
            for probe, result in got.items()}


def tools(name):
    found = VARIANTS[name]
    missing = [t for t in found if shutil.which(t) is None]
    if missing:
        pytest.skip("%s not installed" % ", ".join(missing))
    return found


def iptables_fw(ns, variant):
    return IptablesFirewall(NetnsRunner(ns), *tools(variant))


def load_iptables(ns, variant, policy):
    names = tools(variant)
    ns.run([names[2], "-w"], input_text=hostile_iptables(policy))
    ns.run([names[3], "-w"], input_text=hostile_iptables(policy, v6=True))


@pytest.mark.parametrize("policy", ["ACCEPT", "DROP"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_iptables_admits_only_initiators_on_every_local_address(world, variant, policy):
    portal, _ = world
    load_iptables(portal, variant, policy)
    assert reachable(world) == OPEN  # the hostile parent admits everyone
    fw = iptables_fw(portal, variant)
    fw.ensure(SPEC)
    assert reachable(world) == ALLOWED
    # the firewall service restarts: the table is replaced by the admin's rules
    load_iptables(portal, variant, policy)
    assert reachable(world) == OPEN
    assert fw.ensure(SPEC)
    assert reachable(world) == ALLOWED
    # an admin's flush of every chain
    names = tools(variant)
    portal.run([names[0], "-w", "-F"])
    portal.run([names[1], "-w", "-F"])
    assert fw.ensure(SPEC)
    assert reachable(world) == ALLOWED
    assert fw.ensure(SPEC) == []


@pytest.mark.parametrize("policy", ["accept", "drop"])
def test_nft_admits_only_initiators_on_every_local_address(world, policy):
    portal, _ = world
    portal.run(["nft", "-f", "-"], input_text=hostile_nft(policy))
    assert reachable(world) == OPEN
    fw = NftablesFirewall(NetnsRunner(portal))
    fw.ensure(SPEC)
    assert reachable(world) == ALLOWED
    portal.run(["nft", "flush", "ruleset"])
    portal.run(["nft", "-f", "-"], input_text=hostile_nft(policy))
    assert reachable(world) == OPEN
    assert fw.ensure(SPEC) == ["create nft table inet tapeshared with 4 rules"]
    assert reachable(world) == ALLOWED


def _removed_initiator_is_cut(world, ensure):
    portal, initiator = world
    both = FirewallSpec(portals=("192.0.2.1",), sources=("192.0.2.2", "192.0.2.3"))
    ensure(both)
    kept = Session(initiator, "192.0.2.2", "192.0.2.1", PORT)
    removed = Session(initiator, "192.0.2.3", "192.0.2.1", PORT)
    try:
        assert (kept.first, removed.first) == ("data", "data")
        assert removed.exchange("still") == "data"
        ensure(FirewallSpec(portals=("192.0.2.1",), sources=("192.0.2.2",)))
        assert removed.exchange("after") in ("reset", "timeout", "closed")
        assert removed.exchange("again") != "data"
        assert kept.exchange("after") == "data"
    finally:
        kept.close()
        removed.close()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_iptables_cuts_a_removed_initiators_established_connection(world, variant):
    load_iptables(world[0], variant, "DROP")
    _removed_initiator_is_cut(world, iptables_fw(world[0], variant).ensure)


def test_nft_cuts_a_removed_initiators_established_connection(world):
    world[0].run(["nft", "-f", "-"], input_text=hostile_nft("drop"))
    _removed_initiator_is_cut(world, NftablesFirewall(NetnsRunner(world[0])).ensure)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_jump_is_moved_back_above_a_rule_inserted_over_it(variant):
    ns = Netns("tsxj")
    try:
        names = tools(variant)
        ns.run([names[2], "-w"], input_text=hostile_iptables("ACCEPT"))
        fw = IptablesFirewall(NetnsRunner(ns), *names, families=(4,))
        spec = FirewallSpec(sources=("192.0.2.2",))
        fw.ensure(spec)

        def first():
            return [line for line in ns.run([names[0], "-w", "-S", "INPUT"]).stdout
                    .splitlines() if line.startswith("-A")][0]

        assert first().endswith("-j TAPESHARED")
        ns.run([names[0], "-w", "-I", "INPUT", "1", "-p", "tcp", "--dport", "3260",
                "-j", "ACCEPT"])
        status = fw.inspect(spec)
        assert not status.clean and any("may accept tcp/3260 first" in e for e in status.extra)
        assert fw.ensure(spec) == ["iptables: delete -A INPUT -m comment --comment "
                                   "tapeshared -j TAPESHARED",
                                   "iptables: insert jump to TAPESHARED at INPUT position 1"]
        assert first().endswith("-j TAPESHARED")
        # a ban above us cannot accept anything: left where it is, no fight
        ns.run([names[0], "-w", "-I", "INPUT", "1", "-s", "198.51.100.7", "-j", "DROP"])
        assert fw.ensure(spec) == [] and fw.inspect(spec).clean
    finally:
        ns.delete()


def assert_never_opened_while_updating(fw, specs, initiator):
    """A stranger knocks without pause while the initiator list flips 16 times
    between specs; it must be refused every time and never connect."""
    fw.ensure(specs[0])
    prober = Prober(initiator, "192.0.2.3", "192.0.2.1", PORT, 30.0)
    try:
        for step in range(16):
            assert fw.ensure(specs[(step + 1) % 2])
    finally:
        counts = prober.counts()
    assert counts.get("refused", 0) > 16 and "connected" not in counts, counts


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_updates_never_open_the_port_even_for_a_moment(world, variant):
    # A stranger knocks without pause while the initiator list changes 16 times;
    # the parent would let it in whenever our chain or jump were briefly missing.
    portal, initiator = world
    load_iptables(portal, variant, "ACCEPT")
    fw = iptables_fw(portal, variant)
    specs = [FirewallSpec(portals=SPEC.portals, sources=sources) for sources in (
        ("192.0.2.2", "2001:db8::2"), ("192.0.2.2", "192.0.2.64/26", "2001:db8::2"))]
    assert_never_opened_while_updating(fw, specs, initiator)


def test_nft_updates_never_open_the_port_even_for_a_moment(world):
    portal, initiator = world
    portal.run(["nft", "-f", "-"], input_text=hostile_nft("accept"))
    fw = NftablesFirewall(NetnsRunner(portal))
    specs = [FirewallSpec(portals=SPEC.portals, sources=sources) for sources in (
        ("192.0.2.2",), ("192.0.2.2", "192.0.2.64/26"))]
    assert_never_opened_while_updating(fw, specs, initiator)
