"""Renders by golden files; properties: deterministic, order-free, no injection."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from support import builders

from tapeshared.backends.iet import access as ietaccess
from tapeshared.backends.iet import conf as ietconf
from tapeshared.core.desired import desired_state
from tapeshared.core.identity import identity_text
from tapeshared.core.model import Chap, Hctl

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def golden(name, text):
    """Compare with tests/golden/NAME; UPDATE_GOLDEN=1 rewrites it."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read()


def sample_config():
    return builders.config(
        builders.export(serial="HU19487TL1", initiators=("192.0.2.10/32", "2001:db8::7/128"),
                        iqns=(), chap=Chap("backup", "in-secret-123"),
                        mutual=Chap("target", "out-secret-456"),
                        params=(("MaxBurstLength", "262144"), ("HeaderDigest", "None"))),
        builders.export(name="lib", iqn="iqn.2007-04.com.example:lib",
                        luns=((0, "serial", "CH01"), (1, "serial", "DRV01"),
                              (2, "wwn", "5000e11100000002")),
                        initiators=("198.51.100.0/24", "2001:db8:1::/48"), iqns=(),
                        absent="remove"))


def sample_devices():
    return [builders.tape("10:0:6:0", serial="HU19487TL1"),
            builders.tape("2:0:1:0", serial="CH01", kind=8),
            builders.tape("2:0:2:0", serial="DRV01")]


def test_ietd_conf_golden():
    state = desired_state(sample_config(), sample_devices())
    golden("ietd.conf", ietconf.merge("# site settings\nMaxConnections 1\n", state,
                                      "ietd.conf"))


def test_ietd_conf_masked_golden():
    state = desired_state(sample_config(), sample_devices())
    golden("ietd.conf.masked", ietaccess.mask_secrets(ietconf.render_block(state)))


def test_initiators_golden():
    state = desired_state(sample_config(), sample_devices())
    golden("initiators.allow", ietaccess.merge("ALL 192.0.2.200\n",
                                               ietaccess.allow_lines(state), "allow"))
    golden("initiators.deny", ietaccess.merge("", ietaccess.deny_lines(state), "deny"))


@settings(max_examples=60, deadline=None)
@given(st.permutations(sample_devices()))
def test_render_does_not_depend_on_enumeration_order(devices):
    reference = ietconf.render_block(desired_state(sample_config(), sample_devices()))
    assert ietconf.render_block(desired_state(sample_config(), devices)) == reference


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 4096), st.integers(0, 300))
def test_no_device_string_can_inject_a_line(raw, host, target):
    serial, _problem = identity_text(raw)
    if serial is None:
        return  # rejected: the device cannot be configured by this serial at all
    export = builders.export(name="t", iqn="iqn.2007-04.com.example:t", serial=serial,
                             initiators=("192.0.2.1/32",), iqns=())
    device = builders.tape("%d:0:%d:0" % (host, target), serial=serial,
                           vendor=raw.decode("latin-1"), model=raw.decode("latin-1"))
    state = desired_state(builders.config(export), [device])
    block = ietconf.render_block(state)
    lines = block.splitlines()
    assert lines[0] == ietconf.BEGIN and lines[-1] == ietconf.END
    significant = [line.split()[0] for line in lines[1:-1]
                   if not line.lstrip().startswith("#")]
    assert significant == ["Target", "Lun", "Type"]
    assert ietconf.previous_luns(block) == {("iqn.2007-04.com.example:t", 0):
                                            Hctl(host, 0, target, 0)}
    allow = ietaccess.merge(None, ietaccess.allow_lines(state), "allow")
    assert len(allow.splitlines()) == 3


def test_slash_32_is_never_rendered():
    assert ietaccess.iet_address("192.0.2.1/32") == "192.0.2.1"
    assert ietaccess.iet_address("2001:db8::1/128") == "[2001:db8::1]"
    assert ietaccess.iet_address("2001:db8::/32") == "[2001:db8::]/32"
    assert ietaccess.iet_address("ALL") == "ALL"
