"""tgt backend adapter: tgtadm show/run, tgtd's open files, a memory file, drive resets.

Observed afresh each pass: targets, LUNs, ACLs and account bindings from
`tgtadm --op show`, and which backing paths tgtd holds stale (its open file
under /proc/PID/fd is no longer the node the path names: deleted, or the name
now belongs to another device). tgtd cannot tell two things, so they are kept in
STATE_DIR/tgt.json (schema 1): the address each LUN had (for absent = keep once
the device is gone), a salted PBKDF2 of each CHAP secret we set (passwords
cannot be read back), and when each LUN's device was reset before tgtd exported
it (with the kernel object reset, so `status` shows it only while the LUN still
holds that device). Losing that file only costs one account re-creation and
the reset times.
"""

import binascii
import hashlib
import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from tapeshared.backends import common
from tapeshared.backends.tgt import plan as tgt_plan
from tapeshared.backends.tgt import show
from tapeshared.backends.tgt.plan import RESET, TgtDetail, TgtSettings, op_value
from tapeshared.core.errors import CommandError, TransientError, VerifyError
from tapeshared.core.model import Chap, DesiredState, Hctl
from tapeshared.core.plan import Plan
from tapeshared.host import faults
from tapeshared.host.atomicfile import read_bytes, write_if_changed
from tapeshared.host.drivereset import DriveReset, node_address
from tapeshared.host.lock import make_dir
from tapeshared.host.runner import Runner

log = logging.getLogger(__name__)
_DELETED = " (deleted)"
# tgtadm takes the password only as an argument: pass it on stdin to a shell so
# that our argv (logged, carried by CommandError) never holds it
_WITH_SECRET = ("sh", "-c", 'exec "$@" --password "$(cat)"', "tgtadm")


def fingerprint(secret: str, salt: str) -> str:
    """A salted PBKDF2 of a CHAP secret (what the memory file keeps)."""
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"),
                                 binascii.unhexlify(salt), 20000)
    return binascii.hexlify(digest).decode("ascii")


def control_port(tgtadm: Tuple[str, ...]) -> int:
    """The control port the tgtadm command line names (-C N), default 0."""
    args = list(tgtadm)
    for i, arg in enumerate(args):
        if arg in ("-C", "--control-port") and i + 1 < len(args):
            return int(args[i + 1])
        if arg.startswith("--control-port="):
            return int(arg.split("=", 1)[1])
    return 0


def _chaps(desired: DesiredState) -> Dict[str, Chap]:
    found: Dict[str, Chap] = {}
    for target in desired.targets:
        for chap in list(target.incoming) + [c for c in [target.outgoing] if c]:
            found.setdefault(chap.user, chap)
    return found


def fresh_accounts(accounts: Mapping[str, Mapping[str, str]],
                   desired: DesiredState) -> Set[str]:
    """Users whose tgtd account we know holds the configured secret."""
    return set(user for user, chap in _chaps(desired).items()
               if user in accounts and accounts[user].get("pbkdf2") == fingerprint(
                   chap.secret, accounts[user].get("salt", "")))


class TgtBackend:
    """Drives a running tgtd through tgtadm; owns the targets marked `tapeshared`."""

    name = "tgt"

    def __init__(self, settings: TgtSettings, runner: Runner,
                 sleep: Callable[[float], object] = time.sleep,
                 drive: Optional[DriveReset] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.tgtadm = settings.tgtadm
        self.runner = runner
        self.sleep = sleep
        self.drive = drive if drive is not None else DriveReset(settings.sysfs)
        self.clock = clock
        self.memory_path = os.path.join(settings.state_dir, "tgt.json")

    def _adm(self, op: Tuple[str, ...]) -> Tuple[str, ...]:
        return self.tgtadm + ("--lld", "iscsi") + op

    def observe(self, managed: Sequence[str] = ()) -> common.Snapshot:
        """Two tgtadm runs (targets, accounts), one scan of tgtd's open files."""
        memory = self._memory()
        try:
            out = self.runner.run(self._adm(("--mode", "target", "--op", "show")),
                                  quiet=True)
            state = show.TgtState(targets=show.parse_show(out.stdout))
            out = self.runner.run(self._adm(("--mode", "account", "--op", "show")),
                                  quiet=True)
            state.accounts = show.parse_accounts(out.stdout)
        except CommandError as exc:
            detail = TgtDetail(show.TgtState(), accounts=memory["accounts"])
            return tgt_plan.snapshot(detail, set(managed),
                                     "tgtd does not answer (%s)" % exc)
        paths = set(lun.path for t in state.targets.values()
                    if t.ours or t.iqn in managed
                    for number, lun in t.luns.items() if number and lun.path)
        state.stale = self.stale(paths)
        remembered = {}
        for key, hctl in memory["luns"].items():
            iqn, _sep, number = key.rpartition(" ")
            try:
                remembered[(iqn, int(number))] = Hctl.parse(hctl)
            except ValueError:
                continue
        resolve = {p: h for p, h in ((p, self._resolve(p)) for p in paths) if h}
        detail = TgtDetail(state, resolve, remembered, memory["accounts"],
                           self._resets_held(state, memory["resets"]))
        return tgt_plan.snapshot(detail, set(managed))

    def _tgtd_pids(self) -> List[str]:
        """tgtd processes holding this control port's lock file."""
        locks = set("%s/tgtd/socket.%d.lock" % (run, control_port(self.tgtadm))
                    for run in ("/run", "/var/run"))
        found = []
        proc = self.settings.proc
        for pid in (p for p in os.listdir(proc) if p.isdigit()):
            try:
                with open(os.path.join(proc, pid, "comm")) as handle:
                    if handle.read().strip() != "tgtd":
                        continue
                fds = os.path.join(proc, pid, "fd")
                if any(os.readlink(os.path.join(fds, fd)) in locks for fd in os.listdir(fds)):
                    found.append(pid)
            except OSError:
                continue  # exited meanwhile, or not ours to read
        return found

    def stale(self, paths: Set[str]) -> Set[str]:
        """Paths whose file tgtd has open is not (any more) the file the path names."""
        found: Set[str] = set()
        if not paths:
            return found
        for pid in self._tgtd_pids():
            fds = os.path.join(self.settings.proc, pid, "fd")
            try:
                names = os.listdir(fds)
            except OSError:
                continue
            for fd in names:
                link = ""
                try:
                    link = os.readlink(os.path.join(fds, fd))
                    if link.endswith(_DELETED) and link[:-len(_DELETED)] in paths:
                        found.add(link[:-len(_DELETED)])
                    elif link in paths:
                        held = os.stat(os.path.join(fds, fd))
                        now = os.stat(link)
                        if (held.st_dev, held.st_ino, held.st_rdev) != (
                                now.st_dev, now.st_ino, now.st_rdev):
                            found.add(link)
                except FileNotFoundError:
                    if link in paths:
                        found.add(link)
                except OSError:
                    continue
        return found

    def _resets_held(self, state: show.TgtState, resets: Mapping[str, Any]
                     ) -> Dict[Tuple[str, int], float]:
        """(iqn, LUN) -> reset time, for LUNs that still hold the device reset."""
        found = {}
        for key, record in resets.items():
            iqn, _sep, number = key.rpartition(" ")
            target = state.by_iqn(iqn)
            try:
                lun = target.luns.get(int(number)) if target is not None else None
                hctl = Hctl.parse(str(record["hctl"]))
                at = float(record["at"])
                path, held = str(record["path"]), str(record["instance"])
            except (KeyError, TypeError, ValueError):
                continue  # a hand-edited or older record: no reset on record
            if lun is not None and lun.path == path and path not in state.stale and \
                    self.drive.holds(path, hctl, held):
                found[(iqn, int(number))] = at
        return found

    def _resolve(self, path: str) -> Optional[Hctl]:
        """The SCSI address behind an sg or bsg node now, from sysfs (None for
        a regular file: the host tier's rdwr LUNs are what they name)."""
        return node_address(path, self.settings.sysfs)

    def _memory(self) -> Dict[str, Any]:
        data = read_bytes(self.memory_path)
        try:
            loaded = json.loads(data.decode("utf-8")) if data else {}
        except ValueError:
            log.warning("%s is not valid JSON; starting afresh", self.memory_path)
            loaded = {}
        if not isinstance(loaded, dict) or loaded.get("schema") != 1:
            loaded = {}
        accounts = {user: fp for user, fp in dict(loaded.get("accounts") or {}).items()
                    if isinstance(fp, dict)}
        resets = {key: r for key, r in dict(loaded.get("resets") or {}).items()
                  if isinstance(r, dict)}
        return {"schema": 1, "luns": dict(loaded.get("luns") or {}), "accounts": accounts,
                "resets": resets}

    def _save(self, memory: Dict[str, Any]) -> None:
        make_dir(self.settings.state_dir, "tgt state directory")
        data = json.dumps(memory, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        if write_if_changed(self.memory_path, data, 0o600):
            log.info("wrote %s", self.memory_path)

    def _ops(self, snapshot: common.Snapshot,
             desired: DesiredState) -> Tuple[List[tgt_plan.Op], List[str]]:
        detail = snapshot.detail
        assert isinstance(detail, TgtDetail)
        if not snapshot.running:
            raise TransientError(snapshot.down)
        return tgt_plan.plan_ops(detail.state, desired,
                                 fresh_accounts(detail.accounts, desired),
                                 set(detail.accounts), self.settings.bstype,
                                 self.settings.device_type)

    def plan(self, snapshot: common.Snapshot, desired: DesiredState) -> Plan:
        ops, notes = self._ops(snapshot, desired)
        if not ops:
            return Plan(notes=tuple(notes))
        return Plan(ops=tuple(ops), notes=tuple(notes),
                    steps=tuple(tgt_plan.describe(op, self.tgtadm) for op in ops),
                    reasons=("tgtd differs from the configuration",))

    def problems(self, snapshot: common.Snapshot, desired: DesiredState) -> List[str]:
        return common.lun_problems(snapshot, desired)

    def _run(self, op: Tuple[str, ...], chaps: Dict[str, Chap]) -> None:
        user = tgt_plan.needs_secret(op)
        faults.step(tgt_plan.describe(op))  # the password masked
        try:
            if user is None:
                self.runner.run(self._adm(op))
            else:
                self.runner.run(_WITH_SECRET + self._adm(op), input_text=chaps[user].secret)
        except CommandError as exc:
            if op[3] in ("delete", "unbind") and "can't find" in exc.stderr:
                return  # already gone: the goal is reached
            raise

    def _reset(self, op: Tuple[str, ...], memory: Dict[str, Any]) -> None:
        """Reset the device a LUN is about to export; remember when and which one."""
        hctl, path = Hctl.parse(op_value(op, "--hctl")), op_value(op, "--backing-store")
        faults.step("reset %s %s" % (hctl, path))
        held = self.drive.reset(hctl, path)
        log.info("reset the logical unit %s (%s) before exporting it as LUN %s of %s",
                 hctl, path, op_value(op, "--lun"), op_value(op, "--targetname"))
        memory["resets"]["%s %s" % (op_value(op, "--targetname"), op_value(op, "--lun"))] = {
            "at": self.clock(), "hctl": str(hctl), "path": path, "instance": held}

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Run the operations in order, remember what tgtd cannot show, verify.

        A device whose reset fails is not exported (its LU creation is skipped,
        the initiator keeps seeing no drive there); the other operations still
        run, and the failure is raised afterwards as a TransientError, so the
        next pass resets and exports it again.
        """
        actions = []
        chaps = _chaps(desired)
        memory = self._memory()
        unreset: Set[str] = set()  # backing paths whose reset failed
        failed: List[str] = []
        try:
            for op in plan.ops:
                if op[0] == RESET:
                    try:
                        self._reset(op, memory)
                    except TransientError as exc:
                        log.error("%s", exc)
                        failed.append(str(exc))
                        unreset.add(op_value(op, "--backing-store"))
                        continue
                    actions.append(tgt_plan.describe(op))
                    continue
                if op[:4] == ("--mode", "logicalunit", "--op", "new") and \
                        op_value(op, "--backing-store") in unreset:
                    continue  # never export a drive whose position was not reset
                self._run(op, chaps)
                actions.append("ran " + tgt_plan.describe(op, self.tgtadm))
                user = op[op.index("--user") + 1] if op[:2] == ("--mode", "account") \
                    else None
                if user is not None and op[3] == "new":
                    salt = binascii.hexlify(os.urandom(16)).decode("ascii")
                    memory["accounts"][user] = {
                        "salt": salt, "pbkdf2": fingerprint(chaps[user].secret, salt)}
                elif user is not None and op[3] == "delete":
                    memory["accounts"].pop(user, None)
        finally:
            # a squatted LUN's last address too: the next pass checks it again
            memory["luns"] = dict(("%s %d" % (t.iqn, lun.lun), str(lun.hctl or lun.last))
                                  for t in desired.targets for lun in t.luns
                                  if lun.hctl is not None or lun.last is not None)
            configured = set("%s %d" % (t.iqn, lun.lun) for t in desired.targets
                             for lun in t.luns)
            memory["resets"] = {key: record for key, record in memory["resets"].items()
                                if key in configured}
            self._save(memory)
        if failed:
            raise TransientError("; ".join(failed))
        if plan.ops:
            left, _notes = self._ops(self.observe(tuple(t.iqn for t in desired.targets)),
                                     desired)
            if left:
                raise VerifyError("tgtd still differs after apply: %s" % "; ".join(
                    tgt_plan.describe(op) for op in left[:5]))
        return actions
