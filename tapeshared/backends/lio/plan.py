"""LIO (configfs) plan, pure: observed objects + desired state -> ordered operations.

Renumbering follows the measured fast path: the new backstore and a second
target LUN come up first, each ACL's mapped LUN is swapped to it, and only then
are the old LUN and backstore removed; initiators need no rescan. Objects are
ours when named `tapeshared-...` (backstores), when they are an HBA of our range
(`state.ours_hba`), or a managed target or one carrying our alias or LUNs
(`state.ours_target`). Every pass removes what is ours and no longer wanted,
also what a kill left half-built, so any prefix of a plan converges.

A tape's position is state the initiator keeps. A backstore bound to a device
instance no initiator has reached yet is reset from the host (`reset`) right
before the first ACL is mapped to it: the drive then answers the first
initiator command with UNIT ATTENTION 29h and st forgets its position. Nothing
an initiator can already reach is ever reset (a new ACL, a CHAP change, an
upgrade from a version that did not reset), so a backup in progress is never
disturbed by a configuration change.
"""

import copy
from typing import Dict, List, Optional, Tuple

from tapeshared.backends import common
from tapeshared.backends.lio import holder
from tapeshared.backends.lio.state import (
    HBA_BASE,
    TARGET_ALIAS,
    Acl,
    Backstore,
    LioState,
    Op,
    Target,
    backstore_name,
    exposed,
    held,
    ours_hba,
    portal_dir,
)
from tapeshared.core.model import Chap, DesiredState, TargetState


def _auth_values(chap: Tuple[Chap, ...], mutual: Optional[Chap]) -> Dict[str, str]:
    values: Dict[str, str] = {}
    if chap:
        values.update(userid=chap[0].user, password=chap[0].secret)
    if mutual is not None:
        values.update(userid_mutual=mutual.user, password_mutual=mutual.secret)
    return values


class _Planner:
    def __init__(self, state: LioState, desired: DesiredState, port: int) -> None:
        self.state = copy.deepcopy(state)  # planning must not change what it was given
        self.desired = desired
        self.port = port
        self.ops: List[Op] = []
        self.hbas = set(state.hbas)
        self.fresh = set()  # type: set  # backstores this plan binds
        self.resets: List[str] = []  # backstores this plan resets, in order
        self.reached = set()  # type: set  # backstores an initiator can reach

    def new_hba(self) -> str:
        used = set(int(h[len("pscsi_"):]) for h in self.hbas
                   if h[len("pscsi_"):].isdigit())
        name = "pscsi_%d" % common.lowest_free(used, HBA_BASE)
        self.hbas.add(name)
        return name

    def backstores(self) -> Dict[Tuple[str, int], str]:
        """Create missing backstores; (iqn, lun) -> backstore name."""
        wanted = dict((key, name) for key, name in held(self.desired).items()
                      if name in self.state.backstores)
        for target in self.desired.targets:
            for lun in target.exported_luns:
                assert lun.hctl is not None
                name = backstore_name(lun, lun.hctl)
                if name in self.state.backstores:
                    wanted[(target.iqn, lun.lun)] = name
                elif lun.device is not None:  # an absent device cannot be bound
                    hba = self.new_hba()
                    store = Backstore(hba, name)
                    hctl = lun.hctl
                    self.ops += [("mkdir", "core/" + hba), ("mkdir", store.path),
                                 ("write", store.path + "/control",
                                  "scsi_host_id=%d,scsi_channel_id=%d,scsi_target_id=%d,"
                                  "scsi_lun_id=%d" % (hctl.host, hctl.channel, hctl.target,
                                                      hctl.lun)),
                                 ("write", store.path + "/udev_path", lun.device.sg or
                                  lun.device.nst or "/dev/bsg/%s" % hctl),
                                 ("write", store.path + "/enable", "1")]
                    self.state.backstores[name] = store
                    self.fresh.add(name)
                    wanted[(target.iqn, lun.lun)] = name
        return wanted

    def target(self, target: TargetState, wanted: Dict[Tuple[str, int], str]) -> None:
        have = self.state.targets.get(target.iqn)
        tpg = "iscsi/%s/tpgt_1" % target.iqn
        if have is None:
            self.ops += [("mkdir", "iscsi/" + target.iqn), ("mkdir", tpg)]
            have = Target(tpg=False)
        elif not have.tpg:  # a kill between the two mkdirs
            self.ops.append(("mkdir", tpg))
        if have.alias != TARGET_ALIAS:  # first, so a kill later leaves it recognisable
            self.ops.append(("write", tpg + "/param/TargetAlias", TARGET_ALIAS))
        chap = bool(target.incoming)
        for key, value in (("generate_node_acls", "0"), ("demo_mode_write_protect", "1"),
                           ("cache_dynamic_acls", "0"), ("authentication", "1" if chap
                                                         else "0")):
            if have.attrib.get(key) != value:
                self.ops.append(("write", "%s/attrib/%s" % (tpg, key), value))
        portals = set(portal_dir(a, self.port) for a in self.desired.portals) or {
            portal_dir("0.0.0.0", self.port)}
        adds = [("mkdir", "%s/np/%s" % (tpg, p)) for p in sorted(portals - have.portals)]
        drops = [("rmdir", "%s/np/%s" % (tpg, p)) for p in sorted(have.portals - portals)]
        # the wildcard and an address on the same port cannot both listen (EADDRINUSE,
        # configfs says EINVAL): a portal address that comes up late replaces 0.0.0.0
        wild = {portal_dir("0.0.0.0", self.port), portal_dir("::", self.port)}
        self.ops.extend(drops + adds if wild & (portals | have.portals) else adds + drops)
        # target LUNs: keep the one already on the right backstore, else add one
        by_store = {name: number for number, name in have.luns.items() if name}
        used = set(have.luns)
        tpg_lun: Dict[int, int] = {}
        stores: Dict[int, str] = {number: name for number, name in have.luns.items()
                                  if name}
        for lun in target.luns:
            name = wanted.get((target.iqn, lun.lun))
            if name is None:
                continue
            if name in by_store:
                tpg_lun[lun.lun] = by_store[name]
                continue
            number = common.lowest_free(used, 0)
            used.add(number)
            tpg_lun[lun.lun] = number
            stores[number] = name
            store = self.state.backstores[name]
            self.ops += [("mkdir", "%s/lun/lun_%d" % (tpg, number)),
                         ("symlink", store.path, "%s/lun/lun_%d/%s" % (tpg, number,
                                                                     store.name))]
        before = len(self.resets)
        self._acls(target, have, tpg, tpg_lun, stores)
        if len(target.initiator_iqns) > 1:
            # the drive's unit attention reaches one nexus: LIO tells them all
            self.ops += [("lunreset", path) for path in self.resets[before:]]
        if not have.enabled:
            self.ops.append(("write", tpg + "/enable", "1"))
        for number in sorted(set(have.luns) - set(tpg_lun.values())):
            self._drop_tpg_lun(tpg, number, have.luns[number])

    def _reset_before_reach(self, name: Optional[str], several: bool) -> None:
        """Reset a device no initiator has reached yet, once, before it is mapped;
        for several initiators also bring up the nexus of the LUN reset to come."""
        store = self.state.backstores.get(name) if name else None
        if store is None or name in self.reached:
            return
        if name in self.fresh or store.reset_at is None:
            # the loopback device's probe first: it must not take the drive's 29h
            if several:
                self.ops.append(("loopup", store.path))
            self.ops.append(("reset", store.path))
            self.resets.append(store.path)
        self.reached.add(name)

    def _acls(self, target: TargetState, have: Target, tpg: str,
              tpg_lun: Dict[int, int], stores: Dict[int, str]) -> None:
        auth = _auth_values(target.incoming, target.outgoing)
        for iqn in target.initiator_iqns:
            acl = have.acls.get(iqn)
            base = "%s/acls/%s" % (tpg, iqn)
            if acl is None:
                self.ops.append(("mkdir", base))
                acl = Acl()
            for mapped in sorted(tpg_lun):
                link = "%s/lun_%d/lun" % (base, mapped)
                current = acl.mapped.get(mapped, -1)
                if current == tpg_lun[mapped]:
                    continue
                # the reset before the unlink: the old device answers until the swap
                self._reset_before_reach(stores.get(tpg_lun[mapped]),
                                         len(target.initiator_iqns) > 1)
                if mapped in acl.mapped:
                    if current is not None:
                        self.ops.append(("unlink", link))
                else:
                    self.ops.append(("mkdir", "%s/lun_%d" % (base, mapped)))
                self.ops.append(("symlink", "%s/lun/lun_%d" % (tpg, tpg_lun[mapped]), link))
            for mapped in sorted(set(acl.mapped) - set(tpg_lun)):
                self._drop_mapped(base, mapped, acl.mapped[mapped])
            for key in ("userid", "password", "userid_mutual", "password_mutual"):
                if acl.auth.get(key, "") != auth.get(key, ""):
                    self.ops.append(("write", "%s/auth/%s" % (base, key), auth.get(key, "")))
        for iqn in sorted(set(have.acls) - set(target.initiator_iqns)):
            base = "%s/acls/%s" % (tpg, iqn)
            for mapped, number in sorted(have.acls[iqn].mapped.items()):
                self._drop_mapped(base, mapped, number)
            self.ops.append(("rmdir", base))

    def _drop_mapped(self, base: str, mapped: int, number: Optional[int]) -> None:
        if number is not None:
            self.ops.append(("unlink", "%s/lun_%d/lun" % (base, mapped)))
        self.ops.append(("rmdir", "%s/lun_%d" % (base, mapped)))

    def _drop_tpg_lun(self, tpg: str, number: int, store: Optional[str]) -> None:
        if store:
            self.ops.append(("unlink", "%s/lun/lun_%d/%s" % (tpg, number, store)))
        self.ops.append(("rmdir", "%s/lun/lun_%d" % (tpg, number)))

    def drop_target(self, iqn: str, have: Target) -> None:
        tpg = "iscsi/%s/tpgt_1" % iqn
        if not have.tpg:
            self.ops.append(("rmdir", "iscsi/" + iqn))
            return
        if have.enabled:
            self.ops.append(("write", tpg + "/enable", "0"))
        for name, acl in sorted(have.acls.items()):
            for mapped, number in sorted(acl.mapped.items()):
                self._drop_mapped("%s/acls/%s" % (tpg, name), mapped, number)
            self.ops.append(("rmdir", "%s/acls/%s" % (tpg, name)))
        for number, store in sorted(have.luns.items()):
            self._drop_tpg_lun(tpg, number, store)
        for portal in sorted(have.portals):
            self.ops.append(("rmdir", "%s/np/%s" % (tpg, portal)))
        self.ops += [("rmdir", tpg), ("rmdir", "iscsi/" + iqn)]

    def drop_unusable(self) -> None:
        """Remove backstores that cannot serve first, with their LUNs.

        pscsi finds a device by address on the host's list, where a deleted
        device pinned by our old backstore still comes first: the new backstore
        cannot bind until the old one is gone. Each mapping of such a LUN is
        swapped to the not-ready holder meanwhile (see holder), never left
        to LIO's LUN 0 placeholder.
        """
        dead = set(n for n, store in self.state.backstores.items() if not store.enabled)
        dead -= set(held(self.desired).values())
        for iqn, have in sorted(self.state.targets.items()):
            tpg = "iscsi/%s/tpgt_1" % iqn
            for number, name in sorted(have.luns.items()):
                if name not in dead:
                    continue
                for acl_iqn, acl in sorted(have.acls.items()):
                    for mapped, tpg_lun in sorted(acl.mapped.items()):
                        if tpg_lun == number:  # unlink and link back to back
                            link = "%s/acls/%s/lun_%d/lun" % (tpg, acl_iqn, mapped)
                            stand_in = self._holder_lun(tpg, have)
                            acl.mapped[mapped] = stand_in
                            self.ops += [("unlink", link), ("symlink", "%s/lun/lun_%d" % (
                                tpg, stand_in), link)]
                self._drop_tpg_lun(tpg, number, name)
                del have.luns[number]
        for name in sorted(dead):
            self.drop_backstore(name)

    def _holder_lun(self, tpg: str, have: Target) -> int:
        """The target's LUN on the holder, made (with the holder) if missing."""
        found = [n for n, name in sorted(have.luns.items()) if name == holder.NAME]
        self.ops += holder.up(self.state.holder)  # unavailable before it is mapped
        self.state.holder = "ready"
        if found:
            return found[0]
        number = common.lowest_free(set(have.luns), 0)
        have.luns[number] = holder.NAME
        self.ops += [("mkdir", "%s/lun/lun_%d" % (tpg, number)), ("symlink", holder.PATH,
                     "%s/lun/lun_%d/%s" % (tpg, number, holder.NAME))]
        return number

    def drop_backstore(self, name: str) -> None:
        """Remove a backstore of ours, then its HBA if it is ours and now empty."""
        store = self.state.backstores.pop(name)
        self.ops.append(("rmdir", store.path))
        others = any(s.hba == store.hba for s in self.state.backstores.values())
        if ours_hba(store.hba) and store.hba not in self.state.foreign and not others:
            self.ops.append(("rmdir", "core/" + store.hba))
            self.hbas.discard(store.hba)

    def drop_empty_hbas(self) -> None:
        """An HBA of our range with nothing in it: left by a kill between a
        backstore's rmdir and its HBA's, or between the HBA's mkdir and the
        backstore's. Nothing reuses it, so it goes."""
        used = set(s.hba for s in self.state.backstores.values()) | self.state.foreign
        for hba in sorted(h for h in self.state.hbas if ours_hba(h) and h not in used):
            self.ops.append(("rmdir", "core/" + hba))
            self.hbas.discard(hba)

    def run(self) -> List[Op]:
        # a loopback target left by a killed LUN reset holds its backstore
        self.ops += [("unloop", wwn) for wwn in sorted(self.state.loopbacks)]
        self.drop_empty_hbas()
        self.drop_unusable()
        self.reached = exposed(self.state)
        wanted = self.backstores()
        for target in self.desired.targets:
            self.target(target, wanted)
        managed = set(t.iqn for t in self.desired.targets)
        for iqn in sorted(set(self.state.targets) - managed):
            self.drop_target(iqn, self.state.targets[iqn])
        keep = set(wanted.values())
        for name in sorted(set(self.state.backstores) - keep):
            self.drop_backstore(name)
        # every target LUN on the holder went above: the holder itself goes last
        self.ops += holder.down(self.state.holder, holder.HBA in self.state.foreign)
        return self.ops


def plan_ops(state: LioState, desired: DesiredState, port: int) -> List[Op]:
    """The configfs operations, in a safe order, that make state match desired."""
    return _Planner(state, desired, port).run()


def describe(op: Op) -> str:
    """An operation as a line a person reads; secrets masked."""
    if op[0] == "write" and op[1].rsplit("/", 1)[-1].startswith("password"):
        return "write %s = ********" % op[1]
    if op[0] == "write":
        return "write %s = %s" % (op[1], op[2])
    if op[0] == "symlink":
        return "link %s -> %s" % (op[2], op[1])
    if op[0] == "reset":
        return "reset the device of %s (logical-unit reset, no escalation)" % op[1]
    if op[0] == "lunreset":
        return "LUN reset of %s inside LIO, so that every initiator is told" % op[1]
    if op[0] == "loopup":
        return "bring up a loopback nexus for %s (for the LUN reset)" % op[1]
    if op[0] == "unloop":
        return "remove the leftover loopback target %s" % op[1]
    return "%s %s" % op[:2]
