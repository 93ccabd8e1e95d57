"""IET backend adapter: reads ietd.conf, access files and /proc; writes, restarts, ietadm."""

import logging
import os
import time
from dataclasses import replace
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from tapeshared.backends import common
from tapeshared.backends.iet import memory as lunmemory
from tapeshared.backends.iet import plan as iet_plan
from tapeshared.backends.iet.conf import holds_secrets
from tapeshared.backends.iet.plan import IetDetail, IetSettings
from tapeshared.backends.iet.proc import parse_sessions, parse_volume
from tapeshared.core.errors import CommandError, TransientError, VerifyError
from tapeshared.core.model import DesiredState, Hctl
from tapeshared.core.plan import Plan
from tapeshared.host import faults, scsireset
from tapeshared.host.atomicfile import mode_of, read_bytes, remove_stale, write_if_changed
from tapeshared.host.lock import make_dir
from tapeshared.host.retry import retry_call
from tapeshared.host.runner import Runner

log = logging.getLogger(__name__)

Reset = Callable[[Hctl, Optional[str]], object]  # scsireset.reset_lu(hctl, expect)
Instance = Callable[[Hctl], Optional[str]]  # scsireset.instance(hctl)


class IetBackend:
    """Drives IET: the config files it reads, its init script, ietadm and /proc."""

    name = "iet"

    def __init__(self, settings: IetSettings, runner: Runner,
                 sleep: Callable[[float], object] = time.sleep,
                 reset: Optional[Reset] = None,
                 instance: Optional[Instance] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.runner = runner
        self.sleep = sleep
        # the host's SG_SCSI_RESET adapter unless a test gives its own
        self.reset = reset or scsireset.reset_lu
        self.instance = instance or scsireset.instance
        self.clock = clock
        # during an apply: the memory it will write, so its verify sees the LUNs
        # as bound to the instances it opened (written only once verified)
        self._applying: Optional[lunmemory.Memory] = None

    @property
    def memory_path(self) -> str:
        return lunmemory.memory_path(self.settings.state_dir)

    def _load_memory(self) -> lunmemory.Memory:
        """The LUN memory; a damaged file is logged and taken as empty: losing it
        only forgets past resets (a LUN that is not live then counts as a new
        device and is reset), and the next apply writes it afresh."""
        if self._applying is not None:
            return self._applying
        path = self.memory_path
        data = read_bytes(path)
        if data is None:
            return {}
        try:
            return lunmemory.parse(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            log.warning("%s: unusable, ignored (%s)", path, str(exc)[:200])
            return {}

    def _save_memory(self, memory: lunmemory.Memory) -> bool:
        make_dir(self.settings.state_dir, "state directory")
        return write_if_changed(self.memory_path, lunmemory.render(memory), 0o644)

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
                                          for p in s.proc_net_tcp], s.port),
            memory=self._load_memory(),
            pending=os.path.exists(iet_plan.pending_path(s.state_dir)))
        if detail.volume is not None:
            detail = replace(detail, instances=self._instances(
                lun.hctl for target in detail.volume.values()
                for lun in target.luns.values()))
        sessions = parse_sessions(iet_plan.text(read_bytes(s.iet_session)) or "")
        return iet_plan.snapshot(detail, sessions, s)

    def plan(self, snapshot: common.Snapshot, desired: DesiredState) -> Plan:
        return iet_plan.plan(snapshot, desired, self.settings)

    def problems(self, snapshot: common.Snapshot, desired: DesiredState) -> List[str]:
        return iet_plan.problems(snapshot, desired)

    def _instances(self, hctls: Iterable[Optional[Hctl]]) -> Dict[Hctl, Optional[str]]:
        return {hctl: self.instance(hctl) for hctl in set(hctls) if hctl is not None}

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Reset re-pointed devices, write files (access files first), then
        live-update or restart; verify; remember what each LUN is bound to.

        The resets come first: a reset that fails raises (TransientError naming
        the device) before anything is written, so ietd keeps what it runs and
        its config; the next pass tries again. Nothing on the host talks to the
        new device meanwhile, and no initiator reaches it before the restart or
        the ietadm update, so the drive's unit attention waits for the first
        initiator command (rawio passes it through).
        """
        snapshot = self.observe()
        before = snapshot.detail
        assert isinstance(before, iet_plan.IetDetail)
        instances = self._instances(lun.hctl for target in desired.targets
                                    for lun in target.luns)
        reset: Dict[lunmemory.Key, float] = {}
        actions = []
        for iqn, number, hctl in iet_plan.resets(snapshot, desired, instances):
            try:
                faults.step("reset %s (LUN %d of %s)" % (hctl, number, iqn))
                self.reset(hctl, instances.get(hctl))
            except TransientError as exc:
                raise TransientError("LUN %d of %s is not re-pointed at the device at %s, "
                                     "nothing was changed: %s" % (number, iqn, hctl, exc))
            reset[(iqn, number)] = self.clock()
            log.info("reset the device at %s (LUN %d of %s): a new device instance, "
                     "its next command reports the reset", hctl, number, iqn)
            actions.append("reset the device at %s before mapping it as LUN %d of %s" % (
                hctl, number, iqn))
        after = iet_plan.remembered(before.memory, desired, instances, reset)
        self._applying = after
        try:
            actions += self._apply(plan, desired)
        finally:
            self._applying = None
        if self._save_memory(after):
            log.debug("wrote %s", self.memory_path)
        return actions

    def _apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        actions = []
        conf = self.settings.ietd_conf
        for path in self._managed_files():
            remove_stale(path)  # temp files a killed apply left
        record = iet_plan.pending_path(self.settings.state_dir)
        if plan.restart or plan.commands:
            self._mark_pending(record)
        for change in sorted(plan.files, key=lambda c: c.path == conf):
            faults.step("replace %s" % change.path)
            # a file holding CHAP secrets is never left readable by others
            if write_if_changed(change.path, change.new, change.mode,
                                private=holds_secrets(change.new)):
                actions.append("wrote %s" % change.path)
        restart = plan.restart
        if plan.commands:
            try:
                for argv in plan.commands:
                    faults.step("ietadm %s" % " ".join(argv))
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
        if plan.restart or plan.commands:
            faults.step("remove %s" % record)
            try:
                os.unlink(record)
            except FileNotFoundError:
                pass
        return actions

    def _mark_pending(self, record: str) -> None:
        """Write the pending-restart record before the first file changes: a kill
        from here on leaves it, and the next pass restarts ietd even when the
        files it finds are already the new ones."""
        make_dir(self.settings.state_dir, "state directory")
        faults.step("replace %s" % record)
        write_if_changed(record, b"restart ietd: its files were changed for it\n", 0o600)

    def _managed_files(self) -> List[str]:
        s = self.settings
        return [s.ietd_conf] + ([s.initiators_allow, s.initiators_deny]
                                if s.manage_access else [])

    def _restart_verified(self, desired: DesiredState) -> None:
        # {portal} in the command (and TAPESHARED_PORTAL) give ietd its -a address
        portal = desired.portals[0] if desired.portals else ""
        argv = [arg.replace("{portal}", portal) for arg in self.settings.restart_command]
        faults.step("restart %s" % " ".join(argv))
        self.runner.run(argv, timeout=120, env_extra={"TAPESHARED_PORTAL": portal})
        self._wait_verified(desired)

    def _wait_verified(self, desired: DesiredState) -> None:
        # every LUN must show what it points at and point at the desired device:
        # a restart that did not take effect ("already running", a restart
        # command that does nothing) leaves the old LUNs and fails here
        common.wait_verified(lambda: self.observe(),
                             lambda snap: iet_plan.problems(snap, desired),
                             self.settings.verify_timeout, sleep=self.sleep)
