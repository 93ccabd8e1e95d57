"""LIO configfs as tapeshared sees it (pure): our objects, their names, the common view."""

import hashlib
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

from tapeshared.backends import common
from tapeshared.core.model import DesiredState, Hctl, LunState, Session

PREFIX = "tapeshared-"
HBA_BASE = 1000  # our HBAs are pscsi_1000 and up, away from targetcli's low numbers
# what a target of ours says about itself (tpgt_1/param/TargetAlias): a target of
# ours keeps being recognised while its last LUN is being taken down
TARGET_ALIAS = "tapeshared"
_NAME_HCTL = re.compile(r"-h([0-9]+)c([0-9]+)t([0-9]+)l([0-9]+)\Z")

Op = Tuple[str, ...]  # ("mkdir", path) ("rmdir", path) ("write", path, value)
#                       ("symlink", target, link) ("unlink", path)
#                       ("reset", backstore path): reset its device from the host
#                       ("loopup", backstore path): its loopback nexus, before
#                       ("lunreset", backstore path): a LUN reset inside LIO
#                       ("unloop", wwn): remove a loopback target of ours


@dataclass(frozen=True)
class Backstore:
    """A pscsi storage object of ours; `enabled` False: not bound, or bound to a
    device that is gone while its address holds a newer one (must be replaced)."""

    hba: str
    name: str
    enabled: bool = True
    bound: Optional[Hctl] = None  # the address pscsi reports it bound (its `info`)
    udev_path: str = ""  # the node it was given: one of the device's nodes
    # when its device was reset from the host before any initiator could reach it
    # (its alias records it; None: never, or bound by an older version)
    reset_at: Optional[float] = None
    reset_scope: str = ""  # "drive" | "target" (see common.LiveLun)

    @property
    def path(self) -> str:
        return "core/%s/%s" % (self.hba, self.name)


@dataclass
class Acl:
    """One initiator's node ACL: mapped LUN -> target LUN, and its CHAP settings."""

    mapped: Dict[int, Optional[int]] = field(default_factory=dict)
    auth: Dict[str, str] = field(default_factory=dict)


@dataclass
class Target:
    """A managed iSCSI target's tpgt_1 as configfs shows it."""

    enabled: bool = False
    luns: Dict[int, Optional[str]] = field(default_factory=dict)  # tpg LUN -> backstore
    acls: Dict[str, Acl] = field(default_factory=dict)
    portals: Set[str] = field(default_factory=set)
    attrib: Dict[str, str] = field(default_factory=dict)
    auth: Dict[str, str] = field(default_factory=dict)
    sessions: List[Session] = field(default_factory=list)
    tpg: bool = True  # False: the target directory without its tpgt_1 (a killed mkdir)
    alias: str = ""  # tpgt_1/param/TargetAlias


@dataclass
class LioState:
    """Everything of ours in configfs."""

    backstores: Dict[str, Backstore] = field(default_factory=dict)
    hbas: Set[str] = field(default_factory=set)  # every pscsi HBA, ours or not
    targets: Dict[str, Target] = field(default_factory=dict)  # iqn -> ours only
    loopbacks: Set[str] = field(default_factory=set)  # our loopback WWNs (leftovers)
    foreign: Set[str] = field(default_factory=set)  # HBAs holding a backstore not ours
    holder: str = ""  # how far the holder LUN's backstore is built (see holder.LEVELS)


def ours_hba(name: str) -> bool:
    """The range rule: a pscsi HBA numbered HBA_BASE or more is one tapeshared made.

    Only such an HBA is ever removed, and only when nothing but our backstores
    was in it: a foreign backstore inside keeps it.
    """
    number = name[len("pscsi_"):] if name.startswith("pscsi_") else ""
    return number.isdigit() and int(number) >= HBA_BASE


def ours_target(target: Target) -> bool:
    """A target not (or no longer) configured is ours by its alias or by a LUN of
    ours; anything else in configfs is never touched."""
    return target.alias == TARGET_ALIAS or any(
        (name or "").startswith(PREFIX) for name in target.luns.values())


_INFO_FIELDS = ("Host ID", "Channel ID", "Target ID", "LUN")


def bound_address(info: str) -> Optional[Hctl]:
    """The address a pscsi backstore's `info` says it is bound to ("SCSI Device Bus
    Location: Channel ID: C Target ID: T LUN: L Host ID: H"), None if not shown."""
    values = []
    for name in _INFO_FIELDS:
        found = re.search(r"\b%s: ([0-9]+)\b" % name, info)
        if found is None:
            return None
        values.append(int(found.group(1)))
    return Hctl(*values)


def backstore_name(lun: LunState, hctl: Hctl) -> str:
    """`tapeshared-<identity>-<hash>-hHcCtTlL`: ours at a glance, one per address."""
    ident = str(lun.match)
    short = re.sub(r"[^A-Za-z0-9._-]", "_", ident.partition(":")[2])[:32]
    digest = hashlib.sha1(ident.encode("utf-8")).hexdigest()[:6]
    return "%s%s-%s-h%dc%dt%dl%d" % (PREFIX, short, digest, hctl.host, hctl.channel,
                                     hctl.target, hctl.lun)


def hctl_of(name: str) -> Optional[Hctl]:
    """The address a backstore of ours is bound to, from its name."""
    found = _NAME_HCTL.search(name)
    return Hctl(*(int(g) for g in found.groups())) if found else None


def portal_dir(address: str, port: int) -> str:
    return ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)


@dataclass(frozen=True)
class LioSettings:
    """The [global] keys the LIO backend uses."""

    lio_root: str = "/sys/kernel/config/target"
    port: int = 3260
    sysfs_devices: str = "/sys/bus/scsi/devices"


def exposed(state: LioState) -> Set[str]:
    """The backstores some initiator can reach now: mapped by an ACL of a target."""
    found = set()
    for target in state.targets.values():
        for acl in target.acls.values():
            for tpg_lun in acl.mapped.values():
                name = target.luns.get(tpg_lun) if tpg_lun is not None else None
                if name:
                    found.add(name)
    return found


def previous(state: LioState) -> Dict[Tuple[str, int], Hctl]:
    """(iqn, mapped LUN) -> the address its backstore is bound to."""
    found = {}
    for iqn, target in state.targets.items():
        for acl in target.acls.values():
            for mapped, tpg_lun in acl.mapped.items():
                name = target.luns.get(tpg_lun) if tpg_lun is not None else None
                hctl = hctl_of(name) if name else None
                if hctl is not None:
                    found[(iqn, mapped)] = hctl
    return found


def live_targets(state: LioState) -> Dict[str, common.LiveTarget]:
    """The common view of our targets: mapped LUN -> the address of its backstore."""
    found = {}
    for iqn, target in state.targets.items():
        luns: Dict[int, common.LiveLun] = {}
        for _acl_iqn, acl in sorted(target.acls.items()):
            for mapped, tpg_lun in sorted(acl.mapped.items()):
                name = target.luns.get(tpg_lun) if tpg_lun is not None else None
                if mapped in luns or not name:
                    continue
                store = state.backstores.get(name)
                # the address pscsi says it is bound to, else the one its name records
                bound = store.bound if store is not None and store.bound else hctl_of(name)
                luns[mapped] = common.LiveLun(
                    bound, store is not None and store.enabled, name,
                    reset_at=store.reset_at if store is not None else None,
                    reset_scope=store.reset_scope if store is not None else "")
        found[iqn] = common.LiveTarget(iqn, target.enabled, luns, tuple(target.sessions))
    return found


def snapshot(state: LioState, down: str = "") -> common.Snapshot:
    return common.Snapshot("lio", live_targets(state), previous(state), state, down)


def _backing_problems(iqn: str, lun: LunState, store: Optional[Backstore]) -> List[str]:
    """The backstore of a present LUN, by what pscsi shows: bound to the device's
    address, given one of the device's nodes (its name records the identity)."""
    if store is None:
        return []
    where = "LUN %d of %s (%s)" % (lun.lun, iqn, lun.match)
    found = []
    if store.bound is not None and store.bound != lun.hctl:
        found.append("%s: backstore %s is bound to %s, not to the device (%s)" % (
            where, store.name, store.bound, lun.hctl))
    nodes = lun.device.nodes.values() if lun.device is not None else ()
    if store.udev_path and nodes and store.udev_path not in nodes:
        found.append("%s: backstore %s names %s, not a node of the device (%s)" % (
            where, store.name, store.udev_path, ", ".join(sorted(nodes))))
    return found


def held(desired: DesiredState) -> Dict[Tuple[str, int], str]:
    """(iqn, LUN) -> backstore kept for a squatted LUN: bound to the device that
    left (pscsi never re-binds), so it answers not-ready, never the newcomer;
    its name keeps the last address for the next pass."""
    found = {}
    for target in desired.targets:
        for lun in target.luns:
            if lun.status == "squatted" and lun.last is not None:
                found[(target.iqn, lun.lun)] = backstore_name(lun, lun.last)
    return found


def problems(snap: common.Snapshot, desired: DesiredState) -> List[str]:
    """How configfs differs from what must be live now: LUNs, and each ACL's mapping."""
    found = common.lun_problems(snap, desired)
    state = snap.detail
    if not snap.running or not isinstance(state, LioState):
        return found
    for target in desired.targets:
        have = state.targets.get(target.iqn)
        if have is None:
            continue
        for lun in target.live_luns:
            assert lun.hctl is not None
            store = backstore_name(lun, lun.hctl)
            found.extend(_backing_problems(target.iqn, lun, state.backstores.get(store)))
            for iqn in target.initiator_iqns:
                acl = have.acls.get(iqn)
                mapped = acl.mapped.get(lun.lun) if acl else None
                if mapped is None or have.luns.get(mapped) != store:
                    found.append("LUN %d of %s is not mapped to %s for %s" % (
                        lun.lun, target.iqn, lun.hctl, iqn))
    return found


