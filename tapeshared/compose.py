"""Composition root: the only place that builds real adapters."""

from typing import Callable, List, Optional

from tapeshared import addrwatch, discovery
from tapeshared.errors import ConfigError
from tapeshared.fw_iptables import IptablesFirewall
from tapeshared.fw_nftables import NftablesFirewall
from tapeshared.fwrules import FirewallSpec
from tapeshared.iet import IetBackend
from tapeshared.lock import ApplyLock
from tapeshared.model import Config
from tapeshared.reconcile import Backend, Firewall, Reconciler
from tapeshared.runner import Runner


def backend(config: Config, runner: Runner) -> Backend:
    """The target backend the config names."""
    name = config.globals.backend
    if name == "iet":
        return IetBackend(config.globals, runner)
    raise ConfigError("backend %s is not available in this version" % name,
                      section="global", key="backend")


def firewall(config: Config, runner: Runner) -> Optional[Firewall]:
    """The firewall backend the config names, or None."""
    kind = config.globals.firewall
    if kind == "iptables":
        return IptablesFirewall(runner)
    if kind == "nftables":
        return NftablesFirewall(runner)
    return None


def _persist(config: Config, wall: IptablesFirewall
             ) -> Optional[Callable[[FirewallSpec], List[str]]]:
    files = [(path, family) for path, family in (
        (config.globals.firewall_save_file, 4), (config.globals.firewall_save_file6, 6))
        if path]
    if not files:
        return None

    def persist(spec: FirewallSpec) -> List[str]:
        return ["wrote %s" % path for path, family in files
                if wall.persist(spec, path, family)]
    return persist


def reconciler(config: Config) -> Reconciler:
    """A reconciler wired to udev, the configured backends and the apply lock."""
    settings = config.globals
    runner = Runner()
    wall = firewall(config, runner)
    return Reconciler(
        config, backend(config, runner), discovery.scan,
        lambda: ApplyLock(settings.lock_file, settings.lock_timeout),
        firewall=wall,
        portals=lambda: addrwatch.resolve_portal(settings.portal),
        persist=_persist(config, wall) if isinstance(wall, IptablesFirewall) else None)
