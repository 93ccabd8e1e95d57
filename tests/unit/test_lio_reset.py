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
    assert k.index(("write", "core/pscsi_1000/%s/enable" % old)) < k.index(
        ("reset", "core/pscsi_1000/" + old)) < k.index(("symlink", LINK))


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
