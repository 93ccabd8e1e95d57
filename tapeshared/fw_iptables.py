"""iptables/ip6tables adapter: own chain plus one jump, repaired atomically."""

import logging
import re
import shlex
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from tapeshared import atomicfile
from tapeshared.errors import ConfigError, ManagedFileError, TransientError
from tapeshared.fwrules import (
    FirewallSpec,
    FirewallStatus,
    Rule,
    add_argv,
    chain_rules,
    check_argv,
    delete_argv,
    diff_rules,
    is_final_reject,
    is_ours,
    jump_insert_position,
    jump_rule,
    merge_status,
    parse_rules,
    render_argv,
    restore_text,
    rule_line,
    validated,
)
from tapeshared.runner import Runner

log = logging.getLogger(__name__)

Chains = Dict[str, List[Tuple[str, ...]]]
_COUNTERS = re.compile(r"^\[\d+:\d+\]\s+")


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
    parent = chains[spec.parent]
    finals = [i for i, args in enumerate(parent) if is_final_reject(args)]
    return not finals or index < finals[0]


def _jump_ok(spec: FirewallSpec, chains: Chains) -> bool:
    jump = jump_rule(spec)
    if _ours_outside(spec, chains) != [jump]:
        return False
    return _jump_effective(spec, chains, chains[spec.parent].index(jump.args))


def _check_parent(spec: FirewallSpec, chains: Chains, label: str) -> None:
    if spec.parent not in chains:
        raise ConfigError("firewall parent chain %r does not exist in the %s "
                          "filter table" % (spec.parent, label))


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
        remaining = [a for a in chains[spec.parent] if not is_ours(a)]
        position = jump_insert_position(remaining)
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
            note = " (after the final REJECT/DROP of %s: no effect)" % spec.parent
        jumps.append(rule_line(rule) + note)
    return merge_status([diff_rules(desired, actual),
                         diff_rules([rule_line(jump_rule(spec))], jumps)])


def _labelled(label: str, status: FirewallStatus) -> FirewallStatus:
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
    jump_at = len(keep)
    if parent_rules:
        pos = jump_insert_position([args for _, args in parent_rules])
        jump_at = parent_rules[pos - 1][0]
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


class IptablesFirewall:
    """Keeps our chain and its jump in the iptables and ip6tables filter tables."""

    def __init__(self, runner: Runner, iptables: str = "iptables",
                 ip6tables: str = "ip6tables", iptables_restore: str = "iptables-restore",
                 ip6tables_restore: str = "ip6tables-restore",
                 families: Sequence[int] = (4, 6),
                 restore_wait: bool = True) -> None:
        # restore_wait=False for iptables < 1.6.2 (CentOS 7), whose restore lacks -w.
        self.runner = runner
        self.binaries = {4: (iptables, iptables_restore), 6: (ip6tables, ip6tables_restore)}
        self.labels = {4: "iptables", 6: "ip6tables"}
        self.families = tuple(families)
        self.restore_wait = restore_wait

    def _spec(self, spec: FirewallSpec) -> FirewallSpec:
        try:
            return validated(spec)
        except ValueError as exc:
            raise ConfigError(str(exc))

    def _read(self, family: int) -> Chains:
        binary = self.binaries[family][0]
        result = self.runner.run([binary, "-w", "-S"], quiet=True)
        return parse_rules(result.stdout)

    def _plans(self, spec: FirewallSpec) -> List[Tuple[int, FamilyPlan]]:
        plans = []
        for family in self.families:
            chains = self._read(family)
            _check_parent(spec, chains, self.labels[family])
            plans.append((family, plan_family(spec, family, chains)))
        return plans

    def inspect(self, spec: FirewallSpec) -> FirewallStatus:
        """Compare the live tables with spec; read-only."""
        spec = self._spec(spec)
        parts = []
        for family in self.families:
            chains = self._read(family)
            _check_parent(spec, chains, self.labels[family])
            parts.append(_labelled(self.labels[family],
                                   status_family(spec, family, chains)))
        return merge_status(parts)

    def plan(self, spec: FirewallSpec) -> List[str]:
        """The actions ensure would take now, without taking them."""
        spec = self._spec(spec)
        return ["%s: %s" % (self.labels[family], action)
                for family, plan in self._plans(spec) for action in plan.actions]

    def ensure(self, spec: FirewallSpec) -> List[str]:
        """Bring both tables to spec, one atomic restore batch per family."""
        spec = self._spec(spec)
        done = []
        for family, plan in self._plans(spec):
            if not plan.commands:
                continue
            binary = self.labels[family]
            self._restore(family, restore_text(plan.commands, plan.declare))
            for action in plan.actions:
                log.info("firewall %s: %s", binary, action)
                done.append("%s: %s" % (binary, action))
            self._verify(spec, family)
        return done

    def remove(self, spec: FirewallSpec) -> List[str]:
        """Delete our jump rules, then flush and delete our chain."""
        spec = self._spec(spec)
        done = []
        for family in self.families:
            binary = self.labels[family]
            chains = self._read(family)
            commands = [tuple(delete_argv(r)) for r in _ours_outside(spec, chains)]
            actions = ["delete %s" % rule_line(r) for r in _ours_outside(spec, chains)]
            if spec.chain in chains:
                commands += [("-F", spec.chain), ("-X", spec.chain)]
                actions.append("delete chain %s" % spec.chain)
            if commands:
                self._restore(family, restore_text(commands))
                for action in actions:
                    log.info("firewall %s: %s", binary, action)
                    done.append("%s: %s" % (binary, action))
        return done

    def persist(self, spec: FirewallSpec, path: str, family: int = 4) -> bool:
        """Write our rules into an iptables-services save file; True if it changed."""
        spec = self._spec(spec)
        data = atomicfile.read_bytes(path)
        if data is None:
            raise ManagedFileError("%s: does not exist; refusing to create a "
                                   "firewall save file from nothing" % path)
        text = data.decode("utf-8", "surrogateescape")
        try:
            merged = merge_save_file(text, spec, family)
        except ValueError as exc:
            raise ManagedFileError("%s: %s; not touching it" % (path, exc))
        changed = atomicfile.write_if_changed(
            path, merged.encode("utf-8", "surrogateescape"))
        if changed:
            log.info("firewall: saved chain %s into %s", spec.chain, path)
        return changed

    def _restore(self, family: int, text: str) -> None:
        argv = [self.binaries[family][1]] + (["-w"] if self.restore_wait else [])
        log.debug("restore batch:\n%s", text)
        self.runner.run(argv + ["--noflush"], input_text=text)

    def _verify(self, spec: FirewallSpec, family: int) -> None:
        binary = self.binaries[family][0]
        left = plan_family(spec, family, self._read(family))
        check = self.runner.run([binary, "-w"] + check_argv(jump_rule(spec)),
                                check=False, quiet=True)
        if left.commands or check.rc != 0:
            raise TransientError("firewall %s still differs after applying: %s" % (
                binary, "; ".join(left.actions) or render_argv(check.argv)))

