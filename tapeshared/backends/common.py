"""What every backend shares (pure): the live view of a target, verification, the verify loop."""

import time
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Dict, List, Mapping, Optional, Tuple

from tapeshared.core.errors import VerifyError
from tapeshared.core.model import DesiredState, Hctl, LunState, Session, TargetState

Previous = Mapping[Tuple[str, int], Hctl]


@dataclass(frozen=True)
class LiveLun:
    """One LUN as the target shows it: the SCSI address its device has, if known.

    `healthy` is False when the target still holds a device instance that is
    gone (LIO: a backstore bound to a deleted scsi_device; tgt: a dead sg fd).
    """

    hctl: Optional[Hctl]
    healthy: bool = True
    backing: str = ""  # what the target names (a backstore, a node path), for status
    # when the device instance now behind this LUN was reset from the host before
    # any initiator could reach it (epoch seconds; None: no reset on record), and
    # who learns of it: "drive" (the drive's own unit attention, reported to the
    # first initiator command that reaches it) or "target" (a LUN reset inside the
    # target: every initiator nexus of the LUN gets it)
    reset_at: Optional[float] = None
    reset_scope: str = ""


@dataclass(frozen=True)
class LiveTarget:
    """A managed target as it runs: its LUNs (as initiators number them), sessions."""

    iqn: str
    enabled: bool = True
    luns: Mapping[int, LiveLun] = field(default_factory=dict)
    sessions: Tuple[Session, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """One read of a target backend.

    `targets` holds the managed and our own targets only; `previous` the address
    each (iqn, LUN) had, for the keep-while-absent policy; `detail` the backend's
    own observed state, which only its planner reads. `down` says why the target
    software is not running ("" when it is).
    """

    backend: str
    targets: Mapping[str, LiveTarget] = field(default_factory=dict)
    previous: Previous = field(default_factory=dict)
    detail: object = None
    down: str = ""

    @property
    def running(self) -> bool:
        return not self.down


def lowest_free(used: AbstractSet[int], start: int) -> int:
    """The lowest number >= start that is not in used (tids, HBA indexes, LUNs)."""
    number = start
    while number in used:
        number += 1
    return number


def _names_node(live: LiveLun, lun: LunState) -> bool:
    """A LUN backed by a node path that sysfs could not resolve: it is the device
    if the path is the node discovery found for it (and the target holds it fresh)."""
    return live.hctl is None and lun.device is not None and \
        live.backing in lun.device.nodes.values()


def target_problems(target: TargetState, live: Optional[LiveTarget],
                    unshown: bool = True) -> List[str]:
    """How one running target differs from what must be live now, LUN by LUN.

    A LUN is verified when it points at the address of the device found by
    identity (present), or still at its last address (kept); anything else it
    points at is reported, as is a LUN that is live but not configured. A LUN
    whose target does not show its device (no address, no backing) is reported
    unless `unshown` is False (a restart cannot make a target show more).
    """
    if live is None:
        return ["target %s is not running" % target.iqn]
    if not live.enabled:
        return ["target %s is not enabled" % target.iqn]
    found = []
    for lun in target.luns:
        now = live.luns.get(lun.lun)
        where = "LUN %d of %s (%s)" % (lun.lun, target.iqn, lun.match)
        if lun.status == "present":
            if now is None:
                found.append("%s is not live" % where)
            elif now.hctl is None and not now.backing:
                if unshown:
                    found.append("%s: the target does not show which device it uses; "
                                 "cannot verify" % where)
            elif now.hctl != lun.hctl and not _names_node(now, lun):
                found.append("%s points at %s, not at the device (%s)" % (
                    where, now.hctl or now.backing, lun.hctl))
            elif not now.healthy:
                found.append("%s is bound to a vanished device at %s" % (where, lun.hctl))
        elif lun.status == "squatted":
            # held not-ready (bound to the device that left) is safe; a LUN that
            # answers at that address serves the newcomer
            if now is not None and now.healthy:
                found.append("%s is live at %s, which now holds another device" % (
                    where, now.hctl or now.backing or "an unknown device"))
        elif now is not None and lun.hctl is not None and now.hctl != lun.hctl and \
                (now.hctl is not None or now.backing):
            found.append("%s points at %s, not at its last address %s" % (
                where, now.hctl or "an unknown device", lun.hctl))
    exported = set(lun.lun for lun in target.exported_luns)
    exported |= set(lun.lun for lun in target.luns if lun.status == "squatted")
    for number in sorted(set(live.luns) - exported):
        found.append("LUN %d of %s is live but not configured" % (number, target.iqn))
    return found


def lun_problems(snapshot: Snapshot, desired: DesiredState,
                 unshown: bool = True) -> List[str]:
    """target_problems for every desired target, or why the target is not running."""
    if not snapshot.running:
        return [snapshot.down]
    found: List[str] = []
    for target in desired.targets:
        found.extend(target_problems(target, snapshot.targets.get(target.iqn), unshown))
    return found


def sessions(snapshot: Snapshot) -> Dict[str, List[Session]]:
    """Connected initiators per target IQN."""
    return {iqn: list(t.sessions) for iqn, t in snapshot.targets.items() if t.sessions}


def wait_verified(observe: Callable[[], Snapshot],
                  problems: Callable[[Snapshot], List[str]], timeout: float,
                  sleep: Callable[[float], object] = time.sleep,
                  clock: Callable[[], float] = time.monotonic,
                  interval: float = 0.05) -> Snapshot:
    """Re-read the target until it shows no problem; VerifyError after timeout."""
    deadline = clock() + timeout
    while True:
        snapshot = observe()
        left = problems(snapshot)
        if not left:
            return snapshot
        if clock() >= deadline:
            raise VerifyError("the target does not export what was configured: %s"
                              % "; ".join(left))
        sleep(interval)
