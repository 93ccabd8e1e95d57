"""tgt backend adapter: tgtadm show/run, tgtd's open files, a small memory file.

Observed afresh each pass: targets, LUNs, ACLs and account bindings from
`tgtadm --op show`, and which backing paths tgtd holds stale (its open file
under /proc/PID/fd is no longer the node the path names: deleted, or the name
now belongs to another device). tgtd cannot tell two things, so they are kept in
STATE_DIR/tgt.json (schema 1): the address each LUN had (for absent = keep once
the device is gone) and a salted PBKDF2 of each CHAP secret we set (passwords
cannot be read back). Losing that file only costs one account re-creation.
"""

import binascii
import hashlib
import json
import logging
import os
import stat
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from tapeshared import tgtplan
from tapeshared.atomicfile import read_bytes, write_if_changed
from tapeshared.errors import CommandError, VerifyError
from tapeshared.model import Chap, DesiredState, GlobalConfig, Hctl
from tapeshared.plan import Plan
from tapeshared.runner import Runner

log = logging.getLogger(__name__)
_DELETED = " (deleted)"
# tgtadm takes the password only as an argument: pass it on stdin to a shell so
# that our argv (logged, carried by CommandError) never holds it
_WITH_SECRET = ("sh", "-c", 'exec "$@" --password "$(cat)"', "tgtadm")


def _fingerprint(secret: str, salt: str) -> str:
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


class TgtBackend:
    """Drives a running tgtd through tgtadm; owns the targets marked `tapeshared`."""

    name = "tgt"

    def __init__(self, settings: GlobalConfig, runner: Runner,
                 sleep: Callable[[float], Any] = time.sleep, bstype: str = "sg",
                 device_type: str = "pt", proc: str = "/proc", sysfs: str = "/sys",
                 tgtadm: Optional[Tuple[str, ...]] = None) -> None:
        self.settings = settings
        # GlobalConfig.tgtadm (default ("tgtadm",)); an explicit argument wins
        self.tgtadm: Tuple[str, ...] = tuple(
            tgtadm or getattr(settings, "tgtadm", None) or ("tgtadm",))
        self.runner = runner
        self.sleep = sleep
        self.bstype = bstype  # tests use rdwr/disk: this host has no sg devices
        self.device_type = device_type
        self.proc = proc
        self.sysfs = sysfs
        self.memory_path = os.path.join(settings.state_dir, "tgt.json")

    def _adm(self, op: Tuple[str, ...]) -> Tuple[str, ...]:
        return self.tgtadm + ("--lld", "iscsi") + op

    def _show(self) -> Dict[int, tgtplan.Target]:
        out = self.runner.run(self._adm(("--mode", "target", "--op", "show")), quiet=True)
        return tgtplan.parse_show(out.stdout)

    def observe(self, managed: Tuple[str, ...] = ()) -> tgtplan.TgtState:
        """tgtd's targets and accounts, and the backing paths it holds stale."""
        state = tgtplan.TgtState(targets=self._show())
        out = self.runner.run(self._adm(("--mode", "account", "--op", "show")), quiet=True)
        state.accounts = tgtplan.parse_accounts(out.stdout)
        paths = set(lun.path for t in state.targets.values()
                    if t.ours or t.iqn in managed
                    for number, lun in t.luns.items() if number and lun.path)
        state.stale = self.stale(paths)
        return state

    def _tgtd_pids(self) -> List[str]:
        """tgtd processes holding this control port's lock file."""
        locks = set("%s/tgtd/socket.%d.lock" % (run, control_port(self.tgtadm))
                    for run in ("/run", "/var/run"))
        found = []
        for pid in (p for p in os.listdir(self.proc) if p.isdigit()):
            try:
                with open(os.path.join(self.proc, pid, "comm")) as handle:
                    if handle.read().strip() != "tgtd":
                        continue
                fds = os.path.join(self.proc, pid, "fd")
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
            fds = os.path.join(self.proc, pid, "fd")
            try:
                names = os.listdir(fds)
            except OSError:
                continue
            for fd in names:
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

    def _resolve(self, path: str) -> Optional[Hctl]:
        """The SCSI address behind an sg or bsg node now, from sysfs."""
        base = os.path.basename(path)
        for link in ("class/scsi_generic/%s/device" % base, "class/bsg/%s/device" % base):
            try:
                return Hctl.parse(os.path.basename(os.readlink(os.path.join(self.sysfs,
                                                                            link))))
            except (OSError, ValueError):
                continue
        return None

    def _memory(self) -> Dict[str, Any]:
        data = read_bytes(self.memory_path)
        try:
            loaded = json.loads(data.decode("utf-8")) if data else {}
        except ValueError:
            log.warning("%s is not valid JSON; starting afresh", self.memory_path)
            loaded = {}
        if not isinstance(loaded, dict) or loaded.get("schema") != 1:
            loaded = {}
        return {"schema": 1, "luns": dict(loaded.get("luns") or {}),
                "accounts": dict(loaded.get("accounts") or {})}

    def _save(self, memory: Dict[str, Any]) -> None:
        os.makedirs(self.settings.state_dir, exist_ok=True)
        data = json.dumps(memory, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        if write_if_changed(self.memory_path, data, 0o600):
            log.info("wrote %s", self.memory_path)

    def previous(self) -> Dict[Tuple[str, int], Hctl]:
        state = self.observe()
        remembered = {}
        for key, hctl in self._memory()["luns"].items():
            iqn, _sep, number = key.rpartition(" ")
            try:
                remembered[(iqn, int(number))] = Hctl.parse(hctl)
            except ValueError:
                continue
        paths = set(lun.path for t in state.targets.values() for lun in t.luns.values())
        resolve = {p: h for p, h in ((p, self._resolve(p)) for p in paths) if h}
        return tgtplan.previous(state, resolve, remembered)

    def _plan(self, desired: DesiredState) -> Tuple[List[tgtplan.Op], List[str]]:
        memory = self._memory()
        fresh = set(user for user, chap in _chaps(desired).items()
                    if isinstance(memory["accounts"].get(user), dict)
                    and memory["accounts"][user].get("pbkdf2") == _fingerprint(
                        chap.secret, memory["accounts"][user].get("salt", "")))
        state = self.observe(tuple(t.iqn for t in desired.targets))
        return tgtplan.plan_ops(state, desired, fresh, set(memory["accounts"]),
                                self.bstype, self.device_type, self._unready(desired))

    def _unready(self, desired: DesiredState) -> Set[str]:
        """Pass-through nodes of present devices that are not char devices yet."""
        if self.bstype not in ("sg", "bsg"):
            return set()
        found = set()
        for target in desired.targets:
            for lun in target.live_luns:
                path = (lun.device.sg or lun.device.bsg) if lun.device else None
                try:
                    ready = path is not None and stat.S_ISCHR(os.stat(path).st_mode)
                except OSError:
                    ready = False
                if path is not None and not ready:
                    found.add(path)
        return found

    def plan(self, desired: DesiredState) -> Plan:
        ops, notes = self._plan(desired)
        if not ops:
            return Plan(notes=tuple(notes))
        return Plan(ops=tuple(ops), notes=tuple(notes),
                    steps=tuple(tgtplan.describe(op, self.tgtadm)
                                for op in ops),
                    reasons=("tgtd differs from the configuration",))

    def _run(self, op: Tuple[str, ...], chaps: Dict[str, Chap]) -> None:
        user = tgtplan.needs_secret(op)
        try:
            if user is None:
                self.runner.run(self._adm(op))
            else:
                self.runner.run(_WITH_SECRET + self._adm(op), input_text=chaps[user].secret)
        except CommandError as exc:
            if op[3] in ("delete", "unbind") and "can't find" in exc.stderr:
                return  # already gone: the goal is reached
            raise

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Run the tgtadm operations in order, remember what tgtd cannot show, verify."""
        actions = []
        chaps = _chaps(desired)
        memory = self._memory()
        try:
            for op in plan.ops:
                self._run(op, chaps)
                actions.append("ran " + tgtplan.describe(op, self.tgtadm))
                user = op[op.index("--user") + 1] if op[:2] == ("--mode", "account") \
                    else None
                if user is not None and op[3] == "new":
                    salt = binascii.hexlify(os.urandom(16)).decode("ascii")
                    memory["accounts"][user] = {
                        "salt": salt, "pbkdf2": _fingerprint(chaps[user].secret, salt)}
                elif user is not None and op[3] == "delete":
                    memory["accounts"].pop(user, None)
        finally:
            memory["luns"] = dict(("%s %d" % (t.iqn, lun.lun), str(lun.hctl))
                                  for t in desired.targets for lun in t.exported_luns)
            self._save(memory)
        if plan.ops:
            left, _notes = self._plan(desired)
            if left:
                raise VerifyError("tgtd still differs after apply: %s" % "; ".join(
                    tgtplan.describe(op) for op in left[:5]))
        return actions

    def live(self) -> Optional[Dict[str, tgtplan.Target]]:
        """Targets tgtd runs now by IQN, or None when tgtd does not answer."""
        try:
            return dict((t.iqn, t) for t in self._show().values())
        except CommandError:
            return None

    def problems(self, desired: DesiredState,
                 live: Optional[Dict[str, tgtplan.Target]]) -> List[str]:
        """How the running target differs from what must be live now."""
        if live is None:
            return ["tgtd does not answer (%s)" % " ".join(self.tgtadm)]
        found = []
        for target in desired.targets:
            running = live.get(target.iqn)
            if running is None:
                found.append("target %s is not running" % target.iqn)
                continue
            for lun in target.live_luns:
                now = running.luns.get(lun.lun)
                path = lun.device.sg or lun.device.bsg if lun.device else None
                if now is None or now.path != path:
                    found.append("LUN %d of %s (%s) is not live" % (lun.lun, target.iqn,
                                                                   lun.match))
        return found

    def sessions(self) -> Dict[str, List[tgtplan.Session]]:
        """Per target IQN: (initiator IQN, addresses) of each I_T nexus."""
        return dict((t.iqn, list(t.sessions)) for t in self._show().values() if t.sessions)

    def unexport(self) -> Plan:
        """A plan that removes every target of ours (used on stop when asked)."""
        return self.plan(DesiredState(targets=()))
