"""import's parsers and renderer (pure): what each old file says, what is carried,
what is said to be left out, and file:line errors for hostile input."""

import json
import os

import pytest
from support import builders
from support.paths import ROOT

from tapeshared.core.errors import ConfigError
from tapeshared.core.model import Hctl
from tapeshared.migrate import ietd, targetcli, tgt
from tapeshared.migrate.render import Existing, render

DATA = os.path.join(str(ROOT), "tests", "data", "import")
SEED = open(os.path.join(DATA, "seed-ietd.conf")).read()
IQN = "iqn.2001-04.com.example:seed.dds4"


def data(name):
    with open(os.path.join(DATA, name)) as handle:
        return handle.read()


def test_the_seed_stanza_is_read_whole():
    setup = ietd.parse(SEED, "/etc/ietd.conf")
    (target,) = setup.targets
    assert target.iqn == IQN and target.span == (2, 7)
    assert [(lun.lun, lun.hctl, lun.passthrough) for lun in target.luns] == [
        (0, Hctl(1, 0, 6, 0), True)]
    assert target.incoming == [("backup", "s3cretpassw0rd")]
    assert target.outgoing == ("target", "t4rgetsecret1")
    assert target.params == [("maxconnections", "1")]
    assert not setup.notes
    assert all("s3cret" not in line and "t4rget" not in line for line in target.removal)
    assert target.removal[1] == "/etc/ietd.conf:3: IncomingUser backup ********"


def test_initiators_allow_first_line_per_target_and_all():
    setup = ietd.parse(SEED + "Target iqn.2001-04.com.example:other\n", "/etc/ietd.conf")
    ietd.parse_allow(data("seed-initiators.allow") + IQN + " 192.0.2.1\n"
                     "ALL tape-host.example\n", "/etc/initiators.allow", setup)
    seed, other = setup.targets
    assert seed.initiators == ["192.168.1.10/32", "10.0.0.0/24"]  # the first line wins
    assert other.initiators == ["192.168.1.0/24"]  # the ALL line
    assert seed.removal[-1] == "/etc/initiators.allow:2: %s 192.168.1.10, 10.0.0.0/24" % IQN
    assert any("tape-host.example" in n and "not carried over" in n for n in setup.notes)


@pytest.mark.parametrize("text, line, what", [
    ("Target iqn.2001-04.com.example:x\n\tLun 0\n", 2, "expected `Lun N ARGS`"),
    ("Target iqn.2001-04.com.example:x\n\tLun 99999 H=1,C=0,I=0,L=0,Type=rawio\n", 2,
     "expected `Lun N ARGS`"),
    ("Target not-an-iqn\n", 1, "target 'not-an-iqn'"),
    ("Target iqn.2001-04.com.example:x\nTarget iqn.2001-04.com.example:x\n", 2, "twice"),
    ("Target iqn.2001-04.com.example:x\n\tLun 0 H=1,C=0,I=0,L=0,Type=rawio\n"
     "\tLun 0 H=1,C=0,I=1,L=0,Type=rawio\n", 3, "LUN 0 given twice"),
    ("Target iqn.2001-04.com.example:x\n\tIncomingUser onlyuser\n", 2, "USER SECRET"),
    ("# caf\u00e9\n", 1, "control or non-ASCII"),
    ("Target iqn.2001-04.com.example:x\n\tLun 0 H=1\x1b[2J\n", 2, "control"),
])
def test_a_malformed_ietd_conf_names_file_and_line(text, line, what):
    with pytest.raises(ConfigError) as caught:
        ietd.parse(text, "/etc/ietd.conf")
    assert str(caught.value).startswith("/etc/ietd.conf:%d: " % line)
    assert what in str(caught.value)


def test_the_seed_renders_by_serial_with_secret_files():
    setup = ietd.parse(SEED, "/etc/ietd.conf")
    ietd.parse_allow(data("seed-initiators.allow"), "/etc/initiators.allow", setup)
    out = render(setup, [builders.tape("1:0:6:0", serial="HU10125DDS", sg="/dev/sg1")],
                 Existing(), "/etc/tapeshared/secrets")
    assert "[export seed.dds4]\niqn = %s\n" % IQN in out.text
    assert "lun0 = serial:HU10125DDS\n" in out.text
    assert "initiators = 192.168.1.10/32, 10.0.0.0/24\n" in out.text
    assert out.secrets == [("/etc/tapeshared/secrets/seed.dds4.incoming", "s3cretpassw0rd"),
                           ("/etc/tapeshared/secrets/seed.dds4.outgoing", "t4rgetsecret1")]
    assert "s3cret" not in out.text and not out.notes and out.exports == 1


def test_what_cannot_be_carried_is_said():
    text = SEED + ("Target iqn.2001-04.com.example:mixed\n"
                   "\tLun 0 H=2,C=0,I=0,L=0,Type=rawio\n"   # a disk there now
                   "\tLun 1 Path=/srv/img,Type=fileio\n"    # a disk image
                   "\tLun 2 H=3,C=0,I=0,L=0,Type=rawio\n"   # nothing there
                   "\tLun 3 H=4,C=0,I=0,L=0,Type=rawio\n")  # a tape without identity
    devices = [builders.tape("1:0:6:0", serial="HU10125DDS"),
               builders.tape("2:0:0:0", serial="DISK1", kind=0),
               builders.tape("4:0:0:0", serial=None)]
    out = render(ietd.parse(text, "/e"), devices, Existing(names={"seed.dds4"}), "/s")
    assert "[export seed.dds4-2]" in out.text  # an existing name is never reused
    notes = "\n".join(out.notes)
    assert "2:0:0:0 is a disk, not a tape or changer: left alone" in notes
    assert "LUN 1 (Type=fileio, /e:10): not a pass-through tape; left alone" in notes
    assert "no device at '3:0:0:0' now (/e:11)" in notes
    assert "4:0:0:0 has no readable serial or WWN" in notes
    assert "mixed: no LUN could be carried over" in notes
    assert out.exports == 1


def test_an_existing_export_or_device_is_left_as_it_is():
    setup = ietd.parse(SEED, "/e")
    tape = builders.tape("1:0:6:0", serial="HU10125DDS")
    out = render(setup, [tape], Existing(iqns={IQN: "old"}), "/s")
    assert not out.text and "already configured as [export old]" in out.notes[0]
    out = render(setup, [tape], Existing(devices={"serial:HU10125DDS": "old"}), "/s")
    assert "already exported by [export old]" in "\n".join(out.notes)


def test_targetcli_saveconfig_made_by_real_targetcli():
    path = os.path.join(DATA, "targetcli-saveconfig.json")
    setup = targetcli.parse(data("targetcli-saveconfig.json"), path)
    (target,) = setup.targets
    assert target.iqn == "iqn.2003-01.org.linux-iscsi.e2e:dds4"
    (lun,) = target.luns
    assert lun.lun == 0 and lun.passthrough and (lun.hctl or lun.path)
    assert target.initiator_iqns == ["iqn.1994-05.com.example:tapeshared-e2e"]
    assert target.incoming == [("backup", "s3cretpassw0rd")]
    assert target.outgoing == ("target", "t4rgetsecret1")
    assert target.removal[0] == "targetcli /iscsi delete %s" % target.iqn
    device = builders.tape(str(lun.hctl) if lun.hctl else "2:0:0:0", serial="XYZZY",
                           sg=lun.path or "/dev/sg9")
    out = render(setup, [device], Existing(backend="lio"), "/s")
    assert "lun0 = serial:XYZZY\n" in out.text
    assert "initiator_iqns = iqn.1994-05.com.example:tapeshared-e2e\n" in out.text
    assert "initiators = ALL\n" in out.text and not out.notes


def test_targetcli_other_backstores_are_left_alone_and_bad_json_has_a_line():
    doc = {"storage_objects": [{"plugin": "fileio", "name": "img", "dev": "/srv/img"},
                               {"plugin": "pscsi", "name": "t", "dev": "/dev/sg3"}],
           "targets": [{"wwn": "iqn.2003-01.org.example:t", "fabric": "iscsi", "tpgs": [
               {"luns": [{"index": 0, "storage_object": "/backstores/fileio/img"},
                         {"index": 1, "storage_object": "/backstores/pscsi/t"}]}]},
               {"wwn": "naa.5001405", "fabric": "loopback"}]}
    setup = targetcli.parse(json.dumps(doc), "/s.json")
    out = render(setup, [builders.tape("5:0:0:0", serial="T1", sg="/dev/sg3")],
                 Existing(backend="lio"), "/s")
    assert "lun1 = serial:T1\n" in out.text and "lun0" not in out.text
    assert any("a fileio backstore" in n and "left alone" in n for n in out.notes)
    assert any("loopback" in n for n in out.notes)
    with pytest.raises(ConfigError) as caught:
        targetcli.parse('{\n "targets": [\n  {"wwn": }\n]}', "/s.json")
    assert str(caught.value).startswith("/s.json:3: not JSON")
    with pytest.raises(ConfigError):
        targetcli.parse(json.dumps({"storage_objects": [
            {"plugin": "pscsi", "name": "x", "dev": "../../etc/passwd"}]}), "/s.json")


TGT_CONF = """# tgt-admin configuration
default-driver iscsi
<target iqn.2008-09.com.example:tape>
    <direct-store /dev/sg1>
        lun 2
    </direct-store>
    backing-store /srv/disk.img
    initiator-address 192.0.2.10
    initiator-name iqn.1994-05.com.example:backup
    incominguser backup s3cretpassw0rd
    vendor_id HP
</target>
"""


def test_tgt_targets_conf():
    setup = tgt.parse_conf(TGT_CONF, "/etc/tgt/targets.conf")
    (target,) = setup.targets
    assert [(lu.lun, lu.path, lu.passthrough) for lu in target.luns] == [
        (2, "/dev/sg1", True), (1, "/srv/disk.img", False)]
    assert target.initiators == ["192.0.2.10"]
    assert target.initiator_iqns == ["iqn.1994-05.com.example:backup"]
    assert target.incoming == [("backup", "s3cretpassw0rd")]
    assert target.removal[0] == "/etc/tgt/targets.conf:3: <target iqn.2008-09.com.example:tape>"
    assert "incominguser backup ********" in "\n".join(target.removal)
    out = render(setup, [builders.tape("1:0:6:0", serial="HU1", sg="/dev/sg1")],
                 Existing(backend="tgt"), "/s")
    assert "lun2 = serial:HU1\n" in out.text and "initiators = 192.0.2.10\n" in out.text
    assert out.notes == ["iqn.2008-09.com.example:tape LUN 1 (bs-type rdwr, "
                         "/etc/tgt/targets.conf:7): not a pass-through tape; left alone"]


@pytest.mark.parametrize("text, line", [
    ("<target iqn.2008-09.com.example:a>\n<target iqn.2008-09.com.example:b>\n", 2),
    ("</target>\n", 1),
    ("<target bad name>\n", 1),
    ("<target iqn.2008-09.com.example:a>\n  direct-store /dev/sg1\x00\n</target>\n", 2),
])
def test_a_malformed_targets_conf_names_the_line(text, line):
    with pytest.raises(ConfigError) as caught:
        tgt.parse_conf(text, "/t.conf")
    assert str(caught.value).startswith("/t.conf:%d: " % line), str(caught.value)


def test_an_unclosed_target_is_refused():
    with pytest.raises(ConfigError, match="never closed"):
        tgt.parse_conf("<target iqn.2008-09.com.example:a>\n", "/t.conf")


def test_tgtadm_show_output():
    setup = tgt.parse_tgtadm_show(data("tgtadm-show.txt"), "show.txt")
    (target,) = setup.targets
    assert target.iqn == "iqn.2008-09.com.example:tape"
    assert [(lu.lun, lu.path, lu.passthrough) for lu in target.luns] == [(1, "/dev/sg1", True)]
    assert target.initiators == ["192.0.2.10"]
    assert target.removal == ["tgtadm --lld iscsi --mode target --op delete --tid 1"]
    assert any("do not show secrets" in n or "does not show secrets" in n
               for n in setup.notes)
