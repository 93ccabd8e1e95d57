"""Strict config: every error names file, section and key; drop-ins apply in order."""

import os

import pytest

from tapeshared import config
from tapeshared.core.errors import ConfigError
from tapeshared.core.model import Match


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    return path


@pytest.fixture
def conf(tmp_path):
    return str(tmp_path / "tapeshared.conf")


def load_text(conf, text):
    write(conf, text)
    return config.load(conf)


def test_minimal_export_and_defaults(conf):
    cfg = load_text(conf, "[export tape0]\nserial = HU19487TL1\ninitiators = 192.0.2.10\n")
    export = cfg.exports[0]
    assert export.iqn == "iqn.2007-04.com.example:tape0"
    assert export.luns[0].lun == 0 and export.luns[0].match == Match("serial", "HU19487TL1")
    assert export.initiators == ("192.0.2.10/32",)
    assert export.absent == "keep" and export.allow_remote is False
    assert cfg.globals.backend == "iet" and cfg.globals.port == 3260


def test_library_with_numbered_luns_and_wwn_normalised(conf):
    cfg = load_text(conf, "[export lib]\nlun0 = serial:CH1\nlun2 = wwn:0x5000E111000000AA\n"
                          "lun1 = wwn:naa.5000e111000000bb\ninitiators = ALL\n")
    luns = cfg.exports[0].luns
    assert [lun.lun for lun in luns] == [0, 1, 2]
    assert luns[1].match == Match("wwn", "5000e111000000bb")
    assert luns[2].match == Match("wwn", "5000e111000000aa")


def test_dropins_apply_in_sorted_order(conf, tmp_path):
    write(conf, "[global]\nport = 3261\n[export a]\nserial = A1\ninitiators = 192.0.2.1\n")
    write(str(tmp_path / "conf.d" / "20-late.conf"), "[global]\nport = 3262\n")
    write(str(tmp_path / "conf.d" / "10-early.conf"),
          "[global]\nport = 3999\n[export b]\nserial = B1\ninitiators = 192.0.2.2\n")
    write(str(tmp_path / "conf.d" / "ignored.txt"), "garbage")
    cfg = config.load(conf)
    assert cfg.globals.port == 3262
    assert [e.name for e in cfg.exports] == ["a", "b"]
    assert cfg.sources[1:] == (str(tmp_path / "conf.d" / "10-early.conf"),
                               str(tmp_path / "conf.d" / "20-late.conf"))


@pytest.mark.parametrize("text, where, what", [
    ("[global]\nbackend = scst\n", "[global]:backend", "expected one of iet | lio | tgt"),
    ("[global]\nportt = 3260\n", ":2:[global]:portt", "unknown key"),
    ("[global]\nport = 70000\n", "[global]:port", "out of range"),
    ("[global]\nportal = 192.0.2.300\n", "[global]:portal", "not an IP address"),
    ("[global]\nietd_conf = etc/ietd.conf\n", "[global]:ietd_conf", "absolute path"),
    ("[global]\nrestart_command = '/etc/init.d/x\n", "[global]:restart_command",
     "quotation"),
    ("[exports tape0]\n", "[exports tape0]", "unknown section"),
    ("[export tape0]\ninitiators = 192.0.2.1\n", "[export tape0]", "no device"),
    ("[export tape0]\nserial = A\n", "[export tape0]:initiators", "required"),
    ("[export tape0]\nserial = A\ninitiators = 192.0.2.1/24\n",
     "[export tape0]:initiators", "host bits set"),
    ("[export tape0]\nserial = A\ninitiators = ALL, 192.0.2.1\n",
     "[export tape0]:initiators", "ALL cannot be combined"),
    ("[export tape0]\nserial = A B\ninitiators = ALL\n", "[export tape0]:serial",
     "not allowed in an identity"),
    ("[export tape0]\nwwn = 12345\ninitiators = ALL\n", "[export tape0]:wwn", "NAA/EUI"),
    ("[export tape0]\nserial = A\nwwn = 5000e11100000001\ninitiators = ALL\n",
     "[export tape0]:wwn", "not both"),
    ("[export tape0]\nserial = A\nlun1 = serial:B\ninitiators = ALL\n",
     "[export tape0]:lun1", "not both"),
    ("[export lib]\nlun1 = serial:A\nlun01 = serial:B\ninitiators = ALL\n",
     "[export lib]:lun1", "LUN 1 given twice"),
    ("[export lib]\nlun0 = disk:A\ninitiators = ALL\n", "[export lib]:lun0",
     "serial:VALUE or wwn:VALUE"),
    ("[export lib]\nlun16384 = serial:A\ninitiators = ALL\n", "[export lib]:lun16384",
     "above 16383"),
    ("[export t]\nserial = A\ninitiators = ALL\nabsent = vanish\n", "[export t]:absent",
     "keep | remove"),
    ("[export t]\nserial = A\ninitiators = ALL\nsession.MaxBurstLength = big\n",
     "[export t]:session.maxburstlength", "whole number"),
    ("[export t]\nserial = A\ninitiators = ALL\nsession.Frobnicate = 1\n",
     "[export t]:session.frobnicate", "unknown session parameter"),
    ("[export t]\nserial = A\ninitiators = ALL\niqn = IQN-bad\n", "[export t]:iqn",
     "not a valid iSCSI name"),
    ("[export bad_name]\nserial = A\ninitiators = ALL\n", ":1: export name 'bad_name'",
     "export name"),
    ("[export t]\nserial = A\ninitiators = ALL\nincoming_user = u\n",
     "[export t]:incoming_user", "go together"),
    ("[export t]\nserial = A\ninitiators = ALL\n[export u]\nserial = A\n"
     "initiators = ALL\n", "[export u]", "device serial:A is also configured"),
    ("[export t]\nserial = A\ninitiators = ALL\n[export u]\nserial = B\ninitiators = ALL\n"
     "iqn = iqn.2007-04.com.example:t\n", "[export u]:iqn", "also used by [export t]"),
    ("[global]\nport = 1\nport = 2\n", ":3:[global]:port", "given twice in this section "
     "(first at line 2)"),
])
def test_errors_name_file_section_key(conf, text, where, what):
    write(conf, text)
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    message = str(info.value)
    assert message.startswith(conf), message
    assert where in message, message
    assert what in message, message


def test_export_defined_in_two_files_names_both(conf, tmp_path):
    write(conf, "[export t]\nserial = A\ninitiators = ALL\n")
    other = write(str(tmp_path / "conf.d" / "t.conf"), "[export t]\nserial = B\n")
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert str(info.value).startswith(other) and conf in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(str(tmp_path / "nope.conf"))


def test_chap_secret_file_must_be_private(conf, tmp_path):
    secret = tmp_path / "chap"
    secret.write_text("averylongsecret1\n")
    os.chmod(str(secret), 0o644)
    text = ("[export t]\nserial = A\ninitiators = ALL\nincoming_user = backup\n"
            "incoming_secret_file = %s\n" % secret)
    write(conf, text)
    with pytest.raises(ConfigError) as info:
        config.load(conf)
    assert "[export t]:incoming_secret_file" in str(info.value)
    assert "0644" in str(info.value)
    assert "averylongsecret1" not in str(info.value)
    os.chmod(str(secret), 0o600)
    cfg = config.load(conf)
    assert cfg.exports[0].incoming[0].secret == "averylongsecret1"
    assert "averylongsecret1" not in repr(cfg)


def test_initiators_are_normalised_sorted_and_deduplicated(conf):
    cfg = load_text(conf, "[export t]\nserial = A\ninitiators = 2001:db8::/32 "
                          "198.51.100.0/24,192.0.2.7 192.0.2.7\n")
    assert cfg.exports[0].initiators == ("192.0.2.7/32", "198.51.100.0/24",
                                         "2001:db8::/32")
