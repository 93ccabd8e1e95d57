"""The daemon's state file for `status`: versioned JSON, written atomically, no secrets."""

import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

from tapeshared.core.errors import TapesharedError
from tapeshared.core.model import DesiredState, device_record
from tapeshared.host.atomicfile import write_if_changed
from tapeshared.host.lock import make_dir, process_start
from tapeshared.reconcile import Report

log = logging.getLogger(__name__)

SCHEMA = 1
FILENAME = "state.json"


class StateError(Exception):
    """The state file exists but cannot be read or is not ours."""


def state_path(state_dir: str) -> str:
    return os.path.join(state_dir, FILENAME)


def exports_list(desired: DesiredState) -> List[Dict[str, Any]]:
    """What each export should be now. CHAP users and secrets are left out on purpose."""
    exports = []
    for target in desired.targets:
        exports.append({
            "name": target.name, "iqn": target.iqn,
            "initiators": list(target.initiators),
            "luns": [{
                "lun": lun.lun, "match": str(lun.match), "status": lun.status,
                "hctl": str(lun.hctl) if lun.hctl else None, "note": lun.note,
                "nodes": lun.device.nodes if lun.device else {},
            } for lun in target.luns],
        })
    return exports


def summary(report: Report) -> str:
    """A STATUS= line a person can read: '2 exports ok, 1 device absent'."""
    targets = report.desired.targets
    ok = sum(1 for t in targets if all(lun.status == "present" for lun in t.luns))
    counts: Dict[str, int] = {}
    for target in targets:
        for lun in target.luns:
            if lun.status != "present":
                counts[lun.status] = counts.get(lun.status, 0) + 1
    parts = ["%d export%s ok" % (ok, "" if ok == 1 else "s")]
    if len(targets) > ok:
        parts.append("%d degraded" % (len(targets) - ok))
    for status in sorted(counts):
        name = {"kept": "absent (last address kept)"}.get(status, status)
        parts.append("%d device%s %s" % (counts[status], "" if counts[status] == 1 else "s",
                                          name))
    return ", ".join(parts)


class StateFile:
    """Accumulates what the daemon did and writes it after every pass."""

    def __init__(self, state_dir: str, resync_interval: float) -> None:
        self.path = state_path(state_dir)
        self._touched = 0.0
        self.data: Dict[str, Any] = {
            "schema": SCHEMA, "pid": os.getpid(), "pid_start": process_start(os.getpid()),
            "started": time.time(), "resync_interval": resync_interval, "running": True,
            "devices": [], "exports": [], "last_pass": None, "last_change": None,
            "last_error": None, "problems": [],
        }

    def record(self, report: Report, error: Optional[str], retry_in: Optional[float]) -> None:
        """Fold one reconcile report (reconcile.Report) into the state."""
        data = self.data
        data["devices"] = [device_record(d) for d in report.devices]
        data["exports"] = exports_list(report.desired)
        data["problems"] = list(report.desired.problems)
        if report.actions or error or data["last_pass"] is None:
            data["last_pass"] = {
                "started": report.started, "seconds": round(report.seconds, 3),
                "reasons": list(report.plan.reasons), "actions": list(report.actions),
                "error": error, "retry_in": retry_in,
            }
        if report.actions:
            data["last_change"] = {"time": report.started, "actions": list(report.actions)}
        if error:
            data["last_error"] = {"time": report.started, "error": error}

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    def touch(self, every: float = 5.0) -> None:
        """Mark the state fresh during a long apply (called from its waits), so
        `status` does not call a daemon that is busy waiting stale."""
        now = time.monotonic()
        if now - self._touched < every:
            return
        self._touched = now
        try:
            if os.path.exists(self.path):
                os.utime(self.path)
            else:  # the first pass is still waiting: say that we run
                self.write()
        except (OSError, TapesharedError):
            pass  # the host refuses: the pass's own write says why

    def move(self, state_dir: str) -> None:
        """Write to state_dir from now on (a reload moved it). The old file is
        removed, so `status` never reads one that stopped changing."""
        path = state_path(state_dir)
        if path == self.path:
            return
        old, self.path = self.path, path
        log.info("state_dir moved: the state file is now %s", path)
        try:
            os.unlink(old)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the old state file %s: %s", old, exc)

    def write(self) -> None:
        """Write when the content changed; otherwise touch it so `status` sees it fresh."""
        make_dir(os.path.dirname(self.path), "state directory")
        blob = (json.dumps(self.data, indent=1, sort_keys=True) + "\n").encode("utf-8")
        if not write_if_changed(self.path, blob, 0o644):
            os.utime(self.path)
            log.debug("state unchanged; touched %s", self.path)


_NUMBER = (int, float)
_NONE = type(None)
# The fields `status` reads, with the types it can use (bool is not a number here).
_FIELDS: Dict[str, Any] = {
    "pid": (int,), "pid_start": (int, _NONE), "started": _NUMBER,
    "resync_interval": _NUMBER, "running": (bool,), "exports": (list,),
    "devices": (list,), "problems": (list,), "last_pass": (dict, _NONE),
    "last_change": (dict, _NONE), "last_error": (dict, _NONE),
}
_INNER: Dict[str, Dict[str, Any]] = {
    "last_pass": {"error": (str, _NONE), "actions": (list,)},
    "last_change": {"time": _NUMBER, "actions": (list,)},
    "last_error": {"time": _NUMBER, "error": (str,)},
}


def _typed(value: Any, types: Any) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _check(data: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a schema-1 document's fields, or None."""
    for key, types in sorted(_FIELDS.items()):
        if key not in data:
            return "%s is missing" % key
        if not _typed(data[key], types):
            return "%s has the wrong type (%s)" % (key, type(data[key]).__name__)
        inner = _INNER.get(key)
        if inner and data[key] is not None:
            for sub, subtypes in sorted(inner.items()):
                if sub in data[key] and not _typed(data[key][sub], subtypes):
                    return "%s.%s has the wrong type (%s)" % (
                        key, sub, type(data[key][sub]).__name__)
    for outer in ("last_pass", "last_change"):
        actions = (data[outer] or {}).get("actions") or []
        if not all(isinstance(action, str) for action in actions):
            return "%s.actions holds something that is not text" % outer
    return None


def read_state(path: str) -> Optional[Dict[str, Any]]:
    """The state a daemon wrote, None if there is none; StateError if unusable
    (unreadable, not JSON, another schema, fields of the wrong type)."""
    try:
        with open(path, "rb") as handle:
            blob = handle.read(16 * 1024 * 1024)
        mtime = os.stat(path).st_mtime
    except (FileNotFoundError, NotADirectoryError):  # no state dir: no daemon wrote one
        return None
    except OSError as exc:
        raise StateError("%s: cannot be read: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(blob.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise StateError("%s: not valid JSON (%s)" % (path, str(exc)[:200]))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise StateError("%s: not a schema %d tapeshared state file" % (path, SCHEMA))
    problem = _check(data)
    if problem:
        raise StateError("%s: not a usable state file: %s" % (path, problem))
    data["mtime"] = mtime
    return data
