"""Firewall rule model: spec, validation, iptables/nft renderings and diffs (pure)."""

# Policy, per address family (4 and 6), shared by the iptables and nft renderings:
# - accept tcp to `port` from every source of that family to every portal of that
#   family (any destination when the spec has no portals at all);
# - then, if reject_others, reject (tcp reset) all other tcp to `port` for each
#   portal of that family; a family that has no portal of its own (or a spec with
#   no portals) rejects tcp to `port` on any address. So a family without sources
#   is closed, never open: nothing wider than the configured initiators reaches
#   the port, whichever addresses the target happens to listen on.
# Our chain (iptables) or table (nft) is wholly ours: any rule in it that we did
# not render is drift and is removed, since it could widen access. Outside it we
# only ever touch rules carrying our comment (the jump).

import ipaddress
import re
import shlex
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

COMMENT = "tapeshared"
FAMILIES = (4, 6)
NFT_CHAIN = "input"
NFT_PRIORITY = -1  # before the usual filter chains (priority 0)

_IPT_CHAIN = re.compile(r"^[A-Za-z0-9_.:+-]{1,28}$")
_NFT_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0,
                   "security": 50, "srcnat": 100}


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
class Rule:
    """One iptables rule: chain plus its match/target arguments (no command)."""

    chain: str
    args: Tuple[str, ...]


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


def normalize_sources(values: Iterable[str]) -> Tuple[str, ...]:
    """Return sources as sorted, unique CIDR strings; ValueError names a bad one."""
    nets = set()
    for value in values:
        try:
            net = ipaddress.ip_network(str(value).strip(), strict=True)
        except ValueError as exc:
            raise ValueError("firewall source %r is not an address or network "
                             "with zero host bits: %s" % (value, exc))
        _refuse_mapped("source", value, net.network_address, net.prefixlen >= 96)
        nets.add(net)
    return tuple(str(n) for n in sorted(nets, key=lambda n: (n.version, n)))


def normalize_portals(values: Iterable[str]) -> Tuple[str, ...]:
    """Return portal addresses sorted and unique; ValueError names a bad one."""
    addrs = set()
    for value in values:
        try:
            addr = ipaddress.ip_address(str(value).strip())
        except ValueError as exc:
            raise ValueError("firewall portal %r is not an IP address: %s" % (value, exc))
        _refuse_mapped("portal", value, addr, True)
        addrs.add(addr)
    return tuple(str(a) for a in sorted(addrs, key=lambda a: (a.version, a)))


def _refuse_mapped(what: str, value: str, addr: object, whole: bool) -> None:
    # Netfilter sees IPv4 clients as IPv4 packets, and the tools print mapped
    # addresses in forms of their own: the IPv4 form is the only one that works.
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None and whole:
        raise ValueError("firewall %s %r is an IPv4-mapped IPv6 address; write it "
                         "as IPv4 (%s)" % (what, value, mapped))


def validated(spec: FirewallSpec) -> FirewallSpec:
    """Return spec with normalized addresses; ValueError on anything unusable."""
    for what, name in (("chain", spec.chain), ("parent", spec.parent)):
        if not _IPT_CHAIN.match(name):
            raise ValueError("firewall %s %r is not a valid chain name "
                             "(1-28 letters, digits, _ . : + -)" % (what, name))
    if not _NFT_NAME.match(spec.chain.lower()):
        raise ValueError("firewall chain %r does not give a valid nft table name"
                         % spec.chain)
    if spec.chain == spec.parent:
        raise ValueError("firewall chain and parent are both %r" % spec.chain)
    if isinstance(spec.port, bool) or not isinstance(spec.port, int) \
            or not 0 < spec.port < 65536:
        raise ValueError("firewall port %r is not in 1-65535" % (spec.port,))
    return FirewallSpec(spec.chain, spec.parent, spec.port,
                        normalize_portals(spec.portals),
                        normalize_sources(spec.sources), bool(spec.reject_others))


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


def _cidr(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))


def chain_rules(spec: FirewallSpec, family: int) -> List[Rule]:
    """Our chain's rules for one family, in iptables -S canonical argument form."""
    tail = ("-p", "tcp", "-m", "tcp", "--dport", str(spec.port), "-m", "comment",
            "--comment", COMMENT)
    portals = family_portals(spec, family)
    rules = []
    for src in family_sources(spec, family):
        # iptables -S leaves out a match on 0.0.0.0/0 or ::/0, and so do we.
        source = ("-s", src) if not src.endswith("/0") else ()
        for dst in portals:
            dest = ("-d", _cidr(dst)) if dst else ()
            rules.append(Rule(spec.chain, source + dest + tail + ("-j", "ACCEPT")))
    if spec.reject_others:
        for dst in portals or [None]:
            dest = ("-d", _cidr(dst)) if dst else ()
            rules.append(Rule(spec.chain, dest + tail
                              + ("-j", "REJECT", "--reject-with", "tcp-reset")))
    return rules


def jump_rule(spec: FirewallSpec) -> Rule:
    """The one rule in the parent chain that sends packets through our chain."""
    return Rule(spec.parent, ("-m", "comment", "--comment", COMMENT, "-j", spec.chain))


def add_argv(rule: Rule, position: Optional[int] = None) -> List[str]:
    """Arguments appending rule (or inserting it at 1-based position)."""
    if position is None:
        return ["-A", rule.chain] + list(rule.args)
    return ["-I", rule.chain, str(position)] + list(rule.args)


def check_argv(rule: Rule) -> List[str]:
    """Arguments testing whether rule exists (exit status 0 if so)."""
    return ["-C", rule.chain] + list(rule.args)


def delete_argv(rule: Rule) -> List[str]:
    """Arguments deleting the first rule that matches rule."""
    return ["-D", rule.chain] + list(rule.args)


def _quote(arg: str) -> str:
    if arg and not re.search(r'[\s"\'\\]', arg):
        return arg
    return '"%s"' % arg.replace("\\", "\\\\").replace('"', '\\"')


def render_argv(argv: Sequence[str]) -> str:
    """One line as iptables -S / iptables-restore write it."""
    return " ".join(_quote(a) for a in argv)


def rule_line(rule: Rule) -> str:
    """The rule as iptables -S prints it."""
    return render_argv(add_argv(rule))


def is_ours(args: Sequence[str]) -> bool:
    """True if a rule carries our comment."""
    return any(args[i] == "--comment" and args[i + 1] == COMMENT
               for i in range(len(args) - 1))


def is_final_reject(args: Sequence[str]) -> bool:
    """True for an unconditional REJECT/DROP rule: nothing after it is reached."""
    rest = list(args)
    if rest[:2] == ["-m", "comment"] and len(rest) >= 4:
        rest = rest[4:]
    return rest[:2] in (["-j", "REJECT"], ["-j", "DROP"]) and \
        (len(rest) == 2 or (len(rest) == 4 and rest[2] == "--reject-with"))


def jump_insert_position(parent_rules: Sequence[Sequence[str]]) -> int:
    """1-based position for our jump: before the parent's final REJECT/DROP, else top."""
    for index, args in enumerate(parent_rules):
        if is_final_reject(args):
            return index + 1
    return 1


def parse_rules(text: str) -> Dict[str, List[Tuple[str, ...]]]:
    """Parse `iptables -S` output into chain -> rule argument tuples, in order."""
    chains: Dict[str, List[Tuple[str, ...]]] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=False)
        if len(words) >= 2 and words[0] in ("-N", "-P"):
            chains.setdefault(words[1], [])
        elif len(words) >= 2 and words[0] == "-A":
            chains.setdefault(words[1], []).append(tuple(words[2:]))
    return chains


def restore_text(commands: Sequence[Sequence[str]],
                 declare: Sequence[str] = ()) -> str:
    """An iptables-restore --noflush batch for the filter table.

    Declaring a chain creates it, or flushes it if it exists, inside the same
    transaction as the commands, so the rebuilt chain appears in one step.
    """
    lines = ["*filter"] + [":%s - [0:0]" % name for name in declare]
    lines += [render_argv(argv) for argv in commands]
    return "\n".join(lines + ["COMMIT", ""])


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


def nft_table_name(spec: FirewallSpec) -> str:
    """Our nft table (family inet) is named after our chain, in lower case."""
    return spec.chain.lower()


def nft_header() -> str:
    """Our base chain's declaration line, normalized as nft_lines returns it."""
    return "type filter hook input priority %d; policy accept;" % NFT_PRIORITY


def nft_rules(spec: FirewallSpec) -> List[str]:
    """Our nft rules in the canonical form `nft list` prints (nft 0.9-1.0)."""
    rules = []
    tail = 'tcp dport %d' % spec.port
    for family in FAMILIES:
        key = "ip" if family == 4 else "ip6"
        portals = family_portals(spec, family)
        for src in family_sources(spec, family):
            for dst in portals:
                dest = " %s daddr %s" % (key, dst) if dst else ""
                rules.append('%s saddr %s%s %s accept comment "%s"' % (
                    key, _nft_addr(src), dest, tail, COMMENT))
        if spec.reject_others:
            # `ip version 4` keeps the family visible in listings; a bare
            # `meta nfproto` before `reject` is elided when nft prints the rule.
            for dst in portals or [None]:
                match = "%s daddr %s" % (key, dst) if dst else \
                    "%s version %d" % (key, family)
                rules.append('%s %s reject with tcp reset comment "%s"' % (
                    match, tail, COMMENT))
    return rules


def _nft_addr(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def nft_script(spec: FirewallSpec) -> str:
    """One `nft -f` transaction replacing our table (created first so delete works)."""
    table = nft_table_name(spec)
    body = ["\t\t" + nft_header()] + ["\t\t" + r for r in nft_rules(spec)]
    return "\n".join(["table inet %s {}" % table, "delete table inet %s" % table,
                      "table inet %s {" % table, "\tchain %s {" % NFT_CHAIN]
                     + body + ["\t}", "}", ""])


def nft_remove_script(spec: FirewallSpec) -> str:
    """One `nft -f` transaction deleting our table whether or not it exists."""
    table = nft_table_name(spec)
    return "table inet %s {}\ndelete table inet %s\n" % (table, table)


def _normalize_header(line: str) -> str:
    # nft 1.0 prints `priority filter - 1` where 0.9 printed `priority -1`.
    match = re.search(r"priority ([a-z]+)(?: ([+-]) (\d+))?", line)
    if match and match.group(1) in _PRIORITY_NAMES:
        delta = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
        value = _PRIORITY_NAMES[match.group(1)] + delta
        line = line[:match.start()] + "priority %d" % value + line[match.end():]
    return " ".join(line.split())


def nft_lines(text: str) -> List[str]:
    """Flatten `nft list table` output into `chain NAME: line` strings, in order."""
    lines, block = [], None
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("table "):
            continue
        if line == "}":
            block = None
        elif line.endswith("{"):
            block = line[:-1].strip()
        elif line.startswith("type ") and block:
            lines.append("%s: %s" % (block, _normalize_header(line)))
        else:
            lines.append("%s: %s" % (block or "table", line))
    return lines


def nft_desired_lines(spec: FirewallSpec) -> List[str]:
    """What nft_lines must return for our table when nothing drifted."""
    block = "chain %s" % NFT_CHAIN
    return ["%s: %s" % (block, line) for line in [nft_header()] + nft_rules(spec)]
