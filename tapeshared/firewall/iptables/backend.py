"""iptables/ip6tables adapter: own chain plus one jump, repaired atomically, per family."""

import logging
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tapeshared.core.errors import CommandError, ManagedFileError, TapesharedError, TransientError
from tapeshared.core.plan import FileChange
from tapeshared.firewall.iptables.plan import (
    Chains,
    _ours_outside,
    check_argv,
    delete_argv,
    jump_rule,
    labelled,
    merge_save_file,
    parent_problem,
    parse_rules,
    plan_family,
    render_argv,
    restore_text,
    rule_line,
    status_family,
)
from tapeshared.firewall.iptables.reach import shadow_problem
from tapeshared.firewall.spec import (
    Conveniences,
    FirewallPlan,
    FirewallSpec,
    FirewallState,
    FirewallStatus,
    checked,
    merge_status,
)
from tapeshared.host import atomicfile
from tapeshared.host.runner import Runner

log = logging.getLogger(__name__)
LABELS = {4: "iptables", 6: "ip6tables"}


class IptablesFirewall(Conveniences):
    """Keeps our chain and its jump in the iptables and ip6tables filter tables.

    Each family is read, planned and applied on its own: a kernel without IPv6
    (ip6tables fails) still gets the IPv4 rules, and the failing family is
    reported and retried.
    """

    name = "iptables"

    def __init__(self, runner: Runner, iptables: str = "iptables",
                 ip6tables: str = "ip6tables", iptables_restore: str = "iptables-restore",
                 ip6tables_restore: str = "ip6tables-restore",
                 families: Sequence[int] = (4, 6), restore_wait: Optional[bool] = None,
                 save_files: Optional[Mapping[int, str]] = None) -> None:
        # restore_wait: whether iptables-restore takes -w (1.6.2 and later; CentOS 7
        # builds differ). None: found out at run time, per family (see _restore).
        self.runner = runner
        self.binaries = {4: (iptables, iptables_restore), 6: (ip6tables, ip6tables_restore)}
        self.families = tuple(families)
        self.restore_wait = {4: restore_wait, 6: restore_wait}  # type: Dict[int, Optional[bool]]
        self.save_files = dict(save_files or {})

    def _read(self, family: int) -> Chains:
        result = self.runner.run([self.binaries[family][0], "-w", "-S"], quiet=True)
        return parse_rules(result.stdout)

    def observe(self, spec: FirewallSpec) -> FirewallState:
        """`iptables -S` per family (or why it failed) and the save files."""
        tables: Dict[str, object] = {}
        errors: Dict[str, str] = {}
        for family in self.families:
            try:
                tables[LABELS[family]] = self._read(family)
            except TapesharedError as exc:
                errors[LABELS[family]] = str(exc)
        files = {path: atomicfile.read_bytes(path) for path in self.save_files.values()}
        return FirewallState(tables, errors, files)

    def plan(self, state: FirewallState, spec: FirewallSpec) -> FirewallPlan:
        """Per family: a restore batch bringing the table to spec (pure)."""
        spec = checked(spec)
        actions: List[str] = []
        batches: List[Tuple[str, str]] = []
        errors: List[Tuple[str, str]] = []
        for family in self.families:
            label = LABELS[family]
            chains = state.tables.get(label)
            if not isinstance(chains, dict):
                errors.append((label, state.errors.get(label, "not read")))
                continue
            problem = parent_problem(spec, chains, label)
            if problem:
                errors.append((label, problem))
                continue
            plan = plan_family(spec, family, chains)
            if plan.commands:
                batches.append((label, restore_text(plan.commands, plan.declare)))
                actions.extend("%s: %s" % (label, a) for a in plan.actions)
            shadow = shadow_problem(spec, chains)
            if shadow:  # our rules go in all the same; the rest is the admin's
                errors.append((label, shadow))
        files = []
        for family, path in sorted(self.save_files.items()):
            change = self._save_file(state, spec, family, path)
            if change is not None:
                files.append(change)
                actions.append("firewall: save chain %s into %s" % (spec.chain, path))
        return FirewallPlan(tuple(actions), tuple(batches), tuple(files), tuple(errors))

    @staticmethod
    def _save_file(state: FirewallState, spec: FirewallSpec, family: int,
                   path: str) -> Optional[FileChange]:
        data = state.files.get(path)
        if data is None:
            raise ManagedFileError("%s: does not exist; refusing to create a "
                                   "firewall save file from nothing" % path)
        text = data.decode("utf-8", "surrogateescape")
        try:
            merged = merge_save_file(text, spec, family).encode("utf-8", "surrogateescape")
        except ValueError as exc:
            raise ManagedFileError("%s: %s; not touching it" % (path, exc))
        return None if merged == data else FileChange(path, data, merged)

    def status(self, state: FirewallState, spec: FirewallSpec) -> FirewallStatus:
        """Desired versus actual rules of every readable family (pure)."""
        spec = checked(spec)
        parts = []
        for family in self.families:
            chains = state.tables.get(LABELS[family])
            if isinstance(chains, dict):
                parts.append(labelled(LABELS[family], status_family(spec, family, chains)))
        return merge_status(parts)

    def apply(self, plan: FirewallPlan, spec: FirewallSpec) -> List[str]:
        """Run each family's batch, verify it by reading it back; write save files.

        A family that fails does not keep the other one from its rules: each batch
        is one transaction, the failures are raised together at the end.
        """
        spec = checked(spec)
        done = []
        failed = []  # type: List[str]
        by_label = {label: family for family, label in LABELS.items()}
        for label, text in plan.batches:
            family = by_label[label]
            try:
                self._restore(family, text)
            except TapesharedError as exc:
                failed.append("%s: %s" % (label, exc))
                continue
            for action in plan.actions:
                if action.startswith(label + ": "):
                    log.info("firewall %s", action)
                    done.append(action)
            try:
                self._verify(spec, family)
            except TapesharedError as exc:
                failed.append("%s: %s" % (label, exc))
        for change in plan.files:
            if atomicfile.write_if_changed(change.path, change.new):
                log.info("firewall: saved chain %s into %s", spec.chain, change.path)
                done.append("wrote %s" % change.path)
        if failed:
            raise TransientError("firewall: %s" % "; ".join(failed))
        return done

    def remove(self, spec: FirewallSpec) -> List[str]:
        """Delete our jump rules, then flush and delete our chain."""
        spec = checked(spec)
        done = []
        for family in self.families:
            label = LABELS[family]
            chains = self._read(family)
            commands: List[Tuple[str, ...]] = [
                tuple(delete_argv(r)) for r in _ours_outside(spec, chains)]
            actions = ["delete %s" % rule_line(r) for r in _ours_outside(spec, chains)]
            if spec.chain in chains:
                commands += [("-F", spec.chain), ("-X", spec.chain)]
                actions.append("delete chain %s" % spec.chain)
            if commands:
                self._restore(family, restore_text(commands))
                for action in actions:
                    log.info("firewall %s: %s", label, action)
                    done.append("%s: %s" % (label, action))
        return done

    def _restore(self, family: int, text: str) -> None:
        """Apply one batch, with -w where this iptables-restore knows it.

        Not known yet: try -w; a build that rejects the option (it applied
        nothing) gets the same batch again without it, and is remembered.
        """
        binary = self.binaries[family][1]
        log.debug("restore batch:\n%s", text)
        wait = self.restore_wait[family]
        if wait is None:
            result = self.runner.run([binary, "-w", "--noflush"], input_text=text,
                                     check=False)
            if result.rc == 0:
                self.restore_wait[family] = True
                return
            if not _rejects_wait(result.stderr):
                raise CommandError(result.argv, result.rc, result.stderr)
            log.info("%s does not take -w (an older build): restoring without it", binary)
            self.restore_wait[family] = wait = False
        self.runner.run([binary] + (["-w"] if wait else []) + ["--noflush"], input_text=text)

    def _verify(self, spec: FirewallSpec, family: int) -> None:
        binary = self.binaries[family][0]
        left = plan_family(spec, family, self._read(family))
        check = self.runner.run([binary, "-w"] + check_argv(jump_rule(spec)),
                                check=False, quiet=True)
        if left.commands or check.rc != 0:
            raise TransientError("firewall %s still differs after applying: %s" % (
                binary, "; ".join(left.actions) or render_argv(check.argv)))


def _rejects_wait(stderr: str) -> bool:
    """getopt's words for an option it does not know, about -w."""
    text = stderr.lower()
    return ("unrecognized option" in text or "invalid option" in text) and (
        "-w" in text or "'w'" in text)
