"""nftables adapter: our own `inet` table, replaced in one nft transaction."""

import logging
from typing import List, Optional

from tapeshared.errors import CommandError, ConfigError, TransientError
from tapeshared.fwrules import (
    FirewallSpec,
    FirewallStatus,
    diff_rules,
    nft_desired_lines,
    nft_lines,
    nft_remove_script,
    nft_script,
    nft_table_name,
    validated,
)
from tapeshared.runner import Runner

log = logging.getLogger(__name__)

# Our table is compared as text: `nft list table` prints rules canonically, and
# nft_rules renders them in that form. JSON (-j) would be no more stable, since
# its expression schema changed between nft releases too.
#
# An accept in our base chain does not override a drop or reject in another
# table on the same hook (every base chain gets its say); our table can only
# narrow. Hosts whose main firewall rejects the port need the iptables backend.


class NftablesFirewall:
    """Keeps `table inet <chain lowercased>` exactly as FirewallSpec renders it."""

    def __init__(self, runner: Runner, nft: str = "nft") -> None:
        self.runner = runner
        self.nft = nft

    def _spec(self, spec: FirewallSpec) -> FirewallSpec:
        try:
            return validated(spec)
        except ValueError as exc:
            raise ConfigError(str(exc))

    def _read(self, spec: FirewallSpec) -> Optional[List[str]]:
        """Our table as nft_lines, or None if it does not exist."""
        argv = [self.nft, "list", "table", "inet", nft_table_name(spec)]
        result = self.runner.run(argv, check=False, quiet=True)
        if result.rc == 0:
            return nft_lines(result.stdout)
        if "No such file or directory" in result.stderr:
            return None
        raise CommandError(argv, result.rc, result.stderr)

    def _label(self, spec: FirewallSpec) -> str:
        return "nft table inet %s" % nft_table_name(spec)

    def _actions(self, spec: FirewallSpec) -> List[str]:
        actual = self._read(spec)
        desired = nft_desired_lines(spec)
        if actual is None:
            return ["create %s with %d rules" % (self._label(spec), len(desired) - 1)]
        diff = diff_rules(desired, actual)
        if diff.clean:
            return []
        return ["replace %s (%d missing, %d extra%s)" % (
            self._label(spec), len(diff.missing), len(diff.extra),
            ", misordered" if diff.misordered else "")]

    def inspect(self, spec: FirewallSpec) -> FirewallStatus:
        """Compare our live table with spec; read-only."""
        spec = self._spec(spec)
        diff = diff_rules(nft_desired_lines(spec), self._read(spec) or [])
        label = self._label(spec)
        return FirewallStatus(tuple("%s: %s" % (label, r) for r in diff.present),
                              tuple("%s: %s" % (label, r) for r in diff.missing),
                              tuple("%s: %s" % (label, r) for r in diff.extra),
                              diff.misordered)

    def plan(self, spec: FirewallSpec) -> List[str]:
        """The actions ensure would take now, without taking them."""
        return self._actions(self._spec(spec))

    def ensure(self, spec: FirewallSpec) -> List[str]:
        """Replace our table atomically when it differs from spec."""
        spec = self._spec(spec)
        actions = self._actions(spec)
        if not actions:
            return []
        script = nft_script(spec)
        log.debug("nft script:\n%s", script)
        self.runner.run([self.nft, "-f", "-"], input_text=script)
        for action in actions:
            log.info("firewall: %s", action)
        left = self._actions(spec)
        if left:
            raise TransientError("firewall %s still differs after applying: %s"
                                 % (self._label(spec), "; ".join(left)))
        return actions

    def remove(self, spec: FirewallSpec) -> List[str]:
        """Delete our table (and with it every rule we own)."""
        spec = self._spec(spec)
        if self._read(spec) is None:
            return []
        self.runner.run([self.nft, "-f", "-"], input_text=nft_remove_script(spec))
        action = "delete %s" % self._label(spec)
        log.info("firewall: %s", action)
        return [action]
