"""tgt plan (pure): show parser, ownership, tids, renumbering, ACLs, CHAP, absent."""

from dataclasses import replace

import pytest
from support import builders
from support.builders import INIT, IQN

from tapeshared.backends.tgt import plan as tgtplan
from tapeshared.backends.tgt import show as tgtshow
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import ConfigError
from tapeshared.core.model import (
    Chap,
    Config,
    GlobalConfig,
    Hctl,
    Session,
)

# captured from tgtd 1.0.85 (Debian 12) after a tapeshared apply with an rdwr
# stand-in LUN, plus a hand-made target; the I_T nexus lines follow tgt's
# usr/iscsi/session.c and iscsi_tcp.c format ("Initiator: %s alias: %s",
# "Connection: %u", "IP Address: %s")
SHOW = """\
Target 1: iqn.2003-01.org.example:other
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags:
        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            SCSI SN: beaf11
            Size: 1 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: /srv/disk.img
            Backing store flags:
    Account information:
        alice
    ACL information:
        ALL
Target 1000: iqn.2007-04.com.example:tape0
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.1994-05.com.example:backup alias: backup
            Connection: 0
                IP Address: 192.0.2.5
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: tapeshared
            SCSI SN: beaf10000
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags:
        LUN: 1
            Type: passthrough
            SCSI ID: IET     03e80001
            SCSI SN: beaf10001
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: sg
            Backing store path: /dev/sg1
            Backing store flags:
    Account information:
        tapeuser
        mutual (outgoing)
    ACL information:
        192.0.2.0/24
        iqn.1994-05.com.example:backup
""".replace("flags:\n", "flags: \n")  # tgtd prints a trailing blank there

ACCOUNTS = "Account list:\n    mutual\n    tapeuser\n    alice\n"


def config(absent="keep", lun=1, initiators=("192.0.2.0/24",), iqns=(INIT,), chap=False):
    return builders.config(builders.export(
        lun=lun, initiators=initiators, iqns=iqns, absent=absent,
        chap=Chap("tapeuser", "s3cret") if chap else None,
        mutual=Chap("mutual", "other1") if chap else None), backend="tgt")


def tape(hctl="1:0:6:0", sg="/dev/sg1"):
    return builders.tape(hctl, sg=sg)


def simulate(state, ops):
    """Apply operations to a TgtState the way tgtd would, for the planner's sake."""
    for op in ops:
        if op[0] == tgtplan.RESET:
            continue  # the adapter's, not tgtd's
        args = dict(zip(op[::2], op[1::2]))
        mode, verb = op[1], op[3]
        tid = int(op[op.index("--tid") + 1]) if "--tid" in op else None
        target = state.targets.get(tid)
        if mode == "target" and verb == "new":
            state.targets[tid] = tgtshow.Target(tid, args["--targetname"],
                                                {0: tgtshow.Lun(0, "controller")})
        elif mode == "target" and verb == "delete":
            del state.targets[tid]
        elif mode == "target":
            entry = op[-1]
            (target.acl.append if verb == "bind" else target.acl.remove)(entry)
        elif mode == "logicalunit" and verb == "update":
            target.luns[0].scsi_id = args["--params"].split("=", 1)[1]
        elif mode == "logicalunit" and verb == "new":
            number = int(args["--lun"])
            target.luns[number] = tgtshow.Lun(number, "passthrough", "", args["--bstype"],
                                              args["--backing-store"])
        elif mode == "logicalunit":
            del target.luns[int(args["--lun"])]
        elif verb == "new":
            state.accounts.add(args["--user"])
        elif verb == "delete":
            state.accounts.discard(args["--user"])
            for other in state.targets.values():
                for names in (other.incoming, other.outgoing):
                    if args["--user"] in names:
                        names.remove(args["--user"])
        else:
            names = target.outgoing if "--outgoing" in op else target.incoming
            (names.append if verb == "bind" else names.remove)(args["--user"])
    state.stale = set()
    return state


def verbs(ops):
    """tgtadm's --op of each operation, or "reset" for a drive reset."""
    return [op[0] if op[0] == tgtplan.RESET else op[3] for op in ops]


def plan(state, devices, fresh=(), owned=(), **kw):
    cfg = config(**kw)
    desired = desired_state(cfg, devices, tgtplan.previous(state, {}, {}))
    return tgtplan.plan_ops(state, desired, set(fresh), set(owned))


def parsed():
    return tgtshow.TgtState(tgtshow.parse_show(SHOW), tgtshow.parse_accounts(ACCOUNTS))


def test_parser_reads_targets_luns_accounts_acls_and_sessions():
    targets = tgtshow.parse_show(SHOW)
    assert sorted(targets) == [1, 1000]
    ours, other = targets[1000], targets[1]
    assert ours.iqn == IQN and ours.ours and not other.ours
    assert ours.luns[1] == tgtshow.Lun(1, "passthrough", "IET     03e80001", "sg", "/dev/sg1")
    assert ours.luns[0].path == "None" and other.luns[1].path == "/srv/disk.img"
    assert ours.incoming == ["tapeuser"] and ours.outgoing == ["mutual"]
    assert ours.acl == ["192.0.2.0/24", INIT] and other.acl == ["ALL"]
    assert ours.sessions == [Session(INIT, ("192.0.2.5",))] and other.sessions == []
    assert ours.sessions[0].initiator == INIT
    assert tgtshow.parse_accounts(ACCOUNTS) == {"mutual", "tapeuser", "alice"}
    assert tgtshow.parse_show("") == {}


def test_acl_entry_kinds():
    for entry in ("ALL", "192.0.2.5", "192.0.2.0/24", "2001:db8::/32", "[2001:db8::1]"):
        assert tgtplan.is_address(entry), entry
    for entry in (INIT, "eui.02004567A425678D", "naa.52004567BA64678D"):
        assert not tgtplan.is_address(entry), entry


def test_first_export_then_nothing_to_do():
    state = tgtshow.TgtState()
    ops, notes = plan(state, [tape()])
    assert ops == [
        ("--mode", "target", "--op", "new", "--tid", "1000", "--targetname", IQN),
        ("--mode", "logicalunit", "--op", "update", "--tid", "1000", "--lun", "0",
         "--params", "scsi_id=tapeshared"),
        tgtplan.reset_op(IQN, 1, Hctl(1, 0, 6, 0), "/dev/sg1"),
        ("--mode", "logicalunit", "--op", "new", "--tid", "1000", "--lun", "1", "--bstype",
         "sg", "--device-type", "pt", "--backing-store", "/dev/sg1"),
        # the ACL entries last: until then tgt refuses every login
        ("--mode", "target", "--op", "bind", "--tid", "1000", "--initiator-address",
         "192.0.2.0/24"),
        ("--mode", "target", "--op", "bind", "--tid", "1000", "--initiator-name", INIT)]
    assert notes == []
    simulate(state, ops)
    assert plan(state, [tape()]) == ([], [])


def test_tid_is_the_lowest_free_from_the_base_and_kept_by_iqn():
    state = tgtshow.TgtState({1000: tgtshow.Target(1000, "iqn.2003-01.org.example:x"),
                              1002: tgtshow.Target(1002, "iqn.2003-01.org.example:y")})
    ops, _ = plan(state, [tape()])
    assert ops[0][4:6] == ("--tid", "1001")
    state = tgtshow.TgtState({7: tgtshow.Target(7, IQN, {0: tgtshow.Lun(0)})})
    ops, _ = plan(state, [tape()])
    assert ops[0] == ("--mode", "logicalunit", "--op", "update", "--tid", "7", "--lun", "0",
                      "--params", "scsi_id=tapeshared")  # adopted: marked, same tid


def test_renumbering_deletes_and_re_adds_the_lun_on_the_new_node():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    ops, _ = plan(state, [tape("7:0:6:0", "/dev/sg4")])
    assert ops == [("--mode", "logicalunit", "--op", "delete", "--tid", "1000", "--lun", "1"),
                   tgtplan.reset_op(IQN, 1, Hctl(7, 0, 6, 0), "/dev/sg4"),
                   ("--mode", "logicalunit", "--op", "new", "--tid", "1000", "--lun", "1",
                    "--bstype", "sg", "--device-type", "pt", "--backing-store", "/dev/sg4")]
    simulate(state, ops)
    assert plan(state, [tape("7:0:6:0", "/dev/sg4")]) == ([], [])


def test_same_path_held_stale_is_re_added():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    state.stale = {"/dev/sg1"}
    ops, _ = plan(state, [tape("7:0:6:0", "/dev/sg1")])
    assert verbs(ops) == ["delete", "reset", "new"]


def test_absent_keep_leaves_the_lun_and_remove_deletes_it():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    remembered = {(IQN, 1): Hctl(1, 0, 6, 0)}
    desired = desired_state(config(), [], tgtplan.previous(state, {}, remembered))
    assert desired.targets[0].luns[0].status == "kept"
    assert tgtplan.plan_ops(state, desired) == ([], [])
    ops, _ = plan(state, [], absent="remove")
    assert ops == [("--mode", "logicalunit", "--op", "delete", "--tid", "1000", "--lun", "1")]
    simulate(state, ops)
    assert plan(state, [], absent="remove") == ([], [])
    ops, _ = plan(state, [tape("2:0:6:0", "/dev/sg2")], absent="remove")
    assert verbs(ops) == ["reset", "new"]


def test_absent_keep_deletes_a_lun_held_on_a_dead_node_and_re_adds_on_return():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    remembered = {(IQN, 1): Hctl(1, 0, 6, 0)}
    state.stale = {"/dev/sg1"}  # tgtd holds "/dev/sg1 (deleted)"
    desired = desired_state(config(), [], tgtplan.previous(state, {}, remembered))
    assert desired.targets[0].luns[0].status == "kept"
    ops, notes = tgtplan.plan_ops(state, desired)
    assert ops == [("--mode", "logicalunit", "--op", "delete", "--tid", "1000", "--lun", "1")]
    assert "deleted until it returns" in notes[0]
    simulate(state, ops)
    state.stale = set()
    assert tgtplan.plan_ops(state, desired) == ([], [])
    ops, _ = plan(state, [tape("7:0:6:0", "/dev/sg3")])
    assert verbs(ops) == ["reset", "new"]


def test_acl_entries_no_longer_wanted_go_first_and_new_ones_last():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    other = "iqn.1994-05.com.example:other"
    ops, _ = plan(state, [tape()], initiators=("192.0.2.5/32", "2001:db8::/32"),
                  iqns=(other,))
    assert ops == [
        ("--mode", "target", "--op", "unbind", "--tid", "1000", "--initiator-address",
         "192.0.2.0/24"),
        ("--mode", "target", "--op", "unbind", "--tid", "1000", "--initiator-name", INIT),
        ("--mode", "target", "--op", "bind", "--tid", "1000", "--initiator-address",
         "192.0.2.5"),
        ("--mode", "target", "--op", "bind", "--tid", "1000", "--initiator-address",
         "2001:db8::/32"),
        ("--mode", "target", "--op", "bind", "--tid", "1000", "--initiator-name", other)]
    # an entry kept stays bound all along
    simulate(state, ops)
    ops, _ = plan(state, [tape()], initiators=("192.0.2.5/32",), iqns=(INIT, other))
    assert ops == [
        ("--mode", "target", "--op", "unbind", "--tid", "1000", "--initiator-address",
         "2001:db8::/32"),
        ("--mode", "target", "--op", "bind", "--tid", "1000", "--initiator-name", INIT)]


def test_chap_accounts_created_bound_and_recreated_when_not_known_fresh():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    ops, _ = plan(state, [tape()], chap=True)
    assert ops == [("--mode", "account", "--op", "new", "--user", "mutual"),
                   ("--mode", "account", "--op", "new", "--user", "tapeuser"),
                   ("--mode", "account", "--op", "bind", "--tid", "1000", "--user",
                    "tapeuser"),
                   ("--mode", "account", "--op", "bind", "--tid", "1000", "--user",
                    "mutual", "--outgoing")]
    assert tgtplan.describe(ops[0]) == ("tgtadm --lld iscsi --mode account --op new "
                                        "--user mutual --password ********")
    assert tgtplan.needs_secret(ops[0]) == "mutual" and tgtplan.needs_secret(ops[2]) is None
    simulate(state, ops)
    both = {"mutual", "tapeuser"}
    assert plan(state, [tape()], fresh=both, owned=both, chap=True) == ([], [])
    ops, _ = plan(state, [tape()], fresh={"mutual"}, owned=both, chap=True)
    # deleting the account unbinds it: the target is closed while it has no CHAP
    assert ops == [("--mode", "target", "--op", "unbind", "--tid", "1000",
                    "--initiator-address", "192.0.2.0/24"),
                   ("--mode", "target", "--op", "unbind", "--tid", "1000",
                    "--initiator-name", INIT),
                   ("--mode", "account", "--op", "delete", "--user", "tapeuser"),
                   ("--mode", "account", "--op", "new", "--user", "tapeuser"),
                   ("--mode", "account", "--op", "bind", "--tid", "1000", "--user",
                    "tapeuser"),
                   ("--mode", "target", "--op", "bind", "--tid", "1000",
                    "--initiator-address", "192.0.2.0/24"),
                   ("--mode", "target", "--op", "bind", "--tid", "1000",
                    "--initiator-name", INIT)]
    ops, _ = plan(simulate(state, ops), [tape()], fresh=both, owned=both)
    assert ops == [("--mode", "account", "--op", "unbind", "--tid", "1000", "--user",
                    "tapeuser"),
                   ("--mode", "account", "--op", "unbind", "--tid", "1000", "--user",
                    "mutual", "--outgoing"),
                   ("--mode", "account", "--op", "delete", "--user", "mutual"),
                   ("--mode", "account", "--op", "delete", "--user", "tapeuser")]


def test_accounts_of_foreign_targets_are_never_reset_or_deleted():
    state = parsed()
    ops, notes = plan(state, [tape()], owned={"alice"})
    assert not any(op[1] == "account" and op[3] in ("new", "delete") for op in ops)
    state.targets[1].incoming.append("tapeuser")
    ops, notes = plan(state, [tape()], chap=True)
    assert ("--mode", "account", "--op", "delete", "--user", "tapeuser") not in ops
    assert notes and "iqn.2003-01.org.example:other" in notes[0]


def test_deconfigured_target_of_ours_is_removed_and_foreign_untouched():
    state = parsed()
    desired = desired_state(Config(GlobalConfig(backend="tgt"), ()), [])
    ops, _ = tgtplan.plan_ops(state, desired, owned={"tapeuser", "mutual"})
    assert ops == [("--mode", "target", "--op", "delete", "--force", "--tid", "1000"),
                   ("--mode", "account", "--op", "delete", "--user", "mutual"),
                   ("--mode", "account", "--op", "delete", "--user", "tapeuser")]
    state.targets[1000].luns[0].scsi_id = "IET     03e80000"  # not marked: not ours
    assert tgtplan.plan_ops(state, desired) == ([], [])


def test_foreign_targets_untouched_while_exporting():
    state = parsed()
    ops, _ = plan(state, [tape()], fresh={"mutual", "tapeuser"}, chap=True)
    assert all(op[op.index("--tid") + 1] == "1000" for op in ops if "--tid" in op)


def test_lun_zero_is_refused_with_a_config_error():
    with pytest.raises(ConfigError, match="LUN 0"):
        plan(tgtshow.TgtState(), [tape()], lun=0)


def test_previous_prefers_the_live_node_and_ignores_stale_and_foreign():
    state = parsed()
    remembered = {(IQN, 1): Hctl(1, 0, 6, 0)}
    assert tgtplan.previous(state, {"/dev/sg1": Hctl(3, 0, 0, 0)}, remembered) == {
        (IQN, 1): Hctl(3, 0, 0, 0)}
    state.stale = {"/dev/sg1"}
    assert tgtplan.previous(state, {"/dev/sg1": Hctl(3, 0, 0, 0)}, remembered) == {
        (IQN, 1): Hctl(1, 0, 6, 0)}
    assert tgtplan.previous(state, {"/srv/disk.img": Hctl(9, 0, 0, 0)}, {}) == {}


def test_a_node_udev_has_not_made_yet_is_not_added():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    not_yet = replace(tape("7:0:6:0", "/dev/sg4"), unready=("/dev/sg4",))
    ops, notes = tgtplan.plan_ops(state, desired_state(config(), [not_yet]))
    assert ops == [("--mode", "logicalunit", "--op", "delete", "--tid", "1000", "--lun", "1")]
    assert notes == ["LUN 1 of %s: /dev/sg4 has no device node yet" % IQN]
    simulate(state, ops)
    ops, _ = tgtplan.plan_ops(state, desired_state(config(), [tape("7:0:6:0", "/dev/sg4")]))
    assert verbs(ops) == ["reset", "new"]


def test_planning_is_pure_the_same_state_twice_gives_the_same_plan():
    import copy
    state = parsed()
    before = copy.deepcopy(state)
    first = plan(state, [tape()], owned={"tapeuser"})
    assert state == before, "planning changed the observed state"
    assert plan(state, [tape()], owned={"tapeuser"}) == first and first[0]


def test_verification_resolves_each_backing_path_to_the_device():
    from tapeshared.backends import common
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    desired = desired_state(config(), [tape()])
    right = tgtplan.snapshot(tgtplan.TgtDetail(state, {"/dev/sg1": Hctl(1, 0, 6, 0)}),
                             {IQN})
    assert common.lun_problems(right, desired) == []
    # the same LUN, but its backing node is now another device's (a disk took sg1)
    wrong = tgtplan.snapshot(tgtplan.TgtDetail(state, {"/dev/sg1": Hctl(0, 0, 0, 0)}),
                             {IQN})
    found = common.lun_problems(wrong, desired)
    assert any("points at 0:0:0:0, not at the device (1:0:6:0)" in p for p in found), found
    held = replace(state, stale={"/dev/sg1"})
    found = common.lun_problems(tgtplan.snapshot(tgtplan.TgtDetail(held, {}), {IQN}),
                                desired)
    assert any("vanished device" in p or "points at" in p for p in found), found


def test_a_squatted_lun_is_deleted_and_its_address_remembered():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    remembered = {(IQN, 1): Hctl(1, 0, 6, 0)}
    squatter = builders.tape("1:0:6:0", serial="DISK1", kind=0, sg="/dev/sg5")
    desired = desired_state(config(), [squatter], tgtplan.previous(state, {}, remembered))
    lun = desired.targets[0].luns[0]
    assert (lun.status, lun.last) == ("squatted", Hctl(1, 0, 6, 0))
    ops, _ = tgtplan.plan_ops(state, desired)
    assert ops == [("--mode", "logicalunit", "--op", "delete", "--tid", "1000", "--lun", "1")]
    assert not any("/dev/sg5" in op for op in ops)


def _resets_before_creations(ops):
    """Check each LU creation directly follows the reset of its own device."""
    for index, op in enumerate(ops):
        if op[:4] == ("--mode", "logicalunit", "--op", "new"):
            path = tgtplan.op_value(op, "--backing-store")
            assert index and ops[index - 1][0] == tgtplan.RESET, ops
            assert tgtplan.op_value(ops[index - 1], "--backing-store") == path
            assert tgtplan.op_value(ops[index - 1], "--lun") == tgtplan.op_value(op, "--lun")
    return [op for op in ops if op[0] == tgtplan.RESET]


def test_every_lu_creation_is_preceded_by_a_reset_of_the_device_it_exports():
    state = tgtshow.TgtState()
    ops, _ = plan(state, [tape()])
    assert _resets_before_creations(ops) == [tgtplan.reset_op(IQN, 1, Hctl(1, 0, 6, 0),
                                                               "/dev/sg1")]
    simulate(state, ops)
    # renumbered: the new address and node are the ones reset, after the delete
    ops, _ = plan(state, [tape("7:0:6:0", "/dev/sg4")])
    assert verbs(ops) == ["delete", "reset", "new"]
    assert _resets_before_creations(ops) == [tgtplan.reset_op(IQN, 1, Hctl(7, 0, 6, 0),
                                                               "/dev/sg4")]
    simulate(state, ops)
    # the same sg name, a new kernel object behind it (tgtd holds the old one)
    state.stale = {"/dev/sg4"}
    ops, _ = plan(state, [tape("7:0:6:0", "/dev/sg4")])
    assert len(_resets_before_creations(ops)) == 1 and verbs(ops)[0] == "delete"


def test_nothing_but_an_lu_creation_resets_a_drive():
    """A drive may be mid-backup: an ACL, CHAP, adoption or unchanged LUN never resets."""
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    cases = [plan(state, [tape()]),
             plan(state, [tape()], initiators=("192.0.2.7/32",), iqns=()),
             plan(state, [tape()], chap=True),
             plan(state, [], absent="keep")]
    adopted = parsed()
    adopted.targets[1000].luns[0].scsi_id = "IET     03e80000"  # by hand, not marked yet
    cases.append(plan(adopted, [tape()]))
    dead = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    dead.stale = {"/dev/sg1"}
    cases.append(tgtplan.plan_ops(dead, desired_state(config(), [], {(IQN, 1): Hctl(
        1, 0, 6, 0)})))
    cases.append(tgtplan.plan_ops(state, desired_state(config(), [replace(
        tape("7:0:6:0", "/dev/sg4"), unready=("/dev/sg4",))])))
    for ops, _notes in cases:
        assert not any(op[0] == tgtplan.RESET for op in ops), ops
    assert any(op[3] == "update" for op in cases[4][0])  # the adoption itself ran


def test_a_library_renumbering_resets_only_the_drive_that_moved():
    cfg = builders.config(builders.export(
        name="library0", luns=[(1, "serial", "CH1"), (2, "serial", "D1"),
                               (3, "serial", "D2")], initiators=("192.0.2.0/24",)),
        backend="tgt")
    devices = [builders.tape("2:0:0:0", serial="CH1", kind=8, sg="/dev/sg2"),
               builders.tape("2:0:1:0", serial="D1", sg="/dev/sg3"),
               builders.tape("2:0:2:0", serial="D2", sg="/dev/sg4")]
    state = tgtshow.TgtState()
    ops, _ = tgtplan.plan_ops(state, desired_state(cfg, devices))
    assert [tgtplan.op_value(op, "--hctl") for op in _resets_before_creations(ops)] == [
        "2:0:0:0", "2:0:1:0", "2:0:2:0"]
    simulate(state, ops)
    moved = devices[:2] + [builders.tape("5:0:0:0", serial="D2", sg="/dev/sg5")]
    ops, _ = tgtplan.plan_ops(state, desired_state(cfg, moved,
                                                   tgtplan.previous(state, {}, {})))
    assert _resets_before_creations(ops) == [
        tgtplan.reset_op(IQN, 3, Hctl(5, 0, 0, 0), "/dev/sg5")]
    assert verbs(ops) == ["delete", "reset", "new"]


def test_a_reset_reads_as_what_it_does():
    op = tgtplan.reset_op(IQN, 2, Hctl(3, 0, 1, 0), "/dev/sg7")
    assert tgtplan.describe(op) == (
        "reset the logical unit 3:0:1:0 (/dev/sg7, no escalation) before exporting it "
        "as LUN 2 of %s" % IQN)
    assert tgtplan.needs_secret(op) is None


def test_the_snapshot_shows_a_reset_only_for_luns_that_hold_the_reset_device():
    state = simulate(tgtshow.TgtState(), plan(tgtshow.TgtState(), [tape()])[0])
    detail = tgtplan.TgtDetail(state, {"/dev/sg1": Hctl(1, 0, 6, 0)},
                               resets={(IQN, 1): 1700000000.5})
    lun = tgtplan.snapshot(detail, {IQN}).targets[IQN].luns[1]
    assert (lun.reset_at, lun.reset_scope) == (1700000000.5, "drive")
    lun = tgtplan.snapshot(replace(detail, resets={}), {IQN}).targets[IQN].luns[1]
    assert (lun.reset_at, lun.reset_scope) == (None, "")
