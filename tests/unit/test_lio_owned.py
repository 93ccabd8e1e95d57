"""LIO ownership from configfs alone: what is ours is recognised and cleaned when
unwanted, what is not ours is never touched, and every change is a logged step."""

import copy
import os

import pytest
from support import builders
from support.builders import INIT, IQN
from test_lio_plan import TPG, exported_state, plan, simulate, tape

from tapeshared.backends.lio import holder
from tapeshared.backends.lio import plan as lioplan
from tapeshared.backends.lio import state as liostate
from tapeshared.backends.lio.backend import LioBackend
from tapeshared.backends.lio.state import LioSettings
from tapeshared.core.desired import desired_state
from tapeshared.core.model import Config, GlobalConfig
from tapeshared.core.plan import Plan
from tapeshared.host import faults

OURS = "tapeshared-HU1-abc-h1c0t6l0"
FOREIGN_IQN = "iqn.2003-01.org.example:other"


def backend(root):
    return LioBackend(LioSettings(lio_root=str(root), sysfs_devices=str(root / "sys")))


def mkdirs(root, *rels):
    for rel in rels:
        os.makedirs(str(root / rel))


def removals(ops):
    return [op[1] for op in ops if op[0] in ("rmdir", "unlink")]


def test_the_hba_range_rule():
    assert liostate.ours_hba("pscsi_1000") and liostate.ours_hba("pscsi_4711")
    for name in ("pscsi_0", "pscsi_999", "pscsi_", "pscsi_10x0", "fileio_1000",
                 "pscsi_-1000"):
        assert not liostate.ours_hba(name), name


def test_an_empty_hba_of_our_range_left_by_a_kill_is_removed(tmp_path):
    """The observed leftover: killed between the backstore's rmdir and its HBA's."""
    mkdirs(tmp_path, "iscsi", "core/pscsi_1000", "core/pscsi_3")
    lio = backend(tmp_path)
    desired = desired_state(Config(GlobalConfig(backend="lio"), ()), [])
    step = lio.plan(lio.observe(), desired)
    assert list(step.ops) == [("rmdir", "core/pscsi_1000")]  # pscsi_3: not our range
    lio.apply(step, desired)
    assert sorted(os.listdir(str(tmp_path / "core"))) == ["pscsi_3"]
    assert lio.plan(lio.observe(), desired).ops == ()


def test_a_foreign_backstore_keeps_its_hba_of_our_range(tmp_path):
    mkdirs(tmp_path, "iscsi", "core/pscsi_1000/" + OURS, "core/pscsi_1000/by_hand",
           "core/pscsi_1001/by_hand")
    state = backend(tmp_path).observe().detail
    assert list(state.backstores) == [OURS]
    assert state.foreign == {"pscsi_1000", "pscsi_1001"}
    ops = lioplan.plan_ops(state, desired_state(Config(GlobalConfig(), ()), []), 3260)
    assert ops == [("rmdir", "core/pscsi_1000/" + OURS)]  # not the HBA, nor by_hand


def test_a_foreign_target_is_never_read_as_ours_nor_touched(tmp_path):
    mkdirs(tmp_path, "iscsi/%s/tpgt_1/lun/lun_0" % FOREIGN_IQN, "core/pscsi_0/by_hand",
           "iscsi/%s/tpgt_1/param" % FOREIGN_IQN)
    os.symlink(str(tmp_path / "core/pscsi_0/by_hand"),
               str(tmp_path / ("iscsi/%s/tpgt_1/lun/lun_0/by_hand" % FOREIGN_IQN)))
    (tmp_path / "iscsi" / FOREIGN_IQN / "tpgt_1" / "param" / "TargetAlias").write_text(
        "LIO Target\n")
    state = backend(tmp_path).observe([IQN]).detail
    assert state.targets == {} and state.backstores == {}
    ops = plan(state, [tape("1:0:6:0")])
    assert not any(FOREIGN_IQN in op[-1] or "pscsi_0" in op[-1] for op in ops)
    assert not removals(ops)


def test_a_target_of_ours_no_export_names_is_torn_down_by_its_alias_alone(tmp_path):
    """Killed while a removed export was taken down: its LUNs are gone already."""
    base = "iscsi/%s/tpgt_1" % IQN
    mkdirs(tmp_path, base + "/param", base + "/np/0.0.0.0:3260", base + "/acls/" + INIT)
    (tmp_path / base / "param" / "TargetAlias").write_text(liostate.TARGET_ALIAS + "\n")
    state = backend(tmp_path).observe([]).detail
    assert list(state.targets) == [IQN]
    ops = lioplan.plan_ops(state, desired_state(Config(GlobalConfig(), ()), []), 3260)
    assert removals(ops) == [base + "/acls/" + INIT, base + "/np/0.0.0.0:3260", base,
                             "iscsi/" + IQN]


def test_a_managed_target_killed_before_its_tpg_is_completed(tmp_path):
    mkdirs(tmp_path, "iscsi/" + IQN)
    state = backend(tmp_path).observe([IQN]).detail
    assert not state.targets[IQN].tpg
    ops = plan(state, [tape("1:0:6:0")])
    assert ("mkdir", TPG) in ops and ("mkdir", "iscsi/" + IQN) not in ops
    assert ops.index(("mkdir", TPG)) < ops.index(
        ("write", TPG + "/param/TargetAlias", liostate.TARGET_ALIAS))
    # no longer managed: without the alias nothing says it is ours, so it stays
    assert backend(tmp_path).observe([]).detail.targets == {}
    assert lioplan.plan_ops(state, desired_state(Config(GlobalConfig(), ()), []),
                            3260) == [("rmdir", "iscsi/" + IQN)]  # managed, then removed


def test_the_alias_is_written_first_and_an_older_target_gets_it_once():
    ops = plan(liostate.LioState(), [tape("1:0:6:0")])
    alias = ops.index(("write", TPG + "/param/TargetAlias", liostate.TARGET_ALIAS))
    assert ops[alias - 1] == ("mkdir", TPG)
    state = exported_state()
    state.targets[IQN].alias = "LIO Target"  # made by a version without the alias
    assert plan(state, [tape("1:0:6:0")]) == [
        ("write", TPG + "/param/TargetAlias", liostate.TARGET_ALIAS)]


def test_an_unmapped_backstore_of_ours_and_an_unmapped_tpg_lun_are_removed():
    state = exported_state()
    (name,) = state.backstores
    stray = "tapeshared-HU9-def-h3c0t1l0"
    state.backstores[stray] = liostate.Backstore("pscsi_1001", stray)
    state.hbas.add("pscsi_1001")
    state.targets[IQN].luns[1] = None  # killed between the tpg LUN's mkdir and its link
    state.targets[IQN].luns[2] = stray  # killed before the old LUN's rmdir: unmapped
    ops = plan(state, [tape("1:0:6:0")])
    assert removals(ops) == [TPG + "/lun/lun_1", TPG + "/lun/lun_2/" + stray,
                             TPG + "/lun/lun_2", "core/pscsi_1001/" + stray,
                             "core/pscsi_1001"]
    assert list(state.backstores) == [name, stray]  # planning changed nothing
    simulate(state, ops)
    assert plan(state, [tape("1:0:6:0")]) == []


def test_a_half_built_acl_mapping_is_completed():
    state = exported_state()
    state.targets[IQN].acls[INIT].mapped[0] = None  # mkdir lun_0, killed before the link
    assert plan(state, [tape("1:0:6:0")]) == [
        ("symlink", TPG + "/lun/lun_0", "%s/acls/%s/lun_0/lun" % (TPG, INIT))]
    second = "iqn.1994-05.com.example:gone"
    state.targets[IQN].acls[second] = liostate.Acl(mapped={0: None})  # half-built, unwanted
    ops = plan(state, [tape("1:0:6:0")])
    assert removals(ops) == ["%s/acls/%s/lun_0" % (TPG, second), "%s/acls/%s" % (TPG, second)]


class Killed(Exception):
    """Raised by the kill hook in place of SIGKILL."""


def arm_kill(monkeypatch, log, step):
    """Log every step to log and 'kill' (raise Killed) right before step."""
    monkeypatch.setenv(faults.LOG_ENV, str(log))
    monkeypatch.setenv(faults.KILL_ENV, str(step))
    monkeypatch.setattr(faults, "_count", 0)

    def kill(pid, sig):
        raise Killed()

    monkeypatch.setattr(faults.os, "kill", kill)


def test_every_configfs_change_is_a_step_and_a_kill_stops_before_it(tmp_path, monkeypatch):
    log = tmp_path / "steps"
    arm_kill(monkeypatch, log, 3)
    mkdirs(tmp_path, "iscsi", "core/pscsi_1000/" + OURS)
    ops = (("mkdir", "iscsi/" + IQN), ("mkdir", TPG), ("write", TPG + "/param/x", "1"))
    lio = backend(tmp_path)
    with pytest.raises(Killed):
        lio.apply(Plan(ops=ops), desired_state(builders.config(backend="lio"), []))
    assert log.read_text().splitlines() == [
        "1\tmkdir iscsi/%s" % IQN, "2\tmkdir %s" % TPG,
        "3\twrite %s/param/x = 1\tKILL" % TPG]
    assert os.path.isdir(str(tmp_path / TPG))
    assert not os.path.exists(str(tmp_path / TPG / "param"))  # step 3 never ran


@pytest.mark.parametrize("files, level", [
    ((), "hba"), ((holder.NAME,), "store"),
    ((holder.NAME, "enable=1"), "enabled"),
    ((holder.NAME, "enable=1", "alua=0"), "enabled"),
    ((holder.NAME, "enable=1", "alua=3"), "ready")])
def test_the_holder_is_read_back_at_each_level_and_a_leftover_is_removed(
        tmp_path, files, level):
    """A kill anywhere while the holder is built or used leaves it recognised."""
    mkdirs(tmp_path, "iscsi", "core/" + holder.HBA)
    if files:
        mkdirs(tmp_path, holder.PATH + "/alua/default_tg_pt_gp")
    for item in files[1:]:
        name, value = item.split("=")
        rel = holder.ALUA_STATE if name == "alua" else holder.PATH + "/" + name
        (tmp_path / rel).write_text(value + "\n")
    state = backend(tmp_path).observe().detail
    assert state.holder == level and state.foreign == set()
    ops = lioplan.plan_ops(state, desired_state(Config(GlobalConfig(), ()), []), 3260)
    assert ops == ([("rmdir", holder.PATH)] if files else []) + [
        ("rmdir", "core/" + holder.HBA)]


def test_something_not_ours_in_the_holders_hba_keeps_it(tmp_path):
    mkdirs(tmp_path, "iscsi", holder.PATH, "core/%s/by_hand" % holder.HBA, "core/rd_mcp_3/x")
    state = backend(tmp_path).observe().detail
    assert state.foreign == {holder.HBA} and state.holder == "store"
    ops = lioplan.plan_ops(state, desired_state(Config(GlobalConfig(), ()), []), 3260)
    assert ops == [("rmdir", holder.PATH)]  # by_hand and rd_mcp_3 stay


def test_the_holder_is_built_once_for_several_targets_and_made_unavailable_first():
    state = exported_state()
    other = "iqn.2007-04.com.example:tape1"
    state.targets[other] = copy.deepcopy(state.targets[IQN])
    for name, store in list(state.backstores.items()):
        state.backstores[name] = liostate.Backstore(store.hba, store.name, enabled=False)
    ops = lioplan.plan_ops(state, desired_state(builders.config(backend="lio"), [
        tape("1:0:6:0")]), 3260)
    made = [op for op in ops if op[1:2] == ("core/" + holder.HBA,) or
            op[1].startswith(holder.PATH)]
    assert made[:5] == holder.up("") and len([o for o in made if o[0] == "mkdir"]) == 2
    links = [op for op in ops if op[0] == "symlink" and op[1] == holder.PATH]
    assert len(links) == 2  # one tpg LUN in each target
    assert ops.index(("write", holder.ALUA_STATE, holder.UNAVAILABLE)) < ops.index(links[0])
    assert ops[-2:] == holder.down("ready", False)


def test_a_mappings_unlink_and_link_run_back_to_back(tmp_path, monkeypatch):
    """Nothing (no log line, no kill point) falls between a swap's two syscalls:
    a kill at the link stops before the unlink too."""
    arm_kill(monkeypatch, tmp_path / "steps", 2)
    mkdirs(tmp_path, "iscsi", TPG + "/lun/lun_0", TPG + "/lun/lun_1",
           "%s/acls/%s/lun_0" % (TPG, INIT))
    link = "%s/acls/%s/lun_0/lun" % (TPG, INIT)
    os.symlink(str(tmp_path / TPG / "lun/lun_0"), str(tmp_path / link))
    ops = (("unlink", link), ("symlink", TPG + "/lun/lun_1", link))
    with pytest.raises(Killed):
        backend(tmp_path).apply(Plan(ops=ops), desired_state(builders.config(
            backend="lio"), []))
    assert os.readlink(str(tmp_path / link)).endswith("lun/lun_0")  # untouched


def test_a_linked_holder_not_yet_unavailable_is_made_so_before_a_mapping_reaches_it():
    state = exported_state()
    (name,) = state.backstores
    state.backstores[name] = liostate.Backstore("pscsi_1000", name, enabled=False)
    state.holder = "enabled"  # its access state write never happened
    state.targets[IQN].luns[1] = holder.NAME
    ops = plan(state, [tape("1:0:6:0")])
    link = "%s/acls/%s/lun_0/lun" % (TPG, INIT)
    assert ops.index(("write", holder.ALUA_STATE, holder.UNAVAILABLE)) < ops.index(
        ("symlink", TPG + "/lun/lun_1", link))
    assert ("mkdir", TPG + "/lun/lun_2") not in ops  # the existing holder LUN serves
