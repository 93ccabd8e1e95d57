"""Composition root: the only place that builds real adapters."""

import time
from typing import Any, Callable, List, Optional

from tapeshared import addrwatch, discovery
from tapeshared.errors import ConfigError
from tapeshared.fw_iptables import IptablesFirewall
from tapeshared.fw_nftables import NftablesFirewall
from tapeshared.fwrules import FirewallSpec
from tapeshared.iet import IetBackend
from tapeshared.lio import LioBackend
from tapeshared.lock import ApplyLock
from tapeshared.model import Config
from tapeshared.reconcile import Backend, Firewall, Reconciler
from tapeshared.runner import Runner
from tapeshared.tgt import TgtBackend


def backend(config: Config, runner: Runner,
            sleep: Callable[[float], Any] = time.sleep) -> Backend:
    """The target backend the config names."""
    name = config.globals.backend
    if name == "iet":
        return IetBackend(config.globals, runner, sleep=sleep)
    if name == "lio":
        return LioBackend(config.globals, sleep=sleep)
    if name == "tgt":
        return TgtBackend(config.globals, runner, sleep=sleep)
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


def reconciler(config: Config, sleep: Callable[[float], Any] = time.sleep) -> Reconciler:
    """A reconciler wired to udev, the configured backends and the apply lock."""
    settings = config.globals
    runner = Runner()
    wall = firewall(config, runner)
    return Reconciler(
        config, backend(config, runner, sleep), discovery.scan,
        lambda: ApplyLock(settings.lock_file, settings.lock_timeout),
        firewall=wall,
        portals=lambda: addrwatch.resolve_portal(settings.portal),
        persist=_persist(config, wall) if isinstance(wall, IptablesFirewall) else None)


def daemon(config_path: str, ready_fd: int = -1) -> Any:
    """The daemon with real adapters: udev and netlink watches, sd_notify, state file.

    Raises ConfigError when the configuration cannot be used at start.
    """
    from tapeshared import config as config_module
    from tapeshared.addrwatch import AddressWatch
    from tapeshared.daemon import Daemon
    from tapeshared.sdnotify import Notifier
    from tapeshared.udevwatch import UdevWatch

    notifier = Notifier.from_environ(ready_fd=ready_fd)
    return Daemon(
        config_path, config_module.load(config_path), config_module.load,
        # the backend's waits (verify polling) keep the watchdog fed
        lambda cfg: reconciler(cfg, sleep=notifier.keepalive_sleep),
        UdevWatch, AddressWatch, notifier)
