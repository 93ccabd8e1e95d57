"""The firewall rule spec (pure): what must be allowed, validated, and the shared result types."""

# Policy, per address family (4 and 6), shared by the iptables and nft renderings:
# - accept tcp to `port` from every source of that family to every portal of that
#   family (any destination when the spec has no portals at all);
# - then, if reject_others, reject (tcp reset) all other tcp to `port`, whatever
#   its destination: 127.0.0.1, a second address on another link, an address
#   added later. Nothing falls through to the parent chain for the port, so the
#   parent's policy and any older rule there (an rc.local-era ACCEPT for 3260)
#   cannot widen access, whichever addresses the target happens to listen on. A
#   family without sources is closed, never open.
# The jump is the first rule of the parent chain (only plain DROP/REJECT/LOG
# rules may sit above it, since they cannot accept), so it also comes before a
# generic ESTABLISHED accept: every packet to the port passes our chain, and an
# initiator removed from the configuration loses its open connection at the
# next apply (its next segment is answered with a reset). nft: our base chain's
# reject is final for the hook whatever other tables accept.
# Our chain (iptables) or table (nft) is wholly ours: any rule in it that we did
# not render is drift and is removed, since it could widen access. Outside it we
# only ever touch rules carrying our comment (the jump).

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from tapeshared.core.errors import ConfigError, TapesharedError, TransientError
from tapeshared.core.model import Config
from tapeshared.core.names import (
    chain_problem,
    host_address_problem,
    network_problem,
    parent_chain_problem,
)
from tapeshared.core.plan import FileChange

COMMENT = "tapeshared"
FAMILIES = (4, 6)


@dataclass(frozen=True)
class FirewallSpec:
    """What the firewall must allow: these sources to these portals on port."""

    chain: str = "TAPESHARED"
    parent: str = "INPUT"
    port: int = 3260
    portals: Tuple[str, ...] = ()
    sources: Tuple[str, ...] = ()
    reject_others: bool = True


@dataclass(frozen=True)
class FirewallStatus:
    """Desired rules found, desired rules missing, and rules that should not be."""

    present: Tuple[str, ...] = ()
    missing: Tuple[str, ...] = ()
    extra: Tuple[str, ...] = ()
    misordered: bool = False

    @property
    def clean(self) -> bool:
        """True when the firewall is exactly as desired."""
        return not (self.missing or self.extra or self.misordered)


@dataclass(frozen=True)
class FirewallState:
    """One read of the firewall: per table label (iptables, ip6tables, nft) the
    adapter's parsed view, or why it could not be read; the save files' bytes."""

    tables: Mapping[str, object] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, Optional[bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class FirewallPlan:
    """What apply would do: batches per table label, save files; and per label
    why it cannot be brought in step now (a missing parent chain, no IPv6)."""

    actions: Tuple[str, ...] = ()
    batches: Tuple[Tuple[str, str], ...] = ()  # (label, restore text or nft script)
    files: Tuple[FileChange, ...] = ()
    errors: Tuple[Tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.batches or self.files)


class Conveniences:
    """ensure/inspect/pending over an adapter's observe, plan, status and apply
    (for the CLI, tests and one-off use; the reconciler calls the four itself)."""

    def observe(self, spec: FirewallSpec) -> FirewallState:
        raise NotImplementedError

    def plan(self, state: FirewallState, spec: FirewallSpec) -> FirewallPlan:
        raise NotImplementedError

    def status(self, state: FirewallState, spec: FirewallSpec) -> FirewallStatus:
        raise NotImplementedError

    def apply(self, plan: FirewallPlan, spec: FirewallSpec) -> List[str]:
        raise NotImplementedError

    def ensure(self, spec: FirewallSpec) -> List[str]:
        """Bring every readable family to spec now; TransientError names the rest."""
        plan = self.plan(self.observe(spec), spec)
        done = self.apply(plan, spec)
        if plan.errors:
            raise TransientError("firewall: %s" % "; ".join(
                "%s: %s" % item for item in plan.errors))
        return done

    def inspect(self, spec: FirewallSpec) -> FirewallStatus:
        """Desired versus actual rules now."""
        return self.status(self.observe(spec), spec)

    def pending(self, spec: FirewallSpec) -> List[str]:
        """The actions ensure would take now."""
        return list(self.plan(self.observe(spec), spec).actions)

    def family_states(self, state: FirewallState,
                      spec: FirewallSpec) -> List[Tuple[str, str, str]]:
        """Per table label (iptables, ip6tables, nft): ("in step" | "out of step" |
        "failing", detail), each judged on its own (pure over state)."""
        found = []
        for label in sorted(set(state.tables) | set(state.errors)):
            if label in state.errors or label not in state.tables:
                found.append((label, "failing", state.errors.get(label, "not read")))
                continue
            one = FirewallState({label: state.tables[label]}, files=state.files)
            try:
                problems = [why for name, why in self.plan(one, spec).errors
                            if name == label]
            except TapesharedError as exc:  # a save file that cannot be merged
                problems = [str(exc)]
            if problems:
                found.append((label, "failing", "; ".join(problems)))
                continue
            status = self.status(one, spec)
            if status.clean:
                found.append((label, "in step", ""))
            else:
                found.append((label, "out of step", "%d missing, %d extra%s" % (
                    len(status.missing), len(status.extra),
                    ", misordered" if status.misordered else "")))
        return found


def spec_for(config: Config, portals: Sequence[str]) -> FirewallSpec:
    """Exactly the configured initiators to the portal port; nothing when the
    configured portal has no address right now."""
    settings = config.globals
    sources: Set[str] = set()
    for export in config.exports:
        for network in export.initiators:
            sources.update(("0.0.0.0/0", "::/0") if network == "ALL" else (network,))
    # The portal's addresses come from the host, not the file: one netfilter can
    # never see as a destination (IPv4-mapped) is left out, never a config error.
    portals = [p for p in portals if not _mapped(p)]
    if settings.portal and not portals:
        sources = set()
    return FirewallSpec(chain=settings.firewall_chain, parent=settings.firewall_parent,
                        port=settings.port, portals=tuple(sorted(portals)),
                        sources=tuple(sorted(sources)))


def _mapped(text: str) -> bool:
    try:
        return getattr(ipaddress.ip_address(text), "ipv4_mapped", None) is not None
    except ValueError:
        return False


def normalize_sources(values: Iterable[str]) -> Tuple[str, ...]:
    """Return sources as sorted, unique CIDR strings; ValueError names a bad one."""
    nets = set()
    for value in values:
        problem = network_problem(str(value).strip())
        if problem:
            raise ValueError("firewall source %r: %s" % (value, problem))
        nets.add(ipaddress.ip_network(str(value).strip(), strict=True))
    return tuple(str(n) for n in sorted(nets, key=lambda n: (n.version, n)))


def normalize_portals(values: Iterable[str]) -> Tuple[str, ...]:
    """Return portal addresses sorted and unique; ValueError names a bad one."""
    addrs = set()
    for value in values:
        try:
            addr = ipaddress.ip_address(str(value).strip())
        except ValueError as exc:
            raise ValueError("firewall portal %r is not an IP address: %s" % (value, exc))
        problem = host_address_problem(addr)
        if problem:
            raise ValueError("firewall portal %r %s" % (value, problem))
        addrs.add(addr)
    return tuple(str(a) for a in sorted(addrs, key=lambda a: (a.version, a)))


def validated(spec: FirewallSpec) -> FirewallSpec:
    """Return spec with normalized addresses; ValueError on anything unusable."""
    problem = chain_problem(spec.chain)
    if problem:
        raise ValueError("firewall chain %r: %s" % (spec.chain, problem))
    problem = parent_chain_problem(spec.parent, spec.chain)
    if problem:
        raise ValueError("firewall parent %r: %s" % (spec.parent, problem))
    if isinstance(spec.port, bool) or not isinstance(spec.port, int) \
            or not 0 < spec.port < 65536:
        raise ValueError("firewall port %r is not in 1-65535" % (spec.port,))
    return FirewallSpec(spec.chain, spec.parent, spec.port,
                        normalize_portals(spec.portals),
                        normalize_sources(spec.sources), bool(spec.reject_others))


def checked(spec: FirewallSpec) -> FirewallSpec:
    """validated(), with a bad spec raised as the configuration error it is."""
    try:
        return validated(spec)
    except ValueError as exc:
        raise ConfigError(str(exc))


def _version(text: str) -> int:
    return ipaddress.ip_network(text, strict=False).version


def family_sources(spec: FirewallSpec, family: int) -> List[str]:
    """Sources of one address family (4 or 6), CIDR form."""
    return [s for s in spec.sources if _version(s) == family]


def family_portals(spec: FirewallSpec, family: int) -> List[Optional[str]]:
    """Portals of one family; [None] (any address) when the spec names none."""
    if not spec.portals:
        return [None]
    return [p for p in spec.portals if _version(p) == family]


def cidr(text: str) -> str:
    """An address or network in CIDR form."""
    return str(ipaddress.ip_network(text, strict=False))


def diff_rules(desired: Sequence[str], actual: Sequence[str]) -> FirewallStatus:
    """Compare rule strings as multisets, and their order when the sets agree."""
    left = list(actual)
    present, missing = [], []  # type: List[str], List[str]
    for rule in desired:
        if rule in left:
            left.remove(rule)
            present.append(rule)
        else:
            missing.append(rule)
    misordered = not missing and not left and list(desired) != list(actual)
    return FirewallStatus(tuple(present), tuple(missing), tuple(left), misordered)


def merge_status(parts: Iterable[FirewallStatus]) -> FirewallStatus:
    """One status out of several (families, jump and chain)."""
    present, missing, extra = [], [], []  # type: List[str], List[str], List[str]
    misordered = False
    for part in parts:
        present += part.present
        missing += part.missing
        extra += part.extra
        misordered = misordered or part.misordered
    return FirewallStatus(tuple(present), tuple(missing), tuple(extra), misordered)


