"""IET plan (pure): observed files and /proc -> the snapshot view, the plan, the problems."""

import os
from dataclasses import dataclass, field
from typing import AbstractSet, Dict, List, Optional, Set, Tuple

from tapeshared.backends import common
from tapeshared.backends.iet import access, conf
from tapeshared.backends.iet import memory as lunmemory
from tapeshared.backends.iet.proc import IetTarget
from tapeshared.core.model import DesiredState, GlobalConfig, Hctl, Session
from tapeshared.core.plan import FileChange, Plan


@dataclass(frozen=True)
class IetSettings:
    """The [global] keys the IET backend uses."""

    ietd_conf: str
    initiators_allow: str
    initiators_deny: str
    manage_access: bool
    iet_volume: str
    iet_session: str
    restart_command: Tuple[str, ...]
    ietadm: Tuple[str, ...]
    apply_mode: str
    restart_retries: int
    verify_timeout: float
    proc_net_tcp: Tuple[str, ...]  # /proc/net/tcp and tcp6: who listens on the port
    port: int
    state_dir: str = "/run/tapeshared"  # where the LUN memory is kept (see memory)


def pending_path(state_dir: str) -> str:
    """The record an apply writes before it changes ietd's files for a restart
    or live update, and removes once ietd runs them (verified)."""
    return os.path.join(state_dir, "iet-restart-pending")


def settings_for(g: GlobalConfig) -> IetSettings:
    """The IET backend's settings from [global]."""
    return IetSettings(
        ietd_conf=g.ietd_conf, initiators_allow=g.initiators_allow,
        initiators_deny=g.initiators_deny, manage_access=g.manage_access,
        iet_volume=g.iet_volume, iet_session=g.iet_session,
        restart_command=g.restart_command, ietadm=g.ietadm, apply_mode=g.apply_mode,
        restart_retries=g.restart_retries, verify_timeout=g.verify_timeout,
        proc_net_tcp=(g.proc_net_tcp, g.proc_net_tcp6), port=g.port,
        state_dir=g.state_dir)


@dataclass(frozen=True)
class IetDetail:
    """What one read of IET saw: our three files, what ietd runs, who listens."""

    conf: Optional[bytes]
    allow: Optional[bytes]
    deny: Optional[bytes]
    volume: Optional[Dict[str, IetTarget]]  # None: ietd is not running
    listening: Tuple[str, ...] = ()  # addresses with a socket on the portal port
    conf_mode: Optional[int] = None  # ietd.conf's permission bits (None: unknown)
    memory: lunmemory.Memory = field(default_factory=dict)  # what the last apply bound
    # the device instance each running LUN's address holds now (None: no device)
    instances: Dict[Hctl, Optional[str]] = field(default_factory=dict)
    # an apply that meant to restart or live-update ietd wrote its record and
    # did not clear it: killed after (or while) writing the files
    pending: bool = False


def text(data: Optional[bytes]) -> Optional[str]:
    """File bytes as text; surrogateescape gives bytes we do not own back exactly."""
    return None if data is None else data.decode("utf-8", "surrogateescape")


def encoded(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def effective(value: Optional[str]) -> List[str]:
    """The lines ietd acts on: comments, blank lines and indentation dropped."""
    return [" ".join(line.split()) for line in (value or "").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def snapshot(detail: IetDetail, sessions: Dict[str, List[Session]],
             settings: IetSettings) -> common.Snapshot:
    """The common view: targets as ietd runs them, and the block's addresses."""
    _before, block, _after = conf.split(text(detail.conf) or "", settings.ietd_conf)
    previous = conf.previous_luns(block)
    if detail.volume is None:
        return common.Snapshot("iet", previous=previous, detail=detail,
                               down="ietd is not running (%s is missing)" % settings.iet_volume)
    targets = {}
    for name, running in detail.volume.items():
        # a volume line without the address cannot be verified (see common)
        luns = {number: _live(detail, name, number, lun.hctl, str(lun.hctl or lun.path))
                for number, lun in running.luns.items()}
        targets[name] = common.LiveTarget(name, True, luns, tuple(sessions.get(name, ())))
    return common.Snapshot("iet", targets, previous, detail)


def _live(detail: IetDetail, name: str, number: int, hctl: Optional[Hctl],
          backing: str) -> common.LiveLun:
    """One running LUN, with what the memory knows of the device it opened."""
    live = common.LiveLun(hctl, backing=backing)
    if hctl is None or hctl not in detail.instances:
        return live
    return lunmemory.annotate(live, detail.memory.get((name, number)), detail.instances[hctl])


def stale_luns(snap: common.Snapshot) -> Set[lunmemory.Key]:
    """(iqn, LUN) of running LUNs that hold a device instance that is gone."""
    return set((iqn, number) for iqn, target in snap.targets.items()
               for number, live in target.luns.items() if not live.healthy)


def portal_problems(detail: IetDetail, desired: DesiredState) -> List[str]:
    """ietd binds its portal once at start: a moved portal needs a restart."""
    if not desired.portals or detail.volume is None:
        return []
    listening = set(detail.listening)
    if listening and listening != set(desired.portals):
        return ["ietd listens on %s, the portal is %s" % (
            ", ".join(sorted(listening)), ", ".join(desired.portals))]
    return []


def problems(snap: common.Snapshot, desired: DesiredState, unshown: bool = True) -> List[str]:
    """How the running ietd differs from what must be live now."""
    assert isinstance(snap.detail, IetDetail)
    return common.lun_problems(snap, desired, unshown) + portal_problems(snap.detail, desired)


def plan(snap: common.Snapshot, desired: DesiredState, settings: IetSettings) -> Plan:
    """Compare files and the running target with desired; say what to do."""
    detail = snap.detail
    assert isinstance(detail, IetDetail)
    old_text = text(detail.conf)
    new_text = conf.merge(old_text, desired, settings.ietd_conf)
    files = []
    # secrets readable by others (a file an older version left 0644): rewrite it
    exposed = bool((detail.conf_mode or 0) & 0o077) and conf.holds_secrets(
        encoded(new_text))
    if encoded(new_text) != detail.conf or exposed:
        files.append(FileChange(settings.ietd_conf, detail.conf, encoded(new_text), 0o600,
                                access.mask_secrets))
    if settings.manage_access:
        for path, old, lines in (
                (settings.initiators_allow, detail.allow, access.allow_lines(desired)),
                (settings.initiators_deny, detail.deny, access.deny_lines(desired))):
            new = encoded(access.merge(text(old), lines, path))
            if new != old:
                files.append(FileChange(path, old, new, 0o644))
    # an ietd whose volume lines do not show the address: a restart cannot help
    reasons = problems(snap, desired, unshown=False)
    if effective(new_text) != effective(old_text):
        reasons.insert(0, "%s changed" % settings.ietd_conf)
    if detail.pending:
        # what ietd runs beyond its LUNs (accounts, session keys) is not shown in
        # /proc: only the record tells that the files were written for a restart
        # that did not happen; a restart loads all of it
        reasons.append("an interrupted apply left its restart pending (%s)" %
                       pending_path(settings.state_dir))
        return Plan(files=tuple(files), restart=True, reasons=tuple(reasons))
    if not reasons:
        return Plan(files=tuple(files))
    if settings.apply_mode == "live":
        commands = live_commands(old_text, new_text, desired, detail.volume, settings,
                                 stale_luns(snap))
        if commands is not None:
            return Plan(files=tuple(files), commands=tuple(commands), reasons=tuple(reasons))
    return Plan(files=tuple(files), restart=True, reasons=tuple(reasons))


def live_commands(old_text: Optional[str], new_text: str, desired: DesiredState,
                  volume: Optional[Dict[str, IetTarget]], settings: IetSettings,
                  stale: AbstractSet[lunmemory.Key] = frozenset()
                  ) -> Optional[List[Tuple[str, ...]]]:
    """ietadm commands when only LUNs of running targets differ, else None.

    A stale LUN (its address holds a new device instance) is deleted and
    created again, so ietd opens the device that is there now."""
    if volume is None:
        return None
    path = settings.ietd_conf
    old_block = conf.split(old_text or "", path)[1]
    new_block = conf.split(new_text, path)[1]

    def without_luns(block: Optional[str]) -> List[str]:
        return [line for line in effective(block) if not line.lower().startswith("lun ")]

    if without_luns(old_block) != without_luns(new_block):
        return None
    adm = settings.ietadm
    commands: List[Tuple[str, ...]] = []
    for target in desired.targets:
        running = volume.get(target.iqn)
        if running is None:
            return None
        tid = "--tid=%d" % running.tid
        wanted = {lun.lun: lun for lun in target.exported_luns}
        for number in sorted(set(wanted) | set(running.luns)):
            lun = wanted.get(number)
            live = running.luns.get(number)
            if lun is None:
                commands.append(adm + ("--op", "delete", tid, "--lun=%d" % number))
                continue
            if live is not None and lun.status != "present":
                continue
            if live is not None and live.hctl == lun.hctl and \
                    (target.iqn, number) not in stale:
                continue
            if live is not None:
                commands.append(adm + ("--op", "delete", tid, "--lun=%d" % number))
            if lun.status == "present" and lun.hctl is not None:
                commands.append(adm + ("--op", "new", tid, "--lun=%d" % number,
                                       "--params", conf.lun_args(lun.hctl)))
    return commands


def listeners(texts: List[Optional[str]], port: int) -> Tuple[str, ...]:
    """Addresses listening on port, from /proc/net/tcp and tcp6 texts."""
    from tapeshared.backends.iet.proc import parse_listeners
    found: Set[str] = set()
    for value in texts:
        found |= parse_listeners(value or "", port)
    return tuple(sorted(found))


def resets(snap: common.Snapshot, desired: DesiredState,
           instances: Dict[Hctl, Optional[str]]) -> List[Tuple[str, int, Hctl]]:
    """(iqn, LUN, address) of every LUN this apply re-points at a new device
    instance (see memory.needs_reset), in desired order: each is reset first."""
    detail = snap.detail
    assert isinstance(detail, IetDetail)
    found = []
    for target in desired.targets:
        running = snap.targets.get(target.iqn)
        for lun in target.exported_luns:
            if lun.status != "present" or lun.hctl is None:
                continue
            live = running.luns.get(lun.lun) if running is not None else None
            if lunmemory.needs_reset(live, detail.memory.get((target.iqn, lun.lun)),
                                  lun.hctl, instances.get(lun.hctl)):
                found.append((target.iqn, lun.lun, lun.hctl))
    return found


def remembered(old: lunmemory.Memory, desired: DesiredState,
               instances: Dict[Hctl, Optional[str]], reset: Dict[lunmemory.Key, float]
               ) -> lunmemory.Memory:
    """The memory after an apply: each present LUN's device instance and its
    reset (now, or the one on record for the same instance); LUNs that are
    configured but not present keep their record (their device may come back
    at the address while IET still holds the old one); others are forgotten."""
    new: lunmemory.Memory = {}
    for target in desired.targets:
        for lun in target.luns:
            key = (target.iqn, lun.lun)
            if lun.status != "present" or lun.hctl is None:
                if key in old:
                    new[key] = old[key]
                continue
            now = instances.get(lun.hctl)
            before = old.get(key)
            stamp = reset.get(key)
            if stamp is None and before is not None and before.hctl == lun.hctl \
                    and before.instance == now:
                stamp = before.reset_at
            new[key] = lunmemory.Record(lun.hctl, now, stamp)
    return new
