"""LIO backend adapter: reads and writes configfs directly (works on Python 3.6)."""

import errno
import logging
import os
import re
import time
from typing import Callable, List, Optional, Sequence

from tapeshared.backends import common
from tapeshared.backends.lio import holder
from tapeshared.backends.lio import plan as lio_plan
from tapeshared.backends.lio import state as lio_state
from tapeshared.backends.lio.state import LioSettings, LioState, Op
from tapeshared.core.errors import TransientError, VerifyError
from tapeshared.core.model import DesiredState, Hctl, Session
from tapeshared.core.plan import Plan
from tapeshared.host import faults, loopreset, scsireset

log = logging.getLogger(__name__)
_LUN_DIR = re.compile(r"\Alun_([0-9]+)\Z")
_ADDRESS = re.compile(r"^\s*Address (\S+) ", re.MULTILINE)
_AUTH_KEYS = ("userid", "password", "userid_mutual", "password_mutual")
# what a backstore's alias records: the device instance enable bound, and when
# (and for whom) that device was reset before any initiator could reach it
_ALIAS = re.compile(r"\Atapeshared sysfs-ino=([0-9]+)"
                    r"(?: reset=([0-9]+(?:\.[0-9]+)?) scope=(drive|target))?\Z")
_ATTRIBS = ("generate_node_acls", "demo_mode_write_protect", "cache_dynamic_acls",
            "authentication")


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _dirs(path: str) -> List[str]:
    try:
        return sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))
                      and not os.path.islink(os.path.join(path, n)))
    except OSError:
        return []


def _links(path: str) -> List[str]:
    try:
        return sorted(n for n in os.listdir(path) if os.path.islink(os.path.join(path, n)))
    except OSError:
        return []


def _pointee(path: str) -> Optional[str]:
    """The name of the object the (single) link inside directory path points at."""
    links = _links(path)
    if not links:
        return None
    return os.path.basename(os.readlink(os.path.join(path, links[0])).rstrip("/"))


class LioBackend:
    """Owns `tapeshared-*` backstores and the managed targets in configfs."""

    name = "lio"

    def __init__(self, settings: LioSettings,
                 sleep: Callable[[float], object] = time.sleep,
                 reset: Callable[..., object] = scsireset.reset_lu,
                 clock: Callable[[], float] = time.time,
                 tur: Callable[..., object] = scsireset.test_unit_ready) -> None:
        self.settings = settings
        self.root = settings.lio_root
        self.sleep = sleep
        self.reset = reset
        self.clock = clock
        self.tur = tur

    def _p(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def _target(self, iqn: str) -> lio_state.Target:
        tpg = self._p("iscsi/%s/tpgt_1" % iqn)
        target = lio_state.Target(enabled=_read(tpg + "/enable") == "1",
                                  tpg=os.path.isdir(tpg),
                                  alias=_read(tpg + "/param/TargetAlias"))
        for name in _dirs(tpg + "/lun"):
            found = _LUN_DIR.match(name)
            if found:
                target.luns[int(found.group(1))] = _pointee(os.path.join(tpg, "lun", name))
        for iqn_acl in _dirs(tpg + "/acls"):
            acl = lio_state.Acl()
            base = os.path.join(tpg, "acls", iqn_acl)
            for name in _dirs(base):
                found = _LUN_DIR.match(name)
                if not found:
                    continue
                pointed = _LUN_DIR.match(_pointee(os.path.join(base, name)) or "")
                acl.mapped[int(found.group(1))] = int(pointed.group(1)) if pointed else None
            acl.auth = {k: _read(os.path.join(base, "auth", k)) for k in _AUTH_KEYS}
            target.acls[iqn_acl] = acl
            info = _read(os.path.join(base, "info"))
            if info and "No active iSCSI Session" not in info:
                target.sessions.append(Session(iqn_acl, tuple(_ADDRESS.findall(info))))
        target.portals = set(_dirs(tpg + "/np"))
        target.attrib = {k: _read(os.path.join(tpg, "attrib", k)) for k in _ATTRIBS}
        return target

    def _state(self, managed: Sequence[str]) -> LioState:
        """Our backstores, every HBA name, and the managed (or ours-linked) targets."""
        state = LioState(loopbacks=set(loopreset.leftovers(self.root)))
        for hba in _dirs(self._p("core")):
            if not hba.startswith("pscsi_"):
                continue
            state.hbas.add(hba)
            for name in _dirs(self._p("core/" + hba)):
                if not name.startswith(lio_state.PREFIX):
                    state.foreign.add(hba)  # not ours: the HBA stays with it
                else:
                    base = "core/%s/%s/" % (hba, name)
                    enabled = _read(self._p(base + "enable")) == "1"
                    bound = lio_state.bound_address(_read(self._p(base + "info")))
                    # bound elsewhere than its name says: not ours to trust
                    moved = bound is not None and bound != lio_state.hctl_of(name)
                    mark = _ALIAS.search(_read(self._p(base + "alias")))
                    state.backstores[name] = lio_state.Backstore(
                        hba, name, enabled=enabled and not moved and not self._stale(
                            hba, name), bound=bound,
                        udev_path=_read(self._p(base + "udev_path")),
                        reset_at=float(mark.group(2)) if mark and mark.group(2) else None,
                        reset_scope=mark.group(3) or "" if mark else "")
        self._holder(state)
        for iqn in _dirs(self._p("iscsi")):
            if iqn == "discovery_auth":
                continue
            target = self._target(iqn)
            if iqn in managed or lio_state.ours_target(target):
                state.targets[iqn] = target  # managed, or ours no longer configured
        return state

    def _holder(self, state: LioState) -> None:
        """How far the holder LUN's backstore is built (see holder.LEVELS)."""
        names = _dirs(self._p("core/" + holder.HBA)) if os.path.isdir(
            self._p("core/" + holder.HBA)) else None
        if names is None:
            return
        if set(names) - {holder.NAME}:
            state.foreign.add(holder.HBA)  # not ours: the HBA stays with it
        state.holder = "hba"
        if holder.NAME in names:
            state.holder = "store"
            if _read(self._p(holder.PATH + "/enable")) == "1":
                unavailable = _read(self._p(holder.ALUA_STATE)) == holder.UNAVAILABLE
                state.holder = "ready" if unavailable else "enabled"

    def observe(self, managed: Sequence[str] = ()) -> common.Snapshot:
        """One walk of configfs: our backstores and the managed or our own targets."""
        down = "" if os.path.isdir(self._p("iscsi")) else \
            "LIO's iSCSI fabric is not available (%s is missing)" % self._p("iscsi")
        return lio_state.snapshot(self._state(managed), down)

    def _sysfs_id(self, hctl: Hctl) -> Optional[str]:
        return scsireset.instance(hctl, self.settings.sysfs_devices)

    def _reset(self, path: str) -> None:
        """Reset the device a backstore of ours bound, then record it in its alias.

        Only the instance enable bound (its alias) is reset; a backstore without
        that record, or whose address now holds another object, is refused.
        """
        name = path.rsplit("/", 1)[-1]
        hctl = lio_state.hctl_of(name)
        mark = _ALIAS.search(_read(self._p(path + "/alias")))
        if hctl is None or mark is None:
            raise TransientError("configfs: %s does not record which device it bound; "
                                 "not reset, not mapped" % path)
        self.reset(hctl, mark.group(1), sysfs_devices=self.settings.sysfs_devices)
        self._mark(path, mark.group(1), "%.3f" % self.clock(), "drive")

    def _mark(self, path: str, instance: str, at: str, scope: str) -> None:
        """Record in a backstore's alias that its device was reset, when, for whom."""
        with open(self._p(path + "/alias"), "w") as handle:
            handle.write("tapeshared sysfs-ino=%s reset=%s scope=%s" % (instance, at, scope))

    def _stale(self, hba: str, name: str) -> bool:
        """Bound to a device that is gone while a newer one holds its address.

        pscsi keeps the scsi_device it bound at enable time; a tape deleted and
        rescanned at the same H:C:T:L is a new object, so the backstore's name
        still matches but every command fails (Logical unit communication failure).
        """
        found = _ALIAS.search(_read(self._p("core/%s/%s/alias" % (hba, name))))
        hctl = lio_state.hctl_of(name)
        if found is None or hctl is None:
            return False
        now = self._sysfs_id(hctl)
        return now is not None and now != found.group(1)

    def _lun_reset(self, path: str) -> None:
        """Tell every initiator nexus of a just-mapped backstore (see loopreset).

        The mapping is made already, so a failure here is a warning, not a failed
        apply: the drive's own unit attention still reaches the first initiator
        command, and `status` shows that only that one was told.
        """
        try:
            loopreset.lun_reset(self.root, path, self.reset,
                                sysfs_devices=self.settings.sysfs_devices, sleep=self.sleep)
        except TransientError as exc:
            log.warning("%s; only the first initiator command learns of the reset of "
                        "%s", exc, path)
            return
        mark = _ALIAS.search(_read(self._p(path + "/alias")))
        hctl = lio_state.hctl_of(path.rsplit("/", 1)[-1])
        if mark is None or hctl is None:
            return
        try:  # the drive's own UA was for one nexus only: every one has LIO's now
            self.tur(hctl, mark.group(1), sysfs_devices=self.settings.sysfs_devices)
        except TransientError as exc:
            log.debug("after the LUN reset of %s: %s", path, exc)
        self._mark(path, mark.group(1), mark.group(2) or "%.3f" % self.clock(), "target")

    def plan(self, snapshot: common.Snapshot, desired: DesiredState) -> Plan:
        assert isinstance(snapshot.detail, LioState)
        ops = lio_plan.plan_ops(snapshot.detail, desired, self.settings.port)
        if not ops:
            return Plan()
        return Plan(ops=tuple(ops), steps=tuple(lio_plan.describe(op) for op in ops),
                    reasons=("configfs differs from the configuration",))

    def problems(self, snapshot: common.Snapshot, desired: DesiredState) -> List[str]:
        return lio_state.problems(snapshot, desired)

    def _do(self, op: Op) -> None:
        kind = op[0]
        if kind == "write" and op[1].startswith("core/") and op[1].endswith("/enable"):
            # remember which device object enable binds (see _stale)
            hctl = lio_state.hctl_of(op[1].rsplit("/", 2)[-2])
            sysfs_id = self._sysfs_id(hctl) if hctl is not None else None
            if sysfs_id is not None:
                with open(self._p(op[1][:-len("enable")] + "alias"), "w") as handle:
                    handle.write("tapeshared sysfs-ino=%s" % sysfs_id)
        if kind == "mkdir":
            os.mkdir(self._p(op[1]))
        elif kind == "rmdir":
            os.rmdir(self._p(op[1]))
        elif kind == "unlink":
            os.unlink(self._p(op[1]))
        elif kind == "symlink":
            os.symlink(self._p(op[1]), self._p(op[2]))
        elif kind == "write":
            with open(self._p(op[1]), "w") as handle:
                handle.write(op[2])
        elif kind == "reset":
            self._reset(op[1])
        elif kind == "lunreset":
            self._lun_reset(op[1])
        elif kind == "loopup":
            try:
                loopreset.prepare(self.root, op[1], sysfs_devices=self.settings.sysfs_devices,
                                  sleep=self.sleep)
            except TransientError as exc:  # the LUN reset says what it means
                log.debug("%s", exc)
        elif kind == "unloop":
            loopreset.teardown(self.root, op[1])
        else:
            raise ValueError("unknown configfs operation %r" % (kind,))

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Run the operations in order (from this process: each costs microseconds).

        A mapping's unlink and its link run back to back, logged after both: an
        initiator command between them meets LIO's LUN 0 placeholder."""
        actions = []
        ops = list(plan.ops)
        at = 0
        while at < len(ops):
            swap = ops[at][0] == "unlink" and at + 1 < len(ops) and \
                ops[at + 1][0] == "symlink" and ops[at + 1][2] == ops[at][1]
            group = ops[at:at + 2] if swap else ops[at:at + 1]
            at += len(group)
            for op in group:
                faults.step(lio_plan.describe(op))  # a crash test may stop us right here
            done = []
            for op in group:
                try:
                    self._do(op)
                except OSError as exc:
                    if exc.errno == errno.ENOENT and op[0] in ("rmdir", "unlink"):
                        continue  # already gone: the goal is reached
                    raise TransientError("configfs: %s failed: %s" % (
                        lio_plan.describe(op), os.strerror(exc.errno or 0)))
                done.append(op)
            for op in done:
                line = lio_plan.describe(op)
                log.info("configfs: %s", line)
                actions.append("configfs: " + line)
        if plan.ops:
            managed = tuple(t.iqn for t in desired.targets)
            left = lio_plan.plan_ops(self._state(managed), desired, self.settings.port)
            if left:
                raise VerifyError("configfs still differs after apply: %s" % "; ".join(
                    lio_plan.describe(op) for op in left[:5]))
        return actions
