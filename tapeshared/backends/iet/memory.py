"""What IET exported at its last apply, per LUN: the device instance and its reset.

IET itself cannot say which kernel object a rawio LUN opened, only its address,
so tapeshared remembers (a small versioned JSON file in state_dir) which device
instance each LUN was bound to and when that instance was reset before mapping.
A later apply compares: a new instance at the same address is a device whose
position the initiator no longer knows. Pure: the backend reads and writes
the file.
"""

import json
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from tapeshared.backends import common
from tapeshared.core.model import Hctl

SCHEMA = 1
FILENAME = "iet-luns.json"
SCOPE = "drive"  # rawio passes the drive's own unit attention to the first command


@dataclass(frozen=True)
class Record:
    """One LUN at the last apply: its address, the device instance there, its reset."""

    hctl: Hctl
    instance: Optional[str]
    reset_at: Optional[float] = None


Key = Tuple[str, int]  # (target IQN, LUN)
Memory = Dict[Key, Record]


def memory_path(state_dir: str) -> str:
    return os.path.join(state_dir, FILENAME)


def parse(text: str) -> Memory:
    """The memory from its JSON text; ValueError if it is not ours or malformed."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or \
            not isinstance(data.get("luns"), list):
        raise ValueError("not a schema %d LUN memory" % SCHEMA)
    found: Memory = {}
    for item in data["luns"]:
        if not isinstance(item, dict):
            raise ValueError("a LUN entry is not an object")
        iqn, lun, instance, stamp = (item.get("iqn"), item.get("lun"),
                                     item.get("instance"), item.get("reset_at"))
        if not isinstance(iqn, str) or isinstance(lun, bool) or not isinstance(lun, int) \
                or not isinstance(instance, (str, type(None))) \
                or isinstance(stamp, bool) or not isinstance(stamp, (int, float, type(None))):
            raise ValueError("a LUN entry has a field of the wrong type")
        found[(iqn, lun)] = Record(Hctl.parse(str(item.get("hctl"))), instance,
                                   None if stamp is None else float(stamp))
    return found


def render(memory: Memory) -> bytes:
    """The memory as JSON text, sorted, so an unchanged memory is not rewritten."""
    luns = [{"iqn": iqn, "lun": lun, "hctl": str(rec.hctl), "instance": rec.instance,
             "reset_at": rec.reset_at} for (iqn, lun), rec in sorted(memory.items())]
    return (json.dumps({"schema": SCHEMA, "luns": luns}, indent=1, sort_keys=True)
            + "\n").encode("utf-8")


def stale(live: common.LiveLun, record: Optional[Record], now: Optional[str]) -> bool:
    """Whether a running LUN still holds the device instance the last apply bound
    while its address now holds another one (or none): IET's rawio LUN keeps the
    old kernel object, so the LUN serves a device that is gone."""
    return record is not None and live.hctl is not None and record.hctl == live.hctl \
        and record.instance != now


def needs_reset(live: Optional[common.LiveLun], record: Optional[Record], hctl: Hctl,
                now: Optional[str]) -> bool:
    """Whether binding the LUN to the device at hctl (instance now) is a re-point.

    A re-point: the running LUN shows another address, or the same address now
    holds another instance than the one recorded; a LUN that is not live (ietd
    stopped, a LUN added) unless the last apply bound this very instance. A
    restart that keeps the device (a new initiator, CHAP) is no re-point: the
    drive kept its position and the initiator's st still knows it.
    """
    if live is not None and live.hctl is not None:
        if live.hctl != hctl:
            return True
        return record is not None and record.hctl == hctl and record.instance != now
    return record is None or record.hctl != hctl or record.instance != now


def annotate(live: common.LiveLun, record: Optional[Record], now: Optional[str]
             ) -> common.LiveLun:
    """The LUN as the target shows it, with what the memory knows of its device."""
    if stale(live, record, now):
        return common.LiveLun(live.hctl, False, live.backing)
    if record is not None and record.hctl == live.hctl and record.reset_at is not None:
        return common.LiveLun(live.hctl, live.healthy, live.backing,
                              reset_at=record.reset_at, reset_scope=SCOPE)
    return live
