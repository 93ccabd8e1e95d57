"""IET backend adapter: reads ietd.conf, access files and /proc; writes, restarts, ietadm."""

import logging
import time
from typing import Callable, List, Sequence

from tapeshared.backends import common
from tapeshared.backends.iet import plan as iet_plan
from tapeshared.backends.iet.conf import holds_secrets
from tapeshared.backends.iet.plan import IetDetail, IetSettings
from tapeshared.backends.iet.proc import parse_sessions, parse_volume
from tapeshared.core.errors import CommandError, VerifyError
from tapeshared.core.model import DesiredState
from tapeshared.core.plan import Plan
from tapeshared.host.atomicfile import mode_of, read_bytes, remove_stale, write_if_changed
from tapeshared.host.retry import retry_call
from tapeshared.host.runner import Runner

log = logging.getLogger(__name__)


class IetBackend:
    """Drives IET: the config files it reads, its init script, ietadm and /proc."""

    name = "iet"

    def __init__(self, settings: IetSettings, runner: Runner,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.settings = settings
        self.runner = runner
        self.sleep = sleep

    def observe(self, managed: Sequence[str] = ()) -> common.Snapshot:
        """One read: ietd.conf, the access files, /proc/net/iet and the listeners."""
        s = self.settings
        volume = read_bytes(s.iet_volume)
        detail = IetDetail(
            conf=read_bytes(s.ietd_conf),
            conf_mode=mode_of(s.ietd_conf),
            allow=read_bytes(s.initiators_allow) if s.manage_access else None,
            deny=read_bytes(s.initiators_deny) if s.manage_access else None,
            volume=None if volume is None else parse_volume(iet_plan.text(volume) or ""),
            listening=iet_plan.listeners([iet_plan.text(read_bytes(p))
                                          for p in s.proc_net_tcp], s.port))
        sessions = parse_sessions(iet_plan.text(read_bytes(s.iet_session)) or "")
        return iet_plan.snapshot(detail, sessions, s)

    def plan(self, snapshot: common.Snapshot, desired: DesiredState) -> Plan:
        return iet_plan.plan(snapshot, desired, self.settings)

    def problems(self, snapshot: common.Snapshot, desired: DesiredState) -> List[str]:
        return iet_plan.problems(snapshot, desired)

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Write files (access files first), then live-update or restart; verify."""
        actions = []
        conf = self.settings.ietd_conf
        for path in self._managed_files():
            remove_stale(path)  # temp files a killed apply left
        for change in sorted(plan.files, key=lambda c: c.path == conf):
            # a file holding CHAP secrets is never left readable by others
            if write_if_changed(change.path, change.new, change.mode,
                                private=holds_secrets(change.new)):
                actions.append("wrote %s" % change.path)
        restart = plan.restart
        if plan.commands:
            try:
                for argv in plan.commands:
                    self.runner.run(argv)
                    actions.append("ran %s" % " ".join(argv))
                self._wait_verified(desired)
            except (CommandError, VerifyError) as exc:
                log.warning("live update failed (%s); restarting the target instead", exc)
                restart = True
        if restart:
            retry_call(lambda: self._restart_verified(desired),
                       attempts=self.settings.restart_retries, what="target restart",
                       sleep=self.sleep)
            actions.append("restarted the target (%s)" % " ".join(
                self.settings.restart_command))
        return actions

    def _managed_files(self) -> List[str]:
        s = self.settings
        return [s.ietd_conf] + ([s.initiators_allow, s.initiators_deny]
                                if s.manage_access else [])

    def _restart_verified(self, desired: DesiredState) -> None:
        # {portal} in the command (and TAPESHARED_PORTAL) give ietd its -a address
        portal = desired.portals[0] if desired.portals else ""
        argv = [arg.replace("{portal}", portal) for arg in self.settings.restart_command]
        self.runner.run(argv, timeout=120, env_extra={"TAPESHARED_PORTAL": portal})
        self._wait_verified(desired)

    def _wait_verified(self, desired: DesiredState) -> None:
        # every LUN must show what it points at and point at the desired device:
        # a restart that did not take effect ("already running", a restart
        # command that does nothing) leaves the old LUNs and fails here
        common.wait_verified(lambda: self.observe(),
                             lambda snap: iet_plan.problems(snap, desired),
                             self.settings.verify_timeout, sleep=self.sleep)
