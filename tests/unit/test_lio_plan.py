"""LIO plan (pure): renumbering order, idempotence, ownership, absent policy."""

import dataclasses

from support import builders
from support.builders import INIT, IQN

from tapeshared.backends.lio import holder
from tapeshared.backends.lio import plan as lioplan
from tapeshared.backends.lio import state as liostate
from tapeshared.backends.lio.state import LioSettings
from tapeshared.core.desired import desired_state
from tapeshared.core.model import Config, GlobalConfig, Hctl

TPG = "iscsi/%s/tpgt_1" % IQN


def config(absent="keep"):
    return builders.config(builders.export(absent=absent), backend="lio")


def _tpg_op(target, op, rest):
    kind = op[0]
    if not rest:
        target.tpg = kind == "mkdir"
    elif rest == ["param", "TargetAlias"]:
        target.alias = op[2]
    elif rest == ["enable"]:
        target.enabled = op[2] == "1"
    elif rest[0] == "attrib":
        target.attrib[rest[1]] = op[2]
    elif rest[0] == "np":
        (target.portals.add if kind == "mkdir" else target.portals.discard)(rest[1])
    elif rest[0] == "lun":
        number = int(rest[1][4:])
        if kind == "rmdir":
            del target.luns[number]
        else:
            target.luns[number] = op[1].split("/")[-1] if kind == "symlink" else None
    elif rest[0] == "acls" and len(rest) == 2:
        if kind == "mkdir":
            target.acls[rest[1]] = liostate.Acl()
        else:
            del target.acls[rest[1]]
    elif rest[0] == "acls" and rest[2] == "auth":
        target.acls[rest[1]].auth[rest[3]] = op[2]
    elif rest[0] == "acls":
        mapped = target.acls[rest[1]].mapped
        number = int(rest[2][4:])
        if kind == "rmdir":
            del mapped[number]
        else:
            mapped[number] = int(op[1].split("_")[-1]) if kind == "symlink" else None


def _holder_op(state, op, parts):
    """The holder's level as the adapter reads it back (see holder.LEVELS)."""
    if op[0] == "mkdir":
        state.holder = "hba" if len(parts) == 2 else "store"
    elif op[0] == "rmdir":
        assert len(parts) == 2 or not any(
            name == holder.NAME for t in state.targets.values() for name in t.luns.values()
        ), "configfs refuses to remove a backstore a target LUN links"
        state.holder = "" if len(parts) == 2 else "hba"
    elif parts[3:] == ["enable"]:
        state.holder = "enabled"
    elif op[1] == holder.ALUA_STATE and state.holder == "enabled":
        state.holder = "ready" if op[2] == holder.UNAVAILABLE else state.holder


def simulate(state, ops):
    """Apply operations to a LioState the way configfs would, for the planner's sake."""
    for op in ops:
        if op[0] in ("loopup", "lunreset", "unloop"):
            continue  # nothing in the target's object set changes
        parts = (op[2] if op[0] == "symlink" else op[1]).split("/")
        if op[0] == "reset":  # the adapter records it in the backstore's alias
            store = state.backstores[parts[2]]
            state.backstores[parts[2]] = dataclasses.replace(store, reset_at=1.0)
        elif parts[0] == "core" and parts[1] == holder.HBA:
            _holder_op(state, op, parts)
        elif parts[0] == "core":
            if len(parts) == 3 and op[0] == "mkdir":  # not bound until enabled
                state.backstores[parts[2]] = liostate.Backstore(parts[1], parts[2], False)
            elif len(parts) == 3 and op[0] == "rmdir":
                del state.backstores[parts[2]]
            elif len(parts) == 4 and parts[3] == "enable":
                state.backstores[parts[2]] = dataclasses.replace(
                    state.backstores[parts[2]], enabled=op[2] == "1")
            elif len(parts) == 2:
                (state.hbas.add if op[0] == "mkdir" else state.hbas.discard)(parts[1])
        elif len(parts) == 2:
            if op[0] == "mkdir":
                state.targets[parts[1]] = liostate.Target(tpg=False)
            else:
                del state.targets[parts[1]]
        elif len(parts) >= 3:
            _tpg_op(state.targets[parts[1]], op, parts[3:])
    return state


def plan(state, devices, absent="keep"):
    desired = desired_state(config(absent), devices, liostate.previous(state))
    return lioplan.plan_ops(state, desired, 3260)


def tape(hctl):
    return builders.tape(hctl, sg="/dev/sg1")


def test_first_export_then_nothing_to_do():
    state = liostate.LioState(hbas={"pscsi_0"})
    ops = plan(state, [tape("1:0:6:0")])
    assert ops[0] == ("mkdir", "core/pscsi_1000")
    store = ops[1][1]
    assert store.startswith("core/pscsi_1000/tapeshared-HU1-") and store.endswith("-h1c0t6l0")
    assert ops[2] == ("write", store + "/control",
                      "scsi_host_id=1,scsi_channel_id=0,scsi_target_id=6,scsi_lun_id=0")
    assert ops[3:5] == [("write", store + "/udev_path", "/dev/sg1"),
                        ("write", store + "/enable", "1")]
    assert ("write", TPG + "/attrib/generate_node_acls", "0") in ops
    assert ("mkdir", TPG + "/np/0.0.0.0:3260") in ops
    assert ops[-1] == ("write", TPG + "/enable", "1")
    simulate(state, ops)
    assert plan(state, [tape("1:0:6:0")]) == []


def test_renumbering_swaps_acls_before_removing_the_old_lun():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    ops = plan(state, [tape("7:0:6:0")])
    keys = [(op[0], op[2] if op[0] == "symlink" else op[1]) for op in ops]
    acl_link = "%s/acls/%s/lun_0/lun" % (TPG, INIT)
    new_store = [i for i, k in enumerate(keys) if k[1].endswith("h7c0t6l0/enable")][0]
    new_lun = keys.index(("mkdir", TPG + "/lun/lun_1"))
    unlink = keys.index(("unlink", acl_link))
    swap = keys.index(("symlink", acl_link))
    old_lun = keys.index(("rmdir", TPG + "/lun/lun_0"))
    old_store = [i for i, k in enumerate(keys) if k[0] == "rmdir" and
                 k[1].endswith("h1c0t6l0")][0]
    assert new_store < new_lun < unlink < swap < old_lun < old_store
    assert ops[swap][1] == TPG + "/lun/lun_1"
    simulate(state, ops)
    assert plan(state, [tape("7:0:6:0")]) == []
    assert liostate.previous(state) == {(IQN, 0): Hctl(7, 0, 6, 0)}
    back = plan(state, [tape("1:0:6:0")])
    assert ("mkdir", TPG + "/lun/lun_0") in back  # alternates lun_0 / lun_1


def test_absent_keep_leaves_the_stale_lun_and_remove_drops_it():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    assert plan(state, []) == []
    ops = plan(state, [], absent="remove")
    assert ("rmdir", TPG + "/lun/lun_0") in ops
    assert ("rmdir", "iscsi/" + IQN) not in ops


def test_foreign_hbas_are_skipped_and_nothing_is_removed():
    # pscsi_1000 is in our range but holds a backstore not ours: it stays
    state = liostate.LioState(hbas={"pscsi_0", "pscsi_1000"}, foreign={"pscsi_1000"})
    ops = plan(state, [tape("1:0:6:0")])
    assert ops[0] == ("mkdir", "core/pscsi_1001")
    assert not any(op[0] in ("rmdir", "unlink") for op in ops)


def test_observe_counts_only_our_objects(tmp_path):
    """The adapter's reading of a configfs-shaped tree (dirs and symlinks)."""
    import os

    from tapeshared.backends.lio.backend import LioBackend
    root = tmp_path
    for rel in ("core/pscsi_0/tape_by_hand", "core/pscsi_1000/tapeshared-HU1-abc-h1c0t6l0",
                "iscsi/iqn.2003-01.org.example:other/tpgt_1/lun/lun_0",
                "iscsi/iqn.2007-04.com.example:old/tpgt_1/lun/lun_0"):
        os.makedirs(str(root / rel))
    os.symlink(str(root / "core/pscsi_0/tape_by_hand"),
               str(root / "iscsi/iqn.2003-01.org.example:other/tpgt_1/lun/lun_0/x"))
    os.symlink(str(root / "core/pscsi_1000/tapeshared-HU1-abc-h1c0t6l0"),
               str(root / "iscsi/iqn.2007-04.com.example:old/tpgt_1/lun/lun_0/y"))
    state = LioBackend(LioSettings(lio_root=str(root))).observe().detail
    assert list(state.backstores) == ["tapeshared-HU1-abc-h1c0t6l0"]
    assert state.hbas == {"pscsi_0", "pscsi_1000"}
    assert list(state.targets) == ["iqn.2007-04.com.example:old"]
    assert state.targets["iqn.2007-04.com.example:old"].luns == {
        0: "tapeshared-HU1-abc-h1c0t6l0"}


def test_deconfigured_target_is_torn_down_in_order():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    ops = lioplan.plan_ops(state, desired_state(Config(GlobalConfig(), ()), []), 3260)
    assert ops[0] == ("write", TPG + "/enable", "0")
    assert ops.index(("rmdir", "iscsi/" + IQN)) < len(ops) - 2
    assert ops[-1] == ("rmdir", "core/pscsi_1000")
    simulate(state, ops)
    assert state.targets == {} and state.backstores == {}


def test_passwords_are_masked_in_descriptions():
    assert lioplan.describe(("write", TPG + "/acls/i/auth/password", "s3cret")
                            ) == "write %s/acls/i/auth/password = ********" % TPG


def test_sessions_and_problems_from_a_configfs_shaped_tree(tmp_path):
    import os

    from tapeshared.backends.lio.backend import LioBackend
    acl = tmp_path / "iscsi" / IQN / "tpgt_1" / "acls" / INIT
    os.makedirs(str(acl / "lun_0"))
    os.makedirs(str(tmp_path / "iscsi" / IQN / "tpgt_1" / "lun" / "lun_1"))
    (tmp_path / "iscsi" / IQN / "tpgt_1" / "enable").write_text("1\n")
    (acl / "info").write_text(
        "InitiatorName: %s\nLIO Session ID: 1   ISID: 0x00023d000001\n"
        "CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN\n"
        "   Address 192.0.2.5 TCP  StatSN: 0x1\n" % INIT)
    backend = LioBackend(LioSettings(lio_root=str(tmp_path)))
    sessions = backend.observe([IQN]).targets[IQN].sessions
    assert [(s.initiator, s.addresses) for s in sessions] == [(INIT, ("192.0.2.5",))]
    desired = desired_state(config(), [tape("1:0:6:0")])
    wrong = backend.problems(backend.observe([IQN]), desired)
    assert wrong == ["LUN 0 of %s (serial:HU1) is not live" % IQN,
                     "LUN 0 of %s is not mapped to 1:0:6:0 for %s" % (IQN, INIT)]
    name = liostate.backstore_name(desired.targets[0].luns[0], Hctl(1, 0, 6, 0))
    os.makedirs(str(tmp_path / "core" / "pscsi_1000" / name))
    (tmp_path / "core" / "pscsi_1000" / name / "enable").write_text("1\n")
    os.symlink(str(tmp_path / "core" / "pscsi_1000" / name),
               str(tmp_path / "iscsi" / IQN / "tpgt_1" / "lun" / "lun_1" / name))
    os.symlink(str(tmp_path / "iscsi" / IQN / "tpgt_1" / "lun" / "lun_1"),
               str(acl / "lun_0" / "lun"))
    assert backend.problems(backend.observe([IQN]), desired) == []


def _stale(state):
    """Mark every backstore as bound to a device object that is gone."""
    for name, store in list(state.backstores.items()):
        state.backstores[name] = liostate.Backstore(store.hba, store.name, enabled=False)
    return state


def test_device_back_at_the_same_address_replaces_the_dead_backstore_first():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    (old,) = state.backstores
    ops = plan(_stale(state), [tape("1:0:6:0")])
    keys = [(op[0], op[2] if op[0] == "symlink" else op[1]) for op in ops]
    acl_link = "%s/acls/%s/lun_0/lun" % (TPG, INIT)
    unlinks = [i for i, k in enumerate(keys) if k == ("unlink", acl_link)]
    links = [i for i, k in enumerate(keys) if k == ("symlink", acl_link)]
    # swapped to the holder and back, each swap two adjacent syscalls
    assert len(unlinks) == len(links) == 2
    assert [j - i for i, j in zip(unlinks, links)] == [1, 1]
    assert ops[links[0]][1] == TPG + "/lun/lun_1" and ops[links[1]][1] == TPG + "/lun/lun_0"
    # the holder is unavailable before any mapping reaches it
    assert keys.index(("write", holder.ALUA_STATE)) \
        < keys.index(("symlink", TPG + "/lun/lun_1/" + holder.NAME)) < links[0]
    # the dead backstore pins the deleted device, which pscsi would find first
    assert links[0] < keys.index(("rmdir", TPG + "/lun/lun_0")) \
        < keys.index(("rmdir", "core/pscsi_1000/" + old)) \
        < keys.index(("mkdir", "core/pscsi_1000/" + old)) \
        < keys.index(("write", "core/pscsi_1000/%s/enable" % old)) \
        < keys.index(("symlink", TPG + "/lun/lun_0/" + old)) < unlinks[1]
    # and the holder goes once nothing links it
    assert links[1] < keys.index(("rmdir", TPG + "/lun/lun_1")) \
        < keys.index(("rmdir", holder.PATH)) < keys.index(("rmdir", "core/" + holder.HBA))
    simulate(state, ops)
    assert list(state.backstores) == [old]
    assert state.targets[IQN].acls[INIT].mapped == {0: 0}
    assert state.targets[IQN].luns == {0: old} and state.holder == ""
    assert plan(state, [tape("1:0:6:0")]) == []


def test_adapter_marks_a_backstore_stale_when_its_address_holds_a_new_device(tmp_path):
    import os

    from tapeshared.backends.lio.backend import LioBackend
    store = tmp_path / "core" / "pscsi_1000" / "tapeshared-HU1-abc-h1c0t6l0"
    os.makedirs(str(store))
    sysfs = tmp_path / "sys"
    os.makedirs(str(sysfs / "1:0:6:0"))
    backend = LioBackend(LioSettings(lio_root=str(tmp_path), sysfs_devices=str(sysfs)))
    backend._do(("write", "core/pscsi_1000/tapeshared-HU1-abc-h1c0t6l0/enable", "1"))
    assert (store / "enable").read_text() == "1"
    assert (store / "alias").read_text().startswith("tapeshared sysfs-ino=")
    assert backend.observe().detail.backstores["tapeshared-HU1-abc-h1c0t6l0"].enabled
    os.rmdir(str(sysfs / "1:0:6:0"))  # gone: kept as it is (absent = keep)
    assert backend.observe().detail.backstores["tapeshared-HU1-abc-h1c0t6l0"].enabled
    os.makedirs(str(sysfs / "spacer"))  # a new inode for the returning device
    os.makedirs(str(sysfs / "1:0:6:0"))
    assert not backend.observe().detail.backstores["tapeshared-HU1-abc-h1c0t6l0"].enabled


def test_planning_is_pure_the_same_state_twice_gives_the_same_plan():
    import copy
    for state in (liostate.LioState(hbas={"pscsi_0"}),
                  simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))):
        before = copy.deepcopy(state)
        first = plan(state, [tape("7:0:6:0")])
        assert state == before, "planning changed the observed state"
        assert plan(state, [tape("7:0:6:0")]) == first and first


def disk(hctl, serial="DISK1"):
    return builders.tape(hctl, serial=serial, kind=0, sg="/dev/sg2")


def exported_state(hctl="1:0:6:0"):
    return simulate(liostate.LioState(), plan(liostate.LioState(), [tape(hctl)]))


def test_a_squatted_lun_keeps_its_dead_backstore_not_ready_never_binds_the_newcomer():
    state = exported_state()
    name = list(state.backstores)[0]
    # a disk took the address: the adapter sees the backstore's device gone
    state.backstores[name] = liostate.Backstore("pscsi_1000", name, enabled=False)
    desired = desired_state(config(), [disk("1:0:6:0")], liostate.previous(state))
    assert desired.targets[0].luns[0].status == "squatted"
    ops = lioplan.plan_ops(state, desired, 3260)
    assert ops == []  # held as it is: bound to the tape that left, so not ready
    assert not any("/control" in op[1] for op in ops)
    # the next pass still sees the last address, so it checks it again
    again = desired_state(config(), [disk("1:0:6:0")], liostate.previous(state))
    assert again.targets[0].luns[0].status == "squatted"
    snap = liostate.snapshot(state)
    assert liostate.problems(snap, again) == []  # the LUN itself is safe (not ready)
    # if the held LUN answered (a live backstore at that address), it would be wrong
    state.backstores[name] = liostate.Backstore("pscsi_1000", name, enabled=True)
    assert any("now holds another device" in p
               for p in liostate.problems(liostate.snapshot(state), again))
    # the tape returns elsewhere: a new backstore there, the held one dropped
    state.backstores[name] = liostate.Backstore("pscsi_1000", name, enabled=False)
    back = plan(state, [disk("1:0:6:0"), tape("7:0:6:0")])
    assert ("rmdir", "core/pscsi_1000/" + name) in back
    assert any(op[1].endswith("h7c0t6l0/enable") for op in back)


def _bound(state, hctl, udev_path="/dev/sg1"):
    name = list(state.backstores)[0]
    store = state.backstores[name]
    state.backstores[name] = liostate.Backstore(store.hba, name, True, hctl, udev_path)
    return state


def test_verification_compares_the_backing_device_not_only_that_a_lun_exists():
    desired = desired_state(config(), [tape("1:0:6:0")])
    good = _bound(exported_state(), Hctl(1, 0, 6, 0))
    assert liostate.problems(liostate.snapshot(good), desired) == []
    elsewhere = _bound(exported_state(), Hctl(3, 0, 6, 0))
    found = liostate.problems(liostate.snapshot(elsewhere), desired)
    assert any("points at 3:0:6:0" in p for p in found), found
    assert any("is bound to 3:0:6:0, not to the device" in p for p in found), found
    other_node = _bound(exported_state(), Hctl(1, 0, 6, 0), "/dev/sg9")
    found = liostate.problems(liostate.snapshot(other_node), desired)
    assert any("names /dev/sg9, not a node of the device" in p for p in found), found
    # the backstore's name records the identity: another drive's is not it
    other = desired_state(builders.config(builders.export(serial="HU2"), backend="lio"),
                          [builders.tape("1:0:6:0", serial="HU2", sg="/dev/sg1")])
    found = liostate.problems(liostate.snapshot(good), other)
    assert any("is not mapped to" in p for p in found), found


def test_pscsi_info_gives_the_bound_address():
    info = ("Status: ACTIVATED  Max Queue Depth: 0  SectorSize: 512  HwMaxSectors: 1024\n"
            "SCSI Device Bus Location: Channel ID: 0 Target ID: 6 LUN: 0 Host ID: 12\n"
            "        Vendor: Linux    Model: scsi_debug       Rev: 0191\n")
    assert liostate.bound_address(info) == Hctl(12, 0, 6, 0)
    assert liostate.bound_address("SCSI Device Bus Location: Channel ID: 0 Target ID: 6 "
                                  "LUN: 0 Host ID: PHBA Mode\n") is None
    assert liostate.bound_address("") is None


def test_adapter_distrusts_a_backstore_bound_elsewhere_than_its_name(tmp_path):
    import os

    from tapeshared.backends.lio.backend import LioBackend
    name = "tapeshared-HU1-abc-h1c0t6l0"
    store = tmp_path / "core" / "pscsi_1000" / name
    os.makedirs(str(store))
    (store / "enable").write_text("1\n")
    (store / "udev_path").write_text("/dev/sg1\n")
    (store / "info").write_text("SCSI Device Bus Location: Channel ID: 0 Target ID: 6 "
                                "LUN: 0 Host ID: 1\n")
    backend = LioBackend(LioSettings(lio_root=str(tmp_path),
                                     sysfs_devices=str(tmp_path / "sys")))
    seen = backend.observe().detail.backstores[name]
    assert (seen.enabled, seen.bound, seen.udev_path) == (True, Hctl(1, 0, 6, 0), "/dev/sg1")
    (store / "info").write_text("SCSI Device Bus Location: Channel ID: 0 Target ID: 6 "
                                "LUN: 0 Host ID: 4\n")
    seen = backend.observe().detail.backstores[name]
    assert not seen.enabled and seen.bound == Hctl(4, 0, 6, 0)
