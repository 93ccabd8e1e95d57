"""`tapeshared import --from-ietd` on the seed setup: umockdev tape at 1:0:6:0, the
IET stand-in running the old ietd.conf; the import passes check-config and the
plan shows no change to the running export."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

from support.paths import ROOT
from support.udevbed import bed_fixture  # noqa: F401 - the fixture

from tapeshared import app, config
from tapeshared.backends.iet.backend import IetBackend
from tapeshared.host import udev
from tapeshared.host.lock import ApplyLock
from tapeshared.host.runner import Runner
from tapeshared.reconcile import Reconciler

DATA = os.path.join(str(ROOT), "tests", "data", "import")
IQN = "iqn.2001-04.com.example:seed.dds4"


def cli(bed, root, *argv):
    env = bed.env(dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C"))
    return subprocess.run([sys.executable, "-m", "tapeshared", "-c", root.conf] + list(argv),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          timeout=60, universal_newlines=True)


def seed(bed, ietroot):
    bed.add_tape("1:0:6:0", serial="HU10125DDS", wwn=None, vendor="HP", model="C5683A")
    shutil.copy(os.path.join(DATA, "seed-ietd.conf"), ietroot.ietd_conf)
    shutil.copy(os.path.join(DATA, "seed-initiators.allow"), ietroot.allow)
    ietroot.present("1:0:6:0")
    subprocess.run(ietroot.standin_argv("restart"), shell=True, check=True, timeout=60)
    assert "path:1:0:6:0" in ietroot.read(ietroot.volume)
    ietroot.write_config("")


def reconciler(bed, ietroot):
    cfg = config.load(ietroot.conf)
    backend = IetBackend(app.iet_settings(cfg.globals), Runner(timeout=30),
                         sleep=lambda s: None, reset=ietroot.fake_reset,
                         instance=ietroot.instance)
    return Reconciler(cfg, backend, lambda: udev.observe(bed.context()),
                      lambda: ApplyLock(cfg.globals.lock_file, cfg.globals.lock_timeout),
                      portals=lambda: [])


def test_the_seed_imports_by_serial_and_takes_over_without_a_restart(bed, ietroot):
    seed(bed, ietroot)
    done = cli(bed, ietroot, "import", "--from-ietd", ietroot.ietd_conf,
               "--initiators-allow", ietroot.allow, "--write")
    assert done.returncode == 0, done.stdout + done.stderr
    dropin = ietroot.path("etc/tapeshared/conf.d/imported-ietd.conf")
    text = open(dropin).read()
    assert "iqn = %s\n" % IQN in text
    assert "lun0 = serial:HU10125DDS\n" in text  # by identity, not by address
    assert "H=1" not in text and "initiators = 192.168.1.10/32, 10.0.0.0/24\n" in text
    assert "session.maxconnections = 1\n" in text
    for direction, secret in (("incoming", "s3cretpassw0rd"), ("outgoing", "t4rgetsecret1")):
        path = ietroot.path("etc/tapeshared/secrets/seed.dds4.%s" % direction)
        assert "%s_secret_file = %s\n" % (direction, path) in text
        assert open(path).read() == secret + "\n"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert secret not in text and secret not in done.stdout
    # the lines to remove: the whole stanza, and the allow line naming the target
    removal = re.findall(r"^#   (\S+):([0-9]+): (.*)$", done.stdout, re.M)
    assert [(p, int(n)) for p, n, _t in removal] == [(ietroot.ietd_conf, n) for n in
                                                   range(2, 8)] + [(ietroot.allow, 2)]
    assert "keep %s:2-7 and wrap them" % ietroot.ietd_conf in done.stdout

    checked = cli(bed, ietroot, "check-config")
    assert checked.returncode == 0, checked.stderr
    assert "1 export," in checked.stdout

    # the admin follows the advice: allow line out, the stanza between the markers
    lines = open(ietroot.ietd_conf).read().split("\n")
    begin = re.search(r"the line before: (.*)", done.stdout).group(1)
    end = re.search(r"the line after:  (.*)", done.stdout).group(1)
    with open(ietroot.ietd_conf, "w") as handle:
        handle.write("\n".join(lines[:1] + [begin] + lines[1:7] + [end] + lines[7:]))
    allow = open(ietroot.allow).read().split("\n")
    with open(ietroot.allow, "w") as handle:
        handle.write("\n".join(allow[:1] + allow[2:]))
    restarts = ietroot.restarts
    report = reconciler(bed, ietroot).plan()
    assert not report.plan.restart and not report.plan.commands, report.plan.describe()
    assert [str(lun.hctl) for t in report.desired.targets for lun in t.luns] == ["1:0:6:0"]
    assert ietroot.restarts == restarts


def test_write_never_replaces_a_file_and_says_what_it_left_out(bed, ietroot):
    seed(bed, ietroot)
    with open(ietroot.ietd_conf, "a") as handle:
        handle.write("Target iqn.2001-04.com.example:gone\n\tLun 0 H=2,C=0,I=1,L=0,"
                     "Type=rawio\n\tLun 1 Path=/srv/disk.img,Type=fileio\n")
    first = cli(bed, ietroot, "import", "--from-ietd", ietroot.ietd_conf, "--write")
    assert first.returncode == 1, first.stdout + first.stderr  # something not carried
    assert "no device at '2:0:1:0' now" in first.stdout
    assert "LUN 1 (Type=fileio" in first.stdout and "left alone" in first.stdout
    assert "initiators = ALL" in open(ietroot.path(
        "etc/tapeshared/conf.d/imported-ietd.conf")).read()
    before = open(ietroot.path("etc/tapeshared/conf.d/imported-ietd.conf")).read()
    again = cli(bed, ietroot, "import", "--from-ietd", ietroot.ietd_conf, "--write")
    assert again.returncode == 1
    assert "already configured as [export seed.dds4]" in again.stdout
    assert open(ietroot.path("etc/tapeshared/conf.d/imported-ietd.conf")).read() == before


def test_a_malformed_ietd_conf_is_named_by_file_and_line(bed, ietroot):
    ietroot.write_config("")
    path = ietroot.path("etc/bad-ietd.conf")
    with open(path, "w") as handle:
        handle.write("Target iqn.2001-04.com.example:x\n\tLun zero H=1\n")
    done = cli(bed, ietroot, "import", "--from-ietd", path)
    assert done.returncode == 78
    assert done.stderr.startswith("tapeshared: configuration error: %s:2: " % path)
    assert "Traceback" not in done.stderr


def test_tgtadm_show_output_imports_the_sg_node_by_serial(bed, ietroot):
    bed.add_tape("3:0:0:0", serial="TGT0001", sg_index=1)
    ietroot.write_config("")
    done = cli(bed, ietroot, "import", "--from-tgt", os.path.join(DATA, "tgtadm-show.txt"))
    assert done.returncode == 1, done.stderr  # the CHAP account has no secret to carry
    assert "lun1 = serial:TGT0001\n" in done.stdout
    assert "#   tgtadm --lld iscsi --mode target --op delete --tid 1\n" in done.stdout


def test_doctor_on_the_testbed_finds_the_device_and_a_conflicting_stanza(bed, ietroot):
    bed.add_tape("1:0:6:0", serial="HU10125DDS", wwn=None)
    ietroot.write_config("[export seed]\niqn = %s\nserial = HU10125DDS\n"
                         "initiators = ALL\n" % IQN)
    with open(ietroot.ietd_conf, "w") as handle:
        handle.write(open(os.path.join(DATA, "seed-ietd.conf")).read())
    done = cli(bed, ietroot, "doctor", "--json")
    doc = json.loads(done.stdout)
    by_name = {c["name"]: c for c in doc["checks"]}
    assert by_name["device seed LUN 0"]["level"] == "ok"
    assert "1:0:6:0" in by_name["device seed LUN 0"]["detail"]
    claims = [(c["level"], c["detail"].split(": ", 1)[1].split(" (")[0])
              for c in doc["checks"] if c["name"] == "other target configuration"]
    assert claims == [("fail", "target %s is ours" % IQN),
                      ("fail", "LUN 0 of %s is our device serial:HU10125DDS" % IQN)]
    assert doc["exit"] == 2 and done.returncode == 2
