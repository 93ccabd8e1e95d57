"""Composition root: the only place that builds real adapters from a Config."""

import time
from typing import Callable, List, Optional

from tapeshared import config as config_module
from tapeshared.backends.iet.backend import IetBackend
from tapeshared.backends.iet.plan import settings_for as iet_settings
from tapeshared.backends.lio.backend import LioBackend
from tapeshared.backends.lio.state import LioSettings
from tapeshared.backends.tgt.backend import TgtBackend
from tapeshared.backends.tgt.plan import TgtSettings
from tapeshared.core.errors import ConfigError
from tapeshared.core.model import Config, Device
from tapeshared.daemon.loop import Daemon
from tapeshared.daemon.notify import Notifier
from tapeshared.firewall.iptables.backend import IptablesFirewall
from tapeshared.firewall.nft.backend import NftablesFirewall
from tapeshared.host import addrwatch, udev
from tapeshared.host.addrwatch import AddressWatch
from tapeshared.host.discovery import Discovery
from tapeshared.host.lioparts import LioParts
from tapeshared.host.lock import ApplyLock, RunLock
from tapeshared.host.runner import Runner
from tapeshared.ports import Backend, Firewall
from tapeshared.reconcile import Reconciler

Sleep = Callable[[float], object]


def backend(config: Config, runner: Runner, sleep: Sleep = time.sleep) -> Backend:
    """The target backend the config names, given its own settings."""
    g = config.globals
    if g.backend == "iet":
        return IetBackend(iet_settings(g), runner, sleep=sleep)
    if g.backend == "lio":
        return LioBackend(LioSettings(lio_root=g.lio_root, port=g.port), sleep=sleep)
    if g.backend == "tgt":
        return TgtBackend(TgtSettings(tgtadm=g.tgtadm, state_dir=g.state_dir), runner,
                          sleep=sleep)
    raise ConfigError("backend %s is not available in this version" % g.backend,
                      section="global", key="backend")


def firewall(config: Config, runner: Runner) -> Optional[Firewall]:
    """The firewall backend the config names, or None."""
    g = config.globals
    if g.firewall == "iptables":
        files = {family: path for family, path in ((4, g.firewall_save_file),
                                                   (6, g.firewall_save_file6)) if path}
        return IptablesFirewall(runner, save_files=files)
    if g.firewall == "nftables":
        return NftablesFirewall(runner)
    return None


def reconciler(config: Config, sleep: Sleep = time.sleep,
               keepalive: Optional[Callable[[], None]] = None,
               poll: float = 0.5, devices: Optional[Callable[[], List[Device]]] = None
               ) -> Reconciler:
    """A reconciler wired to udev, the configured backends and the apply lock.

    sleep and keepalive are the daemon's: every bounded wait of an apply (the
    lock, each command, retries, verify polling) keeps its watchdog fed.
    """
    g = config.globals
    runner = Runner(keepalive=keepalive, poll=poll)
    return Reconciler(
        # udev.observe looked up here, not bound at definition: tests replace it
        config, backend(config, runner, sleep), devices or udev.observe,
        lambda: ApplyLock(g.lock_file, g.lock_timeout, sleep=sleep),
        firewall=firewall(config, runner),
        portals=lambda: addrwatch.resolve_portal(g.portal),
        parts=LioParts(g.lio_root, runner.run) if g.backend == "lio" else None)


def daemon(config_path: str, ready_fd: int = -1,
           run_lock: Optional[RunLock] = None) -> Daemon:
    """The daemon with real adapters: udev and netlink watches, sd_notify, state file.

    Raises ConfigError when the configuration cannot be used at start.
    """
    notifier = Notifier.from_environ(ready_fd=ready_fd)
    # one memory of the SCSI devices for the passes and the event filter
    discovery = Discovery()
    built = Daemon(
        config_path, config_module.load(config_path), config_module.load,
        # every wait of an apply keeps the watchdog fed (see Notifier.keepalive)
        lambda cfg: reconciler(cfg, sleep=notifier.keepalive_sleep,
                               keepalive=notifier.keepalive, poll=notifier.wait_slice,
                               devices=discovery.observe),
        lambda: udev.UdevWatch(discovery=discovery), AddressWatch, notifier, run_lock=run_lock)
    notifier.on_wait = built.state.touch  # and the state file fresh for `status`
    return built

