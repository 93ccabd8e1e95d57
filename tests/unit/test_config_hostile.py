"""Hostile config input: every bad file is a ConfigError at file:line, found by check-config."""

import os
import re

import pytest
from support.configcases import CASES, OK, export

from tapeshared import config
from tapeshared.core.errors import ConfigError
from tapeshared.core.names import network_problem, parse_portal
from tapeshared.firewall.spec import FirewallSpec, normalize_portals, normalize_sources, validated


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


IDS = ["%02d" % n for n in range(len(CASES))]


@pytest.fixture
def conf(tmp_path):
    return str(tmp_path / "tapeshared.conf")


@pytest.mark.parametrize("text, where, what", CASES, ids=IDS)
def test_every_bad_input_is_a_config_error_at_its_line(conf, text, where, what):
    write(conf, text)
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    message = str(info.value)
    assert message.startswith(conf + where), message
    assert what in message, message
    assert "\n" not in message.replace("\\n", "")


def test_a_managed_file_that_is_a_config_file_is_refused(conf, tmp_path):
    write(conf, OK)
    dropin = write(str(tmp_path / "conf.d" / "iet.conf"), "[global]\nietd_conf = %s\n"
                   % os.path.join(str(tmp_path), "conf.d", ".", "iet.conf"))
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value).startswith(dropin + ":2:[global]:ietd_conf: ")
    assert "is also the configuration file %s" % dropin in str(info.value)


def test_the_same_export_in_a_dropin_names_both_places(conf, tmp_path):
    write(conf, "# main\n" + OK)
    other = write(str(tmp_path / "conf.d" / "10-t.conf"), "\n[export t]\nserial = B\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value) == "%s:2:[export t]: export defined twice (also at %s:2)" % (
        other, conf)


def test_a_global_key_in_a_dropin_overrides_and_errors_point_at_the_dropin(conf, tmp_path):
    write(conf, "[global]\nport = 3261\n" + OK)
    other = write(str(tmp_path / "conf.d" / "10-port.conf"), "\n\n[global]\nport = 0\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value).startswith(other + ":4:[global]:port: ")


def test_errors_on_a_missing_key_point_at_the_section_header(conf, tmp_path):
    write(conf, OK)
    write(str(tmp_path / "conf.d" / "lio.conf"), "\n[global]\nbackend = lio\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value).startswith(conf + ":1:[export t]:initiator_iqns: required")


def test_duplicate_devices_and_iqns_name_both_places(conf):
    write(conf, OK + "[export u]\ninitiators = ALL\nserial = A\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value) == ("%s:6:[export u]:serial: device serial:A is also configured "
                               "in [export t] LUN 0 (%s:2)" % (conf, conf))
    write(conf, OK + "[export u]\nserial = B\ninitiators = ALL\n"
          "iqn = iqn.2007-04.com.example:t\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value) == ("%s:7:[export u]:iqn: IQN iqn.2007-04.com.example:t is also "
                               "used by [export t] (%s:1)" % (conf, conf))


def test_comments_after_a_value_need_only_one_space(conf):
    cfg = config.load(write(conf, "[global]\nport = 3261 # the second portal\n"
                                  "[export t] ; a drive\nserial = A\n"
                                  "initiators = 192.0.2.1\t# office\n  192.0.2.2 ; lab\n"))
    assert cfg.globals.port == 3261
    assert cfg.exports[0].initiators == ("192.0.2.1/32", "192.0.2.2/32")


def test_crlf_files_and_good_edge_values_are_accepted(conf):
    cfg = config.load(write(conf, (
        "[global]\r\nportal = [2001:db8::1]\r\nfirewall = nftables\r\n"
        "firewall_chain = ts_chain\r\n[export t]\r\nwwn = 5000e11100000001\r\n"
        "initiators = 10.0.0.0/8, 2001:db8::/32\r\niqn = naa.0123456789abcdef0123456789abcdef"
        "\r\ninitiator_iqns = eui.0123456789abcdef\r\n")))
    assert cfg.globals.portal == "2001:db8::1"
    assert cfg.exports[0].iqn == "naa.0123456789abcdef0123456789abcdef"
    assert parse_portal("eth0:1").interface == "eth0:1"
    assert parse_portal("br-lan.10").interface == "br-lan.10"


def test_config_that_is_not_a_regular_file_is_refused_without_blocking(conf):
    os.mkfifo(conf)
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load(conf)


def test_a_non_utf8_secret_file_is_a_config_error(conf, tmp_path):
    secret = write(str(tmp_path / "chap"), b"\xff\xfe secret\n")
    os.chmod(secret, 0o600)
    write(conf, export("incoming_user = u\nincoming_secret_file = %s" % secret))
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value).startswith(conf + ":5:[export t]:incoming_secret_file: ")
    assert "not UTF-8" in str(info.value)


@pytest.mark.parametrize("value", ["192.0.2.1", "2001:db8::1", "0.0.0.0", "::", "224.0.0.1",
                                   "fe80::1", "::ffff:192.0.2.1", "255.255.255.255"])
def test_the_firewall_spec_follows_the_config_portal_rule(value):
    try:
        parse_portal(value)
        accepted = True
    except ValueError:
        accepted = False
    if accepted:
        assert normalize_portals([value]) == (value,)
    else:
        with pytest.raises(ValueError):
            normalize_portals([value])


@pytest.mark.parametrize("value", ["192.0.2.0/24", "2001:db8::/32", "224.0.0.0/4",
                                   "ff00::/8", "fe80::/64", "fe80::1", "::ffff:10.0.0.1",
                                   "0.0.0.0", "10.0.0.1/8", "0.0.0.0/0", "::/0"])
def test_the_firewall_spec_follows_the_config_initiator_rule(value):
    if network_problem(value) is None:
        assert normalize_sources([value])
    else:
        with pytest.raises(ValueError):
            normalize_sources([value])


def test_the_firewall_spec_refuses_a_parent_equal_to_the_chain():
    with pytest.raises(ValueError, match="our own chain"):
        validated(FirewallSpec(chain="TS", parent="TS"))


def test_a_config_file_or_dropin_folder_others_can_write_is_refused(conf, tmp_path):
    write(conf, OK)
    os.chmod(conf, 0o666)
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value) == ("%s: writable by group or others (mode 0666): anyone could "
                               "change the commands tapeshared runs; chmod go-w" % conf)
    os.chmod(conf, 0o644)
    folder = tmp_path / "conf.d"
    folder.mkdir()
    os.chmod(str(folder), 0o777)
    with pytest.raises(ConfigError, match="^%s: writable by group or others" % re.escape(
            str(folder))):
        config.load(conf)
    os.chmod(str(folder), 0o755)
    assert config.load(conf).exports[0].name == "t"
