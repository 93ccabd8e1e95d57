"""The daemon's state file for `status`: versioned JSON, written atomically, no secrets."""

import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

from tapeshared.core.model import DesiredState, device_record
from tapeshared.host.atomicfile import write_if_changed
from tapeshared.reconcile import Report

log = logging.getLogger(__name__)

SCHEMA = 1
FILENAME = "state.json"


class StateError(Exception):
    """The state file exists but cannot be read or is not ours."""


def state_path(state_dir: str) -> str:
    return os.path.join(state_dir, FILENAME)


def process_start(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: fields resume after the last ')'
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


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

    def write(self) -> None:
        """Write when the content changed; otherwise touch it so `status` sees it fresh."""
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        blob = (json.dumps(self.data, indent=1, sort_keys=True) + "\n").encode("utf-8")
        if not write_if_changed(self.path, blob, 0o644):
            os.utime(self.path)
            log.debug("state unchanged; touched %s", self.path)


def read_state(path: str) -> Optional[Dict[str, Any]]:
    """The state a daemon wrote, None if there is none; StateError if unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError("%s: %s" % (path, exc))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise StateError("%s: not a schema %d tapeshared state file" % (path, SCHEMA))
    data["mtime"] = mtime
    return data
