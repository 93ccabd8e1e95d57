"""LIO: a device no initiator has reached is reset right before it is first mapped,
and nothing an initiator can already reach is ever reset (tape position safety)."""

import os

import pytest
from support import builders
from support.builders import INIT, IQN
from test_lio_plan import TPG, _stale, plan, simulate, tape

from tapeshared.backends.lio import plan as lioplan
from tapeshared.backends.lio import state as liostate
from tapeshared.backends.lio.backend import LioBackend
from tapeshared.backends.lio.state import LioSettings
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import TransientError
from tapeshared.core.plan import Plan

LINK = "%s/acls/%s/lun_0/lun" % (TPG, INIT)
SECOND = "iqn.1994-05.com.example:second"


def keys(ops):
    return [(op[0], op[2] if op[0] == "symlink" else op[1]) for op in ops]


def resets(ops):
    return [op[1] for op in ops if op[0] == "reset"]


def test_first_export_resets_the_bound_device_before_the_first_mapping():
    ops = plan(liostate.LioState(), [tape("1:0:6:0")])
    k = keys(ops)
    (store,) = resets(ops)
    assert store.endswith("-h1c0t6l0")
    reset = k.index(("reset", store))
    assert k.index(("write", store + "/enable")) < k.index(("symlink", TPG + "/lun/lun_0/"
                                                            + store.split("/")[-1])) \
        < reset < k.index(("symlink", LINK))


def test_renumbering_resets_the_new_device_while_the_old_one_still_answers():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    ops = plan(state, [tape("7:0:6:0")])
    k = keys(ops)
    (store,) = resets(ops)
    assert store.endswith("-h7c0t6l0")
    # enable (pscsi's MODE SENSE) first, then the reset, then the swap: between
    # the reset and the link nothing on the host talks to the drive
    assert k.index(("write", store + "/enable")) < k.index(("reset", store)) \
        < k.index(("unlink", LINK)) < k.index(("symlink", LINK))
    simulate(state, ops)
    assert plan(state, [tape("7:0:6:0")]) == []  # exposed now: never reset again


def test_same_address_new_instance_resets_the_rebound_device():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    (old,) = state.backstores
    ops = plan(_stale(state), [tape("1:0:6:0")])
    assert resets(ops) == ["core/pscsi_1000/" + old]  # same name, new binding
    k = keys(ops)
    # the holder answers meanwhile: the reset comes before the swap from it
    last_unlink = max(i for i, key in enumerate(k) if key == ("unlink", LINK))
    last_link = max(i for i, key in enumerate(k) if key == ("symlink", LINK))
    assert k.index(("write", "core/pscsi_1000/%s/enable" % old)) < k.index(
        ("reset", "core/pscsi_1000/" + old)) < last_unlink < last_link
    assert ops[last_link][1] == TPG + "/lun/lun_0"


def test_a_configuration_change_never_resets_a_reachable_drive():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    for export in (builders.export(iqns=(INIT, SECOND)),
                   builders.export(chap=builders.Chap("user", "secret-secret"))):
        cfg = builders.config(export, backend="lio")
        desired = desired_state(cfg, [tape("1:0:6:0")], liostate.previous(state))
        ops = lioplan.plan_ops(state, desired, 3260)
        assert ops, "the change must be applied"
        assert resets(ops) == [], ops


def test_two_initiators_get_one_reset_before_the_first_mapping():
    cfg = builders.config(builders.export(iqns=(INIT, SECOND)), backend="lio")
    desired = desired_state(cfg, [tape("1:0:6:0")])
    ops = lioplan.plan_ops(liostate.LioState(), desired, 3260)
    k = keys(ops)
    (store,) = resets(ops)
    links = [i for i, key in enumerate(k) if key[0] == "symlink" and "/acls/" in key[1]]
    assert len(links) == 2 and k.index(("reset", store)) < links[0]


def _bound_unmapped(reset_at=None):
    """A backstore bound by an earlier pass that died before mapping it."""
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    (name,) = state.backstores
    del state.targets[IQN].acls[INIT]
    store = state.backstores[name]
    state.backstores[name] = liostate.Backstore(store.hba, name, reset_at=reset_at)
    return state, name


def test_a_bound_device_that_was_never_reset_is_reset_before_it_is_mapped():
    state, name = _bound_unmapped()
    assert resets(plan(state, [tape("1:0:6:0")])) == ["core/pscsi_1000/" + name]
    state, name = _bound_unmapped(reset_at=1000.0)  # reset, then killed before the link
    assert resets(plan(state, [tape("1:0:6:0")])) == []


def test_a_mapped_backstore_from_an_older_version_is_not_reset():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    (name,) = state.backstores
    store = state.backstores[name]  # an older version wrote no record
    state.backstores[name] = liostate.Backstore(store.hba, name, store.enabled)
    assert state.backstores[name].reset_at is None  # no record, but reachable
    cfg = builders.config(builders.export(iqns=(INIT, SECOND)), backend="lio")
    desired = desired_state(cfg, [tape("1:0:6:0")], liostate.previous(state))
    assert resets(lioplan.plan_ops(state, desired, 3260)) == []


def test_the_description_names_the_reset():
    assert lioplan.describe(("reset", "core/pscsi_1000/x")) == \
        "reset the device of core/pscsi_1000/x (logical-unit reset, no escalation)"


# -- the adapter ----------------------------------------------------------------

NAME = "tapeshared-HU1-abc-h1c0t6l0"


def _backend(tmp_path, reset):
    store = tmp_path / "core" / "pscsi_1000" / NAME
    os.makedirs(str(store))
    sysfs = tmp_path / "sys"
    os.makedirs(str(sysfs / "1:0:6:0"))
    backend = LioBackend(LioSettings(lio_root=str(tmp_path), sysfs_devices=str(sysfs)),
                         reset=reset, clock=lambda: 1234.5)
    return backend, store, sysfs


def test_adapter_resets_the_instance_enable_bound_and_records_it(tmp_path):
    calls = []
    backend, store, sysfs = _backend(tmp_path, lambda *a, **k: calls.append((a, k)))
    path = "core/pscsi_1000/" + NAME
    backend._do(("write", path + "/enable", "1"))
    ino = str(os.stat(str(sysfs / "1:0:6:0")).st_ino)
    backend._do(("reset", path))
    assert calls == [((builders.Hctl(1, 0, 6, 0), ino), {"sysfs_devices": str(sysfs)})]
    assert (store / "alias").read_text() == \
        "tapeshared sysfs-ino=%s reset=1234.500 scope=drive" % ino
    seen = backend.observe().detail.backstores[NAME]
    assert (seen.reset_at, seen.reset_scope, seen.enabled) == (1234.5, "drive", True)


def test_adapter_refuses_to_reset_a_backstore_without_its_binding_record(tmp_path):
    calls = []
    backend, store, _ = _backend(tmp_path, lambda *a, **k: calls.append(a))
    with pytest.raises(TransientError, match="does not record which device"):
        backend._do(("reset", "core/pscsi_1000/" + NAME))
    assert calls == []


def test_a_failed_reset_stops_the_apply_before_the_mapping(tmp_path):
    def refuse(*args, **kwargs):
        raise TransientError("reset of the device at 1:0:6:0: the host adapter could not "
                             "reset the logical unit")
    backend, store, _ = _backend(tmp_path, refuse)
    path = "core/pscsi_1000/" + NAME
    backend._do(("write", path + "/enable", "1"))
    os.makedirs(str(tmp_path / TPG / "acls" / INIT / "lun_0"))
    ops = (("reset", path), ("symlink", TPG + "/lun/lun_0", LINK))
    with pytest.raises(TransientError, match="could not reset"):
        backend.apply(Plan(ops=ops), desired_state(builders.config(backend="lio"), []))
    assert not os.path.lexists(str(tmp_path / LINK))  # never mapped unreset
    assert "reset=" not in (store / "alias").read_text()


# -- several initiators: a LUN reset inside LIO ------------------------------------

def test_several_initiators_get_a_lun_reset_inside_lio_after_every_mapping():
    cfg = builders.config(builders.export(iqns=(INIT, SECOND)), backend="lio")
    ops = lioplan.plan_ops(liostate.LioState(), desired_state(cfg, [tape("1:0:6:0")]), 3260)
    k = keys(ops)
    (store,) = resets(ops)
    links = [i for i, key in enumerate(k) if key[0] == "symlink" and "/acls/" in key[1]]
    # the loopback nexus is probed before the drive's reset (its probe must not
    # take the drive's 29h) and the mappings, LIO's LUN reset after them
    assert k.index(("loopup", store)) < k.index(("reset", store)) < links[0] < links[1] \
        < k.index(("lunreset", store))
    one = plan(liostate.LioState(), [tape("1:0:6:0")])
    assert not [op for op in one if op[0] in ("loopup", "lunreset")]


def test_a_leftover_loopback_target_is_removed_first():
    state = simulate(liostate.LioState(), plan(liostate.LioState(), [tape("1:0:6:0")]))
    state.loopbacks = {"naa.5001405e0badf00d"}
    assert plan(state, [tape("1:0:6:0")]) == [("unloop", "naa.5001405e0badf00d")]


def configfs_rmdir(monkeypatch):
    """mkdir and rmdir as configfs does them: a loopback tpg comes with its
    default group `lun` and goes with it and its attributes."""
    real = os.rmdir

    def rmdir(path, **kwargs):
        if os.path.basename(path) == "tpgt_1" and not kwargs:
            for name in os.listdir(path):
                target = os.path.join(path, name)
                if name == "lun" and os.path.isdir(target) and not os.listdir(target):
                    real(target)
                elif not os.path.isdir(target):
                    os.unlink(target)
        real(path, **kwargs)

    made = os.mkdir

    def mkdir(path, *args, **kwargs):
        made(path, *args, **kwargs)
        if os.path.basename(path) == "tpgt_1" and "/loopback/" in path:
            made(os.path.join(path, "lun"))
    monkeypatch.setattr(os, "rmdir", rmdir)
    monkeypatch.setattr(os, "mkdir", mkdir)


def _loop_backend(tmp_path, monkeypatch, calls):
    from tapeshared.host import loopreset
    configfs_rmdir(monkeypatch)
    backend, store, sysfs = _backend(tmp_path, lambda *a, **k: calls.append(("reset",) + a))
    backend.tur = lambda *a, **k: calls.append(("tur",) + a)
    path = "core/pscsi_1000/" + NAME
    backend._do(("write", path + "/enable", "1"))
    backend._reset(path)
    monkeypatch.setattr(loopreset, "_device", lambda base, sysfs: builders.Hctl(9, 0, 1, 0))
    monkeypatch.setattr(loopreset.scsireset, "sg_ready", lambda *a, **k: "/dev/sg9")
    return backend, store, path


def test_the_lun_reset_uses_its_own_loopback_nexus_and_removes_it(tmp_path, monkeypatch):
    calls = []
    backend, store, path = _loop_backend(tmp_path, monkeypatch, calls)
    os.makedirs(str(tmp_path / "loopback"))
    backend._do(("loopup", path))
    (wwn,) = os.listdir(str(tmp_path / "loopback"))
    base = tmp_path / "loopback" / wwn / "tpgt_1"
    assert wwn.startswith("naa.5001405e") and (base / "nexus").read_text().startswith("naa.")
    assert os.readlink(str(base / "lun" / "lun_0" / NAME)) == str(tmp_path / path)
    backend._do(("lunreset", path))
    assert calls[-2][:2] == ("reset", builders.Hctl(9, 0, 1, 0))  # the loopback device
    assert calls[-1][:2] == ("tur", builders.Hctl(1, 0, 6, 0))  # the drive's own UA taken
    assert os.listdir(str(tmp_path / "loopback")) == []
    assert (store / "alias").read_text().endswith("reset=1234.500 scope=target")
    assert backend.observe().detail.loopbacks == set()


def test_without_tcm_loop_only_the_drive_tells_and_a_warning_says_so(tmp_path, monkeypatch,
                                                                     caplog):
    calls = []
    backend, store, path = _loop_backend(tmp_path, monkeypatch, calls)
    (tmp_path / "loopback").write_text("")  # no loopback fabric can be made here
    backend._do(("loopup", path))
    backend._do(("lunreset", path))
    assert [c[0] for c in calls] == ["reset"]  # the drive reset only
    assert (store / "alias").read_text().endswith("scope=drive")
    assert "only the first initiator command learns of the reset" in caplog.text


def test_leftover_loopbacks_are_ours_by_name_only(tmp_path, monkeypatch):
    from tapeshared.host import loopreset
    configfs_rmdir(monkeypatch)
    for name in ("naa.5001405e00000001", "naa.5001405123456789", "fc.0001"):
        os.makedirs(str(tmp_path / "loopback" / name / "tpgt_1" / "lun" / "lun_0"))
    assert loopreset.leftovers(str(tmp_path)) == ["naa.5001405e00000001"]
    loopreset.teardown(str(tmp_path), "naa.5001405e00000001")
    assert sorted(os.listdir(str(tmp_path / "loopback"))) == ["fc.0001",
                                                               "naa.5001405123456789"]
