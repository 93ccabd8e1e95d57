"""Which rules could accept tcp to our port before our chain is reached (pure)."""

from typing import List, Optional, Sequence, Tuple

from tapeshared.firewall.iptables.plan import Chains, Rule, rule_line
from tapeshared.firewall.spec import FirewallSpec

# Targets that never let a packet in (they end it, or let it go on).
_NEVER_ACCEPT = frozenset(("DROP", "REJECT", "LOG", "NFLOG", "MARK", "CONNMARK", "CT",
                           "NOTRACK", "TCPMSS", "AUDIT", "CLASSIFY", "SET", "TRACE",
                           "DSCP", "TOS", "RETURN"))


def _value(words: Sequence[str], *flags: str) -> Optional[str]:
    for flag in flags:
        if flag in words:
            index = list(words).index(flag)
            return words[index + 1] if index + 1 < len(words) else ""
    return None


def _covers(ports: str, port: int) -> bool:
    for part in ports.split(","):
        low, _, high = part.partition(":")
        try:
            if int(low or 0) <= port <= int(high or low or 65535):
                return True
        except ValueError:
            return True  # a service name: assume it may be ours
    return False


def may_accept(args: Sequence[str], chains: Chains, port: int,
               seen: Tuple[str, ...] = ()) -> bool:
    """Whether a rule could accept tcp to port (conservative: unknown means yes)."""
    words = list(args)
    target = _value(words, "-j", "--jump", "-g", "--goto")
    if target is None or target in _NEVER_ACCEPT:
        return False
    if "!" not in words:
        proto = _value(words, "-p", "--protocol")
        if proto is not None and proto.lower() not in ("tcp", "6", "all", "0"):
            return False
        dport = _value(words, "--dport", "--destination-port", "--dports")
        if dport is not None and not _covers(dport, port):
            return False
    if target in chains:
        return target not in seen and any(
            may_accept(rule, chains, port, seen + (target,)) for rule in chains[target])
    return True


def _path_to(chains: Chains, start: str, goal: str,
             seen: Tuple[str, ...]) -> Optional[List[Tuple[str, int]]]:
    for index, args in enumerate(chains.get(start, [])):
        target = _value(args, "-j", "--jump", "-g", "--goto")
        if target == goal:
            return [(start, index)]
        if target in chains and target not in seen:
            rest = _path_to(chains, target, goal, seen + (target,))
            if rest is not None:
                return [(start, index)] + rest
    return None


def shadow_problem(spec: FirewallSpec, chains: Chains) -> Optional[str]:
    """Why tcp to the port might not reach a custom parent chain (so our rules would
    not decide), or None: the parent is not jumped to from INPUT, or a rule on the
    way there could accept first. Ours to report, not to repair: those rules are
    the admin's."""
    if spec.parent == "INPUT" or "INPUT" not in chains:
        return None
    path = _path_to(chains, "INPUT", spec.parent, ("INPUT",))
    if path is None:
        return "chain %s is not reached from INPUT: tcp/%d never passes our rules" % (
            spec.parent, spec.port)
    for chain, index in path:
        for number, args in enumerate(chains[chain][:index], 1):
            if may_accept(args, chains, spec.port):
                return "rule %d of %s may accept tcp/%d before the jump to %s: %s" % (
                    number, chain, spec.port, spec.parent,
                    rule_line(Rule(chain, tuple(args))))
    return None
