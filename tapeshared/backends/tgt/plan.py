"""tgt plan (pure): parse `tgtadm --op show` output, plan tgtadm argument lists.

Rules (see also tgt.py):
- Ours: a target whose LUN 0 (the controller tgt adds itself, which cannot be
  deleted) has SCSI ID `tapeshared`. We set that mark when we create or adopt a
  target; it is visible in every `--op show`, so ownership is level-triggered.
  Configured IQNs are managed (adopted and marked); targets that are ours but no
  longer configured are deleted; every other target is never touched.
- tid: an existing target keeps its tid (found by IQN); a new one gets the lowest
  tid >= TID_BASE free in tgtd, away from tgt-admin's and hand-made low tids.
- LUN numbers: configured LUN n is tgt LUN n, what the initiator sees. tgt owns
  LUN 0, so a configured LUN 0 is a ConfigError (number the devices from 1).
- A LUN is re-added (delete, new) when its backing path differs from the
  device's sg node now, or when tgtd's open file behind that path is no longer
  the node the path names (`stale`: a reused name after renumbering).
- Every LU creation is preceded by a reset of the device it exports (RESET op,
  run by the adapter, not by tgtadm): after the old LUN is deleted, before
  tgtd opens the node, so the drive's own unit attention (29h) reaches the
  first initiator command and st forgets a position the drive no longer has.
  Nothing else resets: an unchanged LUN, a new ACL, a CHAP change or an
  adopted target never touches a drive that may be mid-backup.
- absent = keep cannot keep a tgt LUN whose device is gone: tgtd holds the
  dead sg node, fails every command (Hardware Error) and busy-loops on the
  node's fd. Such a LUN is deleted at once and added again when the device
  returns (seen on a real kernel: tests/e2e/scenarios/tgt-renumber.sh).
- Accounts are global in tgtd. Passwords cannot be read back, so an account is
  (re)created unless the adapter knows it holds the configured secret (`fresh`).
  Accounts are deleted only when we created them (`owned`) and no configured
  target wants them; an account bound to a foreign target is never changed.
"""

from dataclasses import dataclass, field
from typing import AbstractSet, Dict, List, Mapping, Set, Tuple

from tapeshared.backends import common
from tapeshared.backends.tgt.ops import (  # noqa: F401 (the plan's vocabulary, re-exported)
    RESET,
    Op,
    acl_entries,
    describe,
    is_address,
    needs_secret,
    op_value,
    reset_op,
)
from tapeshared.backends.tgt.show import MARK, Target, TgtState
from tapeshared.core.errors import ConfigError
from tapeshared.core.model import DesiredState, Hctl, TargetState

TID_BASE = 1000


def previous(state: TgtState, resolve: Mapping[str, Hctl],
             remembered: Mapping[Tuple[str, int], Hctl]) -> Dict[Tuple[str, int], Hctl]:
    """(iqn, LUN) -> address: from the live node if it resolves, else remembered."""
    found = {}
    for target in state.targets.values():
        if not target.ours:
            continue
        for number, lun in target.luns.items():
            hctl = None if lun.path in state.stale else resolve.get(lun.path)
            hctl = hctl or remembered.get((target.iqn, number))
            if number and hctl is not None:
                found[(target.iqn, number)] = hctl
    return found


@dataclass(frozen=True)
class TgtSettings:
    """The [global] keys the tgt backend uses, and how LUNs are backed."""

    tgtadm: Tuple[str, ...]
    state_dir: str
    bstype: str = "sg"  # tests use rdwr/disk: the host tier has no sg devices
    device_type: str = "pt"
    proc: str = "/proc"
    sysfs: str = "/sys"


@dataclass(frozen=True)
class TgtDetail:
    """One read of tgt: what tgtd shows, which paths it holds stale, what we remember."""

    state: TgtState
    resolve: Mapping[str, Hctl] = field(default_factory=dict)  # node path -> address now
    remembered: Mapping[Tuple[str, int], Hctl] = field(default_factory=dict)
    accounts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # user -> fp
    # (iqn, LUN) -> when the device it holds now was reset before it was exported
    resets: Mapping[Tuple[str, int], float] = field(default_factory=dict)


def unready(desired: DesiredState, bstype: str) -> Set[str]:
    """Pass-through nodes of present devices that udev has not made yet."""
    if bstype not in ("sg", "bsg"):
        return set()
    found = set()
    for target in desired.targets:
        for lun in target.live_luns:
            device = lun.device
            path = (device.sg or device.bsg) if device else None
            if device is not None and path is not None and path in device.unready:
                found.add(path)
    return found


def live_lun(detail: TgtDetail, iqn: str, number: int, path: str) -> common.LiveLun:
    """One LUN as tgtd holds it; the drive's reset when it still holds that device."""
    stale = path in detail.state.stale
    reset_at = detail.resets.get((iqn, number))
    return common.LiveLun(None if stale else detail.resolve.get(path), not stale, path,
                          reset_at=reset_at, reset_scope="" if reset_at is None else "drive")


def snapshot(detail: TgtDetail, managed: AbstractSet[str], down: str = "") -> common.Snapshot:
    """The common view: our or managed targets, LUNs (not tgt's LUN 0) by address."""
    state = detail.state
    targets = {}
    for target in state.targets.values():
        if not (target.ours or target.iqn in managed):
            continue
        luns = {number: live_lun(detail, target.iqn, number, lun.path)
                for number, lun in target.luns.items() if number}
        targets[target.iqn] = common.LiveTarget(target.iqn, True, luns,
                                                tuple(target.sessions))
    return common.Snapshot("tgt", targets, previous(state, detail.resolve,
                                                    detail.remembered), detail, down)


class _Planner:
    def __init__(self, state: TgtState, desired: DesiredState, fresh: Set[str],
                 owned: Set[str], bstype: str, device_type: str) -> None:
        self.unready = unready(desired, bstype)
        self.state = state
        self.desired = desired
        self.fresh = fresh
        self.owned = owned
        self.bstype = bstype
        self.device_type = device_type
        self.ops: List[Op] = []
        self.notes: List[str] = []
        self.tids = set(state.targets)
        self.recreated: Set[str] = set()
        self.managed = set(t.iqn for t in desired.targets)
        self.wanted_users: Set[str] = set()
        self.closes: List[Op] = []  # address unbinds: before anything else
        self.opens: List[Op] = []  # address binds: after everything of the targets

    def foreign_binds(self, user: str) -> List[str]:
        return sorted(t.iqn for t in self.state.targets.values()
                      if not t.ours and t.iqn not in self.managed
                      and user in t.incoming + t.outgoing)

    def accounts(self) -> None:
        wanted: Dict[str, str] = {}
        for target in self.desired.targets:
            for chap in list(target.incoming) + [c for c in [target.outgoing] if c]:
                wanted.setdefault(chap.user, target.iqn)
        for user in sorted(wanted):
            if user not in self.state.accounts:
                self.ops.append(("--mode", "account", "--op", "new", "--user", user))
                self.recreated.add(user)
            elif user not in self.fresh:
                foreign = self.foreign_binds(user)
                if foreign:
                    self.notes.append("account %s is also bound to %s (not ours): its "
                                      "password is left as tgtd has it" % (
                                          user, ", ".join(foreign)))
                    continue
                self.ops += [("--mode", "account", "--op", "delete", "--user", user),
                             ("--mode", "account", "--op", "new", "--user", user)]
                self.recreated.add(user)
        self.wanted_users = set(wanted)

    def new_tid(self) -> int:
        tid = common.lowest_free(self.tids, TID_BASE)
        self.tids.add(tid)
        return tid

    def target(self, want: TargetState) -> None:
        """One target's ops, ordered so that no prefix opens it wider than the end.

        tgtd (1.0.85, seen in the VM tier) lets a login in when its address
        matches an address entry or its name matches a name entry, and then asks
        CHAP when an incoming account is bound: no ACL entry refuses everyone,
        and every entry, of either kind, opens. So entries no longer wanted are
        unbound first (before any other op of the pass), the wanted ones bound
        last: a new target gets its mark, accounts and LUNs while it refuses
        everyone, and a kill anywhere before its last bind leaves it refusing
        what the end refuses. An incoming account re-created (a new password)
        is unbound meanwhile, which would drop CHAP while entries let logins
        in: then every entry is unbound first and bound again at the end (open
        sessions stay).
        """
        have = self.state.by_iqn(want.iqn)
        if have is None:
            have = Target(self.new_tid(), want.iqn)
            self.ops.append(("--mode", "target", "--op", "new", "--tid", str(have.tid),
                             "--targetname", want.iqn))
        tid = ("--tid", str(have.tid))
        entries = acl_entries(want)
        widens = any(u in self.recreated for u in have.incoming)
        keep = [] if widens else [e for e in have.acl if e in entries]
        for entry in have.acl:
            if entry not in keep:
                self.closes.append(acl_op("unbind", tid, entry))
        if not have.ours:
            self.ops.append(("--mode", "logicalunit", "--op", "update") + tid + (
                "--lun", "0", "--params", "scsi_id=" + MARK))
        unbinds: List[Op] = []
        for flag, now, users in (((), have.incoming, [c.user for c in want.incoming]),
                                 (("--outgoing",), have.outgoing,
                                  [want.outgoing.user] if want.outgoing else [])):
            now = [u for u in now if u not in self.recreated]  # deleting unbinds
            for user in now:
                if user not in users:
                    unbinds.append(("--mode", "account", "--op", "unbind") + tid + (
                        "--user", user) + flag)
            for user in users:
                if user not in now:
                    self.ops.append(("--mode", "account", "--op", "bind") + tid + (
                        "--user", user) + flag)
        self.ops += unbinds  # after the binds: CHAP never off on the way
        self.luns(want, have, tid)
        self.opens += [acl_op("bind", tid, e) for e in entries if e not in keep]

    def luns(self, want: TargetState, have: Target, tid: Op) -> None:
        configured = set()
        for lun in want.luns:
            if lun.lun == 0:
                raise ConfigError("tgt reserves LUN 0 for its controller: number the "
                                  "devices from 1 (lun = 1, or lun1 = ...)",
                                  section="export " + want.name, key="lun")
            configured.add(lun.lun)
            now = have.luns.get(lun.lun)
            path = (lun.device.sg or lun.device.bsg) if lun.device is not None else None
            if lun.status == "kept" and now is not None and now.path in self.state.stale:
                # the device is gone and tgtd holds its dead sg node: every command
                # gets Hardware Error, and tgtd (1.0.85) spins on the node's fd
                # (graceful_read ENODEV in a loop) until the LUN is deleted
                self.ops.append(("--mode", "logicalunit", "--op", "delete") + tid + (
                    "--lun", str(lun.lun)))
                self.notes.append("LUN %d of %s: %s is gone; its LUN is deleted until it "
                                  "returns" % (lun.lun, want.iqn, lun.match))
                continue
            if lun.status == "kept" or (lun.status == "present" and path is None):
                continue
            if lun.status == "present" and path in self.unready:
                # udev has not made the node yet: tgtd fails the open (and 1.0.85
                # was seen to crash right after); the node's uevent brings a pass
                if now is not None and (now.path != path or now.path in self.state.stale):
                    self.ops.append(("--mode", "logicalunit", "--op", "delete") + tid + (
                        "--lun", str(lun.lun)))
                self.notes.append("LUN %d of %s: %s has no device node yet" % (
                    lun.lun, want.iqn, path))
                continue
            if now is not None and lun.status == "present" and now.path == path and \
                    now.bstype == self.bstype and path not in self.state.stale:
                continue
            if now is not None:
                self.ops.append(("--mode", "logicalunit", "--op", "delete") + tid + (
                    "--lun", str(lun.lun)))
            if lun.status == "present" and path and lun.hctl is not None:
                self.ops.append(reset_op(want.iqn, lun.lun, lun.hctl, path))
                self.ops.append(("--mode", "logicalunit", "--op", "new") + tid + (
                    "--lun", str(lun.lun), "--bstype", self.bstype, "--device-type",
                    self.device_type, "--backing-store", path))
        for number in sorted(set(have.luns) - configured - {0}):
            self.ops.append(("--mode", "logicalunit", "--op", "delete") + tid + (
                "--lun", str(number)))

    def run(self) -> List[Op]:
        self.accounts()
        for target in self.desired.targets:
            self.ops += self.opens
            self.opens = []
            self.target(target)
        self.ops = self.closes + self.ops + self.opens
        for tid, have in sorted(self.state.targets.items()):
            if have.ours and have.iqn not in self.managed:
                self.ops.append(("--mode", "target", "--op", "delete", "--force",
                                 "--tid", str(tid)))
        for user in sorted(self.owned & self.state.accounts - self.wanted_users):
            if not self.foreign_binds(user):
                self.ops.append(("--mode", "account", "--op", "delete", "--user", user))
        return self.ops


def acl_op(verb: str, tid: Op, entry: str) -> Op:
    """Bind or unbind one ACL entry (an address rule or an initiator name)."""
    return ("--mode", "target", "--op", verb) + tid + (
        "--initiator-address" if is_address(entry) else "--initiator-name", entry)


def plan_ops(state: TgtState, desired: DesiredState, fresh: AbstractSet[str] = frozenset(),
             owned: AbstractSet[str] = frozenset(), bstype: str = "sg", device_type: str = "pt"
             ) -> Tuple[List[Op], List[str]]:
    """The tgtadm operations, in a safe order, that make tgtd match desired; notes.

    A device whose pass-through node udev has not made yet is not added now
    (its node's uevent brings another pass)."""
    planner = _Planner(state, desired, set(fresh), set(owned), bstype, device_type)
    return planner.run(), planner.notes
