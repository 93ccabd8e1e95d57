"""iptables rules and plans (pure): our chain, the jump, -S parsing, save files."""

import re
import shlex
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tapeshared.firewall.spec import (
    COMMENT,
    FirewallSpec,
    FirewallStatus,
    cidr,
    diff_rules,
    family_portals,
    family_sources,
    merge_status,
)

Chains = Dict[str, List[Tuple[str, ...]]]
_COUNTERS = re.compile(r"^\[\d+:\d+\]\s+")


@dataclass(frozen=True)
class Rule:
    """One iptables rule: chain plus its match/target arguments (no command)."""

    chain: str
    args: Tuple[str, ...]


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
            dest = ("-d", cidr(dst)) if dst else ()
            rules.append(Rule(spec.chain, source + dest + tail + ("-j", "ACCEPT")))
    if spec.reject_others:
        # any destination: see the policy in spec.py
        rules.append(Rule(spec.chain, tail + ("-j", "REJECT", "--reject-with", "tcp-reset")))
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


_CANNOT_ACCEPT = ("DROP", "REJECT", "LOG", "NFLOG")


def cannot_accept(args: Sequence[str]) -> bool:
    """True for a rule that can only drop, reject or log (or does nothing at all):
    it may sit above our jump, since it never lets a packet in before our chain."""
    words = list(args)
    if "-g" in words or "--goto" in words:
        return False
    for flag in ("-j", "--jump"):
        if flag in words:
            index = words.index(flag)
            return index + 1 < len(words) and words[index + 1] in _CANNOT_ACCEPT
    return True


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




@dataclass(frozen=True)
class FamilyPlan:
    """What one family's table needs: chains to (re)declare, commands, and why."""

    actions: Tuple[str, ...] = ()
    declare: Tuple[str, ...] = ()
    commands: Tuple[Tuple[str, ...], ...] = ()


def _ours_outside(spec: FirewallSpec, chains: Chains) -> List[Rule]:
    """Rules carrying our comment outside our chain: jumps, current or stale."""
    return [Rule(name, args) for name in sorted(chains) if name != spec.chain
            for args in chains[name] if is_ours(args)]


def _jump_effective(spec: FirewallSpec, chains: Chains, index: int) -> bool:
    return all(cannot_accept(args) for args in chains[spec.parent][:index])


def _jump_ok(spec: FirewallSpec, chains: Chains) -> bool:
    jump = jump_rule(spec)
    if _ours_outside(spec, chains) != [jump]:
        return False
    return _jump_effective(spec, chains, chains[spec.parent].index(jump.args))


def parent_problem(spec: FirewallSpec, chains: Chains, label: str) -> Optional[str]:
    """Why our jump cannot go in now (the parent chain is missing), or None."""
    if spec.parent not in chains:
        return "parent chain %s does not exist in the %s filter table" % (spec.parent, label)
    return None


def plan_family(spec: FirewallSpec, family: int, chains: Chains) -> FamilyPlan:
    """Changes bringing one family's filter table (parsed -S output) to spec."""
    actions, declare, commands = [], [], []  # type: Tuple[List[str], List[str], List[Tuple[str, ...]]]
    desired = chain_rules(spec, family)
    actual = chains.get(spec.chain)
    if actual != [r.args for r in desired]:
        declare.append(spec.chain)
        commands += [tuple(add_argv(r)) for r in desired]
        if actual is None:
            actions.append("create chain %s with %d rules" % (spec.chain, len(desired)))
        else:
            diff = diff_rules([rule_line(r) for r in desired],
                              [rule_line(Rule(spec.chain, a)) for a in actual])
            actions.append("rebuild chain %s (%d missing, %d extra%s)" % (
                spec.chain, len(diff.missing), len(diff.extra),
                ", misordered" if diff.misordered else ""))
    if not _jump_ok(spec, chains):
        for rule in _ours_outside(spec, chains):
            commands.append(tuple(delete_argv(rule)))
            actions.append("delete %s" % rule_line(rule))
        # first, above anything that could accept tcp/port before our chain
        position = 1
        commands.append(tuple(add_argv(jump_rule(spec), position)))
        actions.append("insert jump to %s at %s position %d" % (
            spec.chain, spec.parent, position))
    return FamilyPlan(tuple(actions), tuple(declare), tuple(commands))


def status_family(spec: FirewallSpec, family: int, chains: Chains) -> FirewallStatus:
    """Desired versus actual rules of one family, as `-A CHAIN ...` strings."""
    desired = ["-N %s" % spec.chain] + [rule_line(r) for r in chain_rules(spec, family)]
    actual = []  # type: List[str]
    if spec.chain in chains:
        actual = ["-N %s" % spec.chain] + [rule_line(Rule(spec.chain, a))
                                           for a in chains[spec.chain]]
    jumps = []
    for rule in _ours_outside(spec, chains):
        note = ""
        if rule.chain == spec.parent and not _jump_effective(
                spec, chains, chains[spec.parent].index(rule.args)):
            note = " (below a rule of %s that may accept tcp/%d first)" % (
                spec.parent, spec.port)
        jumps.append(rule_line(rule) + note)
    return merge_status([diff_rules(desired, actual),
                         diff_rules([rule_line(jump_rule(spec))], jumps)])


def labelled(label: str, status: FirewallStatus) -> FirewallStatus:
    def tag(items: Sequence[str]) -> Tuple[str, ...]:
        return tuple("%s: %s" % (label, item) for item in items)
    return FirewallStatus(tag(status.present), tag(status.missing),
                          tag(status.extra), status.misordered)


def merge_save_file(text: str, spec: FirewallSpec, family: int) -> str:
    """Put our chain and jump into iptables-save text; keep other lines as they are.

    Owned: our chain's declaration, every `-A` line of our chain, and any line
    carrying our comment. Raises ValueError when the file cannot be handled safely.
    """
    lines = text.splitlines(True)
    stripped = [line.strip() for line in lines]
    if "*filter" not in stripped:
        raise ValueError("no *filter table")
    start = stripped.index("*filter")
    if "COMMIT" not in stripped[start:]:
        raise ValueError("the *filter table has no COMMIT line")
    end = stripped.index("COMMIT", start)
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    keep, parent_rules, declared = [], [], False  # type: List[str], List[Tuple[int, Tuple[str, ...]]], bool
    for line in lines[start + 1:end]:
        words = _words(line)
        if words[:1] and words[0].startswith(":"):
            if words[0][1:] == spec.chain:
                continue
            declared = declared or words[0][1:] == spec.parent
        elif words[:1] == ["-A"] and len(words) > 1:
            if words[1] == spec.chain or is_ours(words[2:]):
                continue
            if words[1] == spec.parent:
                parent_rules.append((len(keep), tuple(words[2:])))
        keep.append(line)
    if not declared:
        raise ValueError("the *filter table does not declare chain %s" % spec.parent)
    decls = [i for i, line in enumerate(keep) if line.lstrip().startswith(":")]
    decl_at = decls[-1] + 1 if decls else 0
    # our jump first in the parent, as plan_family puts it
    jump_at = parent_rules[0][0] if parent_rules else len(keep)
    ours = [rule_line(r) + newline for r in chain_rules(spec, family)]
    keep += ours
    inserts = sorted([(jump_at, 1, rule_line(jump_rule(spec)) + newline),
                      (decl_at, 0, ":%s - [0:0]%s" % (spec.chain, newline))], reverse=True)
    for index, _, line in inserts:
        keep.insert(index, line)
    return "".join(lines[:start + 1] + keep + lines[end:])


def _words(line: str) -> List[str]:
    try:
        return shlex.split(_COUNTERS.sub("", line.strip()))
    except ValueError as exc:
        raise ValueError("cannot parse line %r: %s" % (line.strip(), exc))
