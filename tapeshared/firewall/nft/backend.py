"""nftables adapter: our own `inet` table, replaced in one nft transaction."""

import logging
from typing import List, Optional

from tapeshared.core.errors import CommandError, TapesharedError, TransientError
from tapeshared.firewall import spec as fws
from tapeshared.firewall.nft.plan import (
    nft_desired_lines,
    nft_lines,
    nft_remove_script,
    nft_script,
    nft_table_name,
)
from tapeshared.host.runner import Runner

log = logging.getLogger(__name__)
LABEL = "nft"

# Our table is compared as text: `nft list table` prints rules canonically, and
# nft_rules renders them in that form. JSON (-j) would be no more stable, since
# its expression schema changed between nft releases too.
#
# An accept in our base chain does not override a drop or reject in another
# table on the same hook (every base chain gets its say); our table can only
# narrow. Hosts whose main firewall rejects the port need the iptables backend.


class NftablesFirewall(fws.Conveniences):
    """Keeps `table inet <chain lowercased>` exactly as fws.FirewallSpec renders it."""

    name = "nftables"

    def __init__(self, runner: Runner, nft: str = "nft") -> None:
        self.runner = runner
        self.nft = nft

    def _read(self, spec: fws.FirewallSpec) -> Optional[List[str]]:
        """Our table as nft_lines, or None if it does not exist."""
        argv = [self.nft, "list", "table", "inet", nft_table_name(spec)]
        result = self.runner.run(argv, check=False, quiet=True)
        if result.rc == 0:
            return nft_lines(result.stdout)
        if "No such file or directory" in result.stderr:
            return None
        raise CommandError(argv, result.rc, result.stderr)

    def _label(self, spec: fws.FirewallSpec) -> str:
        return "nft table inet %s" % nft_table_name(spec)

    def observe(self, spec: fws.FirewallSpec) -> fws.FirewallState:
        """Our table as lines ([] when it does not exist), or why it cannot be read."""
        spec = fws.checked(spec)
        try:
            return fws.FirewallState({LABEL: self._read(spec) or []})
        except TapesharedError as exc:
            return fws.FirewallState(errors={LABEL: str(exc)})

    def _actions(self, state: fws.FirewallState, spec: fws.FirewallSpec) -> List[str]:
        actual = state.tables.get(LABEL)
        if not isinstance(actual, list):
            return []
        desired = nft_desired_lines(spec)
        if not actual:
            return ["create %s with %d rules" % (self._label(spec), len(desired) - 1)]
        diff = fws.diff_rules(desired, actual)
        if diff.clean:
            return []
        return ["replace %s (%d missing, %d extra%s)" % (
            self._label(spec), len(diff.missing), len(diff.extra),
            ", misordered" if diff.misordered else "")]

    def plan(self, state: fws.FirewallState, spec: fws.FirewallSpec) -> fws.FirewallPlan:
        """Replace our table when it differs from spec (pure)."""
        spec = fws.checked(spec)
        if LABEL in state.errors:
            return fws.FirewallPlan(errors=((LABEL, state.errors[LABEL]),))
        actions = self._actions(state, spec)
        if not actions:
            return fws.FirewallPlan()
        return fws.FirewallPlan(tuple(actions), ((LABEL, nft_script(spec)),))

    def status(self, state: fws.FirewallState, spec: fws.FirewallSpec) -> fws.FirewallStatus:
        """Compare our table with spec (pure)."""
        spec = fws.checked(spec)
        actual = state.tables.get(LABEL)
        diff = fws.diff_rules(nft_desired_lines(spec), actual if isinstance(actual, list) else [])
        label = self._label(spec)
        return fws.FirewallStatus(tuple("%s: %s" % (label, r) for r in diff.present),
                              tuple("%s: %s" % (label, r) for r in diff.missing),
                              tuple("%s: %s" % (label, r) for r in diff.extra),
                              diff.misordered)

    def apply(self, plan: fws.FirewallPlan, spec: fws.FirewallSpec) -> List[str]:
        """Run the script in one transaction, then read the table back."""
        spec = fws.checked(spec)
        for _label, script in plan.batches:
            log.debug("nft script:\n%s", script)
            self.runner.run([self.nft, "-f", "-"], input_text=script)
        for action in plan.actions:
            log.info("firewall: %s", action)
        if plan.batches:
            left = self._actions(self.observe(spec), spec)
            if left:
                raise TransientError("firewall %s still differs after applying: %s"
                                     % (self._label(spec), "; ".join(left)))
        return list(plan.actions)

    def remove(self, spec: fws.FirewallSpec) -> List[str]:
        """Delete our table (and with it every rule we own)."""
        spec = fws.checked(spec)
        if self._read(spec) is None:
            return []
        self.runner.run([self.nft, "-f", "-"], input_text=nft_remove_script(spec))
        action = "delete %s" % self._label(spec)
        log.info("firewall: %s", action)
        return [action]
