"""Desired state (pure): squatters, one drive named twice, clones, typo hints."""

from hypothesis import given, settings
from hypothesis import strategies as st
from support import builders

from tapeshared.core.desired import desired_state
from tapeshared.core.model import Config, Device, GlobalConfig, Hctl


def cfg(*exports):
    return builders.config(*exports)


def only_lun(state, target=0, lun=0):
    return state.targets[target].luns[lun]


def test_a_disk_with_the_configured_serial_is_never_matched():
    disk = builders.tape("1:0:6:0", serial="HU1", kind=0)
    state = desired_state(cfg(builders.export(absent="remove")), [disk])
    lun = only_lun(state)
    assert (lun.status, lun.hctl) == ("absent", None)
    assert "not a tape or changer" in lun.note
    assert any("disk 1:0:6:0" in p for p in state.problems), state.problems


def test_a_squatter_with_the_same_serial_is_named_as_such():
    disk = builders.tape("1:0:6:0", serial="HU1", kind=0)
    state = desired_state(cfg(builders.export()), [disk], {(builders.IQN, 0): Hctl(1, 0, 6, 0)})
    lun = only_lun(state)
    assert (lun.status, lun.hctl, lun.last) == ("squatted", None, Hctl(1, 0, 6, 0))
    assert "the same serial, but not a tape or changer" in lun.note


def test_kept_only_while_nothing_sits_at_the_address():
    previous = {(builders.IQN, 0): Hctl(1, 0, 6, 0)}
    lun = only_lun(desired_state(cfg(builders.export()), [], previous))
    assert (lun.status, lun.hctl) == ("kept", Hctl(1, 0, 6, 0))
    elsewhere = builders.tape("2:0:0:0", serial="OTHER", kind=0)
    assert only_lun(desired_state(cfg(builders.export()), [elsewhere], previous)).status == \
        "kept"


def test_a_clone_is_ambiguous_never_absent_and_never_kept():
    clones = [builders.tape("1:0:6:0", serial="HU1"), builders.tape("5:0:6:0", serial="HU1")]
    previous = {(builders.IQN, 0): Hctl(1, 0, 6, 0)}
    for absent in ("keep", "remove"):
        state = desired_state(cfg(builders.export(absent=absent)), clones, previous)
        lun = only_lun(state)
        assert (lun.status, lun.hctl) == ("ambiguous", None)
        text = " ".join(state.problems) + lun.note
        assert "ambiguous" in text and "absent" not in text, text
        assert "1:0:6:0, 5:0:6:0" in text


def test_a_serial_differing_only_in_case_or_whitespace_gets_a_hint():
    device = builders.tape("1:0:6:0", serial="HU19487TL1")
    for typed in ("hu19487tl1", "Hu19487Tl1"):
        state = desired_state(cfg(builders.export(serial=typed, absent="remove")), [device])
        lun = only_lun(state)
        assert lun.status == "absent"
        assert "did you mean serial = HU19487TL1?" in lun.note, lun.note
        assert any("did you mean" in p for p in state.problems)
    wwn = builders.tape("1:0:6:0", serial=None, wwn="5000e11156304001")
    export = builders.export(luns=[(0, "wwn", " 5000E11156304001 ")], absent="remove")
    assert "did you mean wwn = 5000e11156304001?" in only_lun(
        desired_state(cfg(export), [wwn])).note
    # a different serial gets no hint
    other = desired_state(cfg(builders.export(serial="HU2", absent="remove")), [device])
    assert only_lun(other).note == "absent" and other.problems == ()


def test_one_drive_named_by_serial_and_wwn_in_two_exports_is_refused_at_both():
    drive = builders.tape("1:0:6:0", serial="HU1", wwn="5000e11156304001")
    a = builders.export(name="a", iqn="iqn.2007-04.com.example:a", serial="HU1")
    b = builders.export(name="b", iqn="iqn.2007-04.com.example:b",
                        luns=[(1, "wwn", "5000e11156304001")])
    state = desired_state(cfg(a, b), [drive])
    assert [only_lun(state, t).status for t in (0, 1)] == ["duplicate", "duplicate"]
    assert [only_lun(state, t).hctl for t in (0, 1)] == [None, None]
    assert any("[export a] lun 0 (serial:HU1) and [export b] lun 1 (wwn:5000e11156304001)"
               in p for p in state.problems), state.problems
    assert "[export b] lun 1" in only_lun(state, 0).note
    assert "[export a] lun 0" in only_lun(state, 1).note
    # the order exports are given in does not matter
    assert desired_state(cfg(b, a), [drive]) == state


def test_two_luns_kept_at_one_address_are_refused_too():
    export = builders.export(luns=[(0, "serial", "HU1"), (1, "serial", "HU2")])
    previous = {(builders.IQN, 0): Hctl(1, 0, 6, 0), (builders.IQN, 1): Hctl(1, 0, 6, 0)}
    state = desired_state(cfg(export), [], previous)
    assert [lun.status for lun in state.targets[0].luns] == ["duplicate", "duplicate"]

_ADDRESSES = st.sampled_from([Hctl(h, 0, t, 0) for h in (1, 2) for t in (0, 1, 2)])
_SERIALS = st.sampled_from(["S1", "S2", "S3"])
_WWNS = st.sampled_from([None, "5000e11156304001", "5000e11156304002"])


@st.composite
def worlds(draw):
    devices = []
    for hctl in draw(st.sets(_ADDRESSES, max_size=5)):
        devices.append(Device(hctl, draw(st.sampled_from([0, 1, 1, 8, 13])),
                              serial=draw(st.one_of(st.none(), _SERIALS)), wwn=draw(_WWNS),
                              remote=draw(st.booleans())))
    exports = []
    previous = {}
    for index in range(draw(st.integers(1, 3))):
        iqn = "iqn.2007-04.com.example:t%d" % index
        luns = []
        for number in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from(["serial", "wwn"]))
            value = draw(_SERIALS) if kind == "serial" else draw(_WWNS.filter(bool))
            luns.append((number, kind, value))
            if draw(st.booleans()):
                previous[(iqn, number)] = draw(_ADDRESSES)
        exports.append(builders.export(name="t%d" % index, iqn=iqn, luns=luns,
                                       absent=draw(st.sampled_from(["keep", "remove"]))))
    return devices, Config(GlobalConfig(), tuple(exports)), previous


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_never_the_wrong_device_never_one_address_twice(world):
    devices, config, previous = world
    state = desired_state(config, devices, previous)
    at = {d.hctl: d for d in devices}
    used = []
    for target in state.targets:
        for lun in target.exported_luns:
            used.append(lun.hctl)
            here = at.get(lun.hctl)
            if lun.status == "present":
                assert here is not None and here.exportable and lun.match.matches(here)
            else:  # kept: nothing may sit at the address
                assert lun.status == "kept" and here is None
    assert len(used) == len(set(used)), "one address exported twice"
