"""IET backend adapter: ietd.conf, initiators files, restart or ietadm, verify."""

import logging
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from tapeshared import ietaccess, ietconf, ietproc
from tapeshared.atomicfile import read_bytes, write_if_changed
from tapeshared.errors import CommandError, VerifyError
from tapeshared.model import DesiredState, GlobalConfig, Hctl
from tapeshared.plan import FileChange, Plan
from tapeshared.retry import retry_call
from tapeshared.runner import Runner

log = logging.getLogger(__name__)


def _text(data: Optional[bytes]) -> Optional[str]:
    # surrogateescape: bytes we do not own go back out exactly as they came in
    return None if data is None else data.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _effective(text: Optional[str]) -> List[str]:
    """The lines ietd acts on: comments, blank lines and indentation dropped."""
    return [" ".join(line.split()) for line in (text or "").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


class IetBackend:
    """Drives IET: the config files it reads, its init script, ietadm and /proc."""

    name = "iet"

    def __init__(self, settings: GlobalConfig, runner: Runner,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.settings = settings
        self.runner = runner
        self.sleep = sleep

    def _conf_text(self) -> Optional[str]:
        return _text(read_bytes(self.settings.ietd_conf))

    def previous(self) -> Dict[Tuple[str, int], Hctl]:
        """What the managed block exports now (for the keep-while-absent policy)."""
        _before, block, _after = ietconf.split(self._conf_text() or "",
                                               self.settings.ietd_conf)
        return ietconf.previous_luns(block)

    def live(self) -> Optional[Dict[str, ietproc.IetTarget]]:
        """Targets ietd runs now, or None when ietd is not running."""
        data = read_bytes(self.settings.iet_volume)
        return None if data is None else ietproc.parse_volume(_text(data) or "")

    def sessions(self) -> Dict[str, List[ietproc.IetSession]]:
        """Connected initiators per target name."""
        return ietproc.parse_sessions(_text(read_bytes(self.settings.iet_session)) or "")

    def problems(self, desired: DesiredState,
                 live: Optional[Dict[str, ietproc.IetTarget]]) -> List[str]:
        """How the running target differs from what must be live now."""
        if live is None:
            return ["ietd is not running (%s is missing)" % self.settings.iet_volume]
        found = []
        for target in desired.targets:
            running = live.get(target.iqn)
            if running is None:
                found.append("target %s is not running" % target.iqn)
                continue
            for lun in target.live_luns:
                if lun.lun not in running.luns:
                    found.append("LUN %d of %s (%s) is not live" % (lun.lun, target.iqn,
                                                                   lun.match))
            exported = set(lun.lun for lun in target.exported_luns)
            for number in sorted(set(running.luns) - exported):
                found.append("LUN %d of %s is live but not configured" % (number,
                                                                          target.iqn))
        found.extend(self._portal_problems(desired))
        return found

    def _portal_problems(self, desired: DesiredState) -> List[str]:
        """ietd binds its portal once at start: a moved portal needs a restart."""
        if not desired.portals:
            return []
        listening: Set[str] = set()
        for path in (self.settings.proc_net_tcp, self.settings.proc_net_tcp6):
            listening |= ietproc.parse_listeners(_text(read_bytes(path)) or "",
                                                 self.settings.port)
        if listening and listening != set(desired.portals):
            return ["ietd listens on %s, the portal is %s" % (
                ", ".join(sorted(listening)), ", ".join(desired.portals))]
        return []

    def plan(self, desired: DesiredState) -> Plan:
        """Compare files and the running target with desired; say what to do."""
        s = self.settings
        old_conf = read_bytes(s.ietd_conf)
        old_text = _text(old_conf)
        new_text = ietconf.merge(old_text, desired, s.ietd_conf)
        files = []
        if _bytes(new_text) != old_conf:
            files.append(FileChange(s.ietd_conf, old_conf, _bytes(new_text), 0o600,
                                    ietaccess.mask_secrets))
        if s.manage_access:
            for path, lines in ((s.initiators_allow, ietaccess.allow_lines(desired)),
                                (s.initiators_deny, ietaccess.deny_lines(desired))):
                old = read_bytes(path)
                new = _bytes(ietaccess.merge(_text(old), lines, path))
                if new != old:
                    files.append(FileChange(path, old, new, 0o644))
        live = self.live()
        reasons = self.problems(desired, live)
        if _effective(new_text) != _effective(old_text):
            reasons.insert(0, "%s changed" % s.ietd_conf)
        if not reasons:
            return Plan(files=tuple(files))
        if s.apply_mode == "live":
            commands = self._live_commands(old_text, new_text, desired, live)
            if commands is not None:
                return Plan(files=tuple(files), commands=tuple(commands),
                            reasons=tuple(reasons))
        return Plan(files=tuple(files), restart=True, reasons=tuple(reasons))

    def _live_commands(self, old_text: Optional[str], new_text: str,
                       desired: DesiredState,
                       live: Optional[Dict[str, ietproc.IetTarget]]
                       ) -> Optional[List[Tuple[str, ...]]]:
        """ietadm commands when only LUNs of running targets differ, else None."""
        if live is None:
            return None
        path = self.settings.ietd_conf
        old_block = ietconf.split(old_text or "", path)[1]
        new_block = ietconf.split(new_text, path)[1]

        def without_luns(block: Optional[str]) -> List[str]:
            return [line for line in _effective(block) if not line.lower().startswith("lun ")]

        if without_luns(old_block) != without_luns(new_block):
            return None
        old = ietconf.previous_luns(old_block)
        adm = self.settings.ietadm
        commands: List[Tuple[str, ...]] = []
        for target in desired.targets:
            running = live.get(target.iqn)
            if running is None:
                return None
            tid = "--tid=%d" % running.tid
            wanted = {lun.lun: lun for lun in target.exported_luns}
            for number in sorted(set(wanted) | set(running.luns)):
                lun = wanted.get(number)
                is_live = number in running.luns
                if lun is None:
                    commands.append(adm + ("--op", "delete", tid, "--lun=%d" % number))
                    continue
                same = old.get((target.iqn, number)) == lun.hctl
                if is_live and (same or lun.status != "present"):
                    continue
                if is_live:
                    commands.append(adm + ("--op", "delete", tid, "--lun=%d" % number))
                if lun.status == "present" and lun.hctl is not None:
                    commands.append(adm + ("--op", "new", tid, "--lun=%d" % number,
                                           "--params", ietconf.lun_args(lun.hctl)))
        return commands

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Write files (access files first), then live-update or restart; verify."""
        actions = []
        conf = self.settings.ietd_conf
        for change in sorted(plan.files, key=lambda c: c.path == conf):
            if write_if_changed(change.path, change.new, change.mode):
                actions.append("wrote %s" % change.path)
        restart = plan.restart
        if plan.commands:
            try:
                for argv in plan.commands:
                    self.runner.run(argv)
                    actions.append("ran %s" % " ".join(argv))
                self.wait_verified(desired)
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

    def _restart_verified(self, desired: DesiredState) -> None:
        # {portal} in the command (and TAPESHARED_PORTAL) give ietd its -a address
        portal = desired.portals[0] if desired.portals else ""
        argv = [arg.replace("{portal}", portal) for arg in self.settings.restart_command]
        self.runner.run(argv, timeout=120, env_extra={"TAPESHARED_PORTAL": portal})
        self.wait_verified(desired)

    def wait_verified(self, desired: DesiredState) -> None:
        """Poll /proc until every live LUN shows, or raise VerifyError."""
        deadline = time.monotonic() + self.settings.verify_timeout
        while True:
            problems = self.problems(desired, self.live())
            if not problems:
                return
            if time.monotonic() >= deadline:
                raise VerifyError("the target came up without what was configured: %s"
                                  % "; ".join(problems))
            self.sleep(0.05)

    def unexport(self) -> Plan:
        """A plan that removes every managed target (used on stop when asked)."""
        return self.plan(DesiredState(targets=()))
