"""Never the wrong device, never one drive twice: real udev (umockdev) + the IET stand-in.

A kept LUN's last address taken by any other SCSI device (a disk, a processor,
an enclosure, another tape, a device with no identity) is never exported; one
physical drive named twice (serial in one place, WWN in another) is refused at
both places, in plan, apply and status.
"""

import json
import os
import subprocess
import sys
from typing import Any, List

import pytest
from support.paths import ROOT
from support.udevbed import Bed, bed_fixture, needs_umockdev  # noqa: F401 - the bed fixture

from tapeshared import app, config
from tapeshared.backends.iet.backend import IetBackend
from tapeshared.host import udev
from tapeshared.host.lock import ApplyLock
from tapeshared.host.runner import Runner
from tapeshared.reconcile import Reconciler

pytestmark = [pytest.mark.umockdev, needs_umockdev]

SERIAL = "HU19487TL1"
WWN = "5000e11156304001"
TAPE0 = """[export tape0]
serial = %s
initiators = 192.0.2.10
""" % SERIAL


class World:
    """Devices from real udev over the testbed; IET is the stand-in."""

    def __init__(self, root: Any, bed: Bed, exports: str, **extra: str) -> None:
        self.root = root
        self.bed = bed
        root.write_config(exports, **extra)

    def reconciler(self) -> Reconciler:
        cfg = config.load(self.root.conf)
        backend = IetBackend(app.iet_settings(cfg.globals), Runner(timeout=30),
                             sleep=lambda s: None)
        return Reconciler(cfg, backend, lambda: udev.observe(self.bed.context()),
                          lambda: ApplyLock(cfg.globals.lock_file, cfg.globals.lock_timeout))

    def sync(self) -> None:
        """The stand-in's sysfs: every address the bed holds (rawio binds any type)."""
        self.root.present(*sorted(os.listdir(self.bed.tb.get_root_dir() +
                                             "/sys/bus/scsi/devices")))

    def apply(self) -> Any:
        self.sync()
        return self.reconciler().apply()

    def views(self) -> List[Any]:
        reconciler = self.reconciler()
        return reconciler.views(reconciler.observe())

    def lun_lines(self) -> List[str]:
        return [line.strip() for line in (self.root.read(self.root.ietd_conf) or ""
                                          ).splitlines() if line.strip().startswith("Lun ")]


SQUATTERS = {
    "disk": dict(type=0, serial="DISK000001", wwn="5000c50000d15c01"),
    "processor": dict(type=3, serial="PROC000001", wwn=None, model="Backplane"),
    "enclosure": dict(type=13, serial=None, wwn="5000c50000e0c101", model="SES"),
    "no identity": dict(type=0, serial=None, wwn=None, vpd=False),
    "another tape": dict(type=1, serial="OTHERTAPE1", wwn=None),
}


@pytest.mark.parametrize("kind", sorted(SQUATTERS))
def test_a_device_at_a_kept_address_is_never_exported(ietroot: Any, bed: Bed,
                                                      kind: str) -> None:
    world = World(ietroot, bed, TAPE0)
    bed.add_tape("1:0:6:0", serial=SERIAL, wwn=WWN, sg_index=0)
    world.apply()
    assert world.lun_lines() == ["Lun 0 H=1,C=0,I=6,L=0,Type=rawio"]
    bed.remove(bed.syspath("1:0:6:0"))
    report = world.apply()  # absent: the LUN is kept at its last address
    assert report.desired.targets[0].luns[0].status == "kept"
    assert world.lun_lines() == ["Lun 0 H=1,C=0,I=6,L=0,Type=rawio"]

    spec = dict(SQUATTERS[kind])
    if spec.pop("type") == 1:
        bed.add_tape("1:0:6:0", sg_index=1, st_index=1, **spec)
    else:
        bed.add_disk("1:0:6:0", sg_index=1, type=SQUATTERS[kind]["type"], **spec)
    report = world.apply()
    lun = report.desired.targets[0].luns[0]
    assert (lun.status, lun.hctl) == ("squatted", None)
    assert world.lun_lines() == []  # no Lun line: ietd cannot bind the squatter
    assert "lun:" not in ietroot.read(ietroot.volume)
    assert any("[export tape0] lun 0" in p and "1:0:6:0 now holds" in p
               for p in report.desired.problems), report.desired.problems
    view = world.views()[0]
    assert not view.verified
    assert any("now holds" in p for p in view.problems), view.problems
    # the same again: still refused, at every pass, not only at the first
    assert world.apply().desired.targets[0].luns[0].status == "squatted"
    assert world.lun_lines() == []

    # the tape comes back elsewhere: exported there, the squatter never
    bed.add_tape("4:0:2:0", serial=SERIAL, wwn=WWN, sg_index=2, st_index=2)
    world.apply()
    assert world.lun_lines() == ["Lun 0 H=4,C=0,I=2,L=0,Type=rawio"]
    assert world.views()[0].verified


def test_observation_sees_every_scsi_device_scan_lists_tapes_and_changers(bed: Bed) -> None:
    bed.add_tape("1:0:6:0", sg_index=0)
    bed.add_disk("0:0:0:0", sg_index=1)
    bed.add_disk("0:0:1:0", type=13, serial="ENCL1", wwn=None, sg_index=2)
    seen = {str(d.hctl): d.kind for d in udev.observe(bed.context())}
    assert seen == {"0:0:0:0": "disk", "0:0:1:0": "enclosure", "1:0:6:0": "tape"}
    assert [str(d.hctl) for d in udev.scan(bed.context())] == ["1:0:6:0"]


LIB_TWICE = """[export a]
serial = %s
initiators = 192.0.2.10

[export b]
lun1 = wwn:%s
initiators = 192.0.2.11
""" % (SERIAL, WWN)
ONE_TARGET_TWICE = """[export lib]
lun0 = serial:CH00001234
lun1 = wwn:5000e11156304100
lun2 = serial:%s
initiators = 192.0.2.10
""" % SERIAL


def run_cli(root: Any, bed: Bed, *args: str) -> "subprocess.CompletedProcess[str]":
    env = bed.env()
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "tapeshared", "-c", root.conf] + list(args),
                          cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


def test_one_drive_named_by_serial_and_by_wwn_is_refused_at_both(ietroot: Any,
                                                                 bed: Bed) -> None:
    world = World(ietroot, bed, LIB_TWICE)
    bed.add_tape("1:0:6:0", serial=SERIAL, wwn=WWN, sg_index=0)
    world.sync()
    assert run_cli(ietroot, bed, "check-config").returncode == 0  # it cannot know
    planned = run_cli(ietroot, bed, "plan")
    both = "[export a] lun 0 (serial:%s) and [export b] lun 1 (wwn:%s)" % (SERIAL, WWN)
    assert both in planned.stdout, planned.stdout + planned.stderr
    assert "same device" in planned.stdout
    applied = run_cli(ietroot, bed, "apply")
    assert both in applied.stdout, applied.stdout + applied.stderr
    assert applied.returncode == 1  # applied what it could; the drive is refused
    assert world.lun_lines() == []  # neither is exported: no guessing which one wins
    status = run_cli(ietroot, bed, "status", "--json")
    doc = json.loads(status.stdout)
    assert status.returncode != 0
    assert [(e["name"], e["verified"]) for e in doc["exports"]] == [("a", False),
                                                                     ("b", False)]
    for export, other in (("a", "[export b] lun 1"), ("b", "[export a] lun 0")):
        entry = [e for e in doc["exports"] if e["name"] == export][0]
        assert [lun["status"] for lun in entry["luns"]] == ["duplicate"]
        assert any(other in p for p in entry["problems"]), entry["problems"]


def test_one_changer_named_twice_in_one_target(ietroot: Any, bed: Bed) -> None:
    world = World(ietroot, bed, ONE_TARGET_TWICE)
    bed.add_changer("2:0:1:0", sg_index=0)
    bed.add_tape("2:0:2:0", serial=SERIAL, wwn=WWN, sg_index=1)
    report = world.apply()
    statuses = [lun.status for lun in report.desired.targets[0].luns]
    assert statuses == ["duplicate", "duplicate", "present"]
    assert world.lun_lines() == ["Lun 2 H=2,C=0,I=2,L=0,Type=rawio"]
    assert any("[export lib] lun 0 (serial:CH00001234) and [export lib] lun 1 "
               "(wwn:5000e11156304100)" in p for p in report.desired.problems)
    assert not world.views()[0].verified


def test_a_clone_is_ambiguous_not_absent_and_neither_copy_is_exported(ietroot: Any,
                                                                     bed: Bed) -> None:
    world = World(ietroot, bed, TAPE0)
    bed.add_tape("1:0:6:0", serial=SERIAL, wwn=None, sg_index=0)
    world.apply()
    bed.add_tape("5:0:6:0", serial=SERIAL, wwn=None, sg_index=1, st_index=1)
    report = world.apply()
    lun = report.desired.targets[0].luns[0]
    assert lun.status == "ambiguous"
    problems = " ".join(report.desired.problems)
    assert "ambiguous" in problems and "absent" not in problems, problems
    assert world.lun_lines() == []
    assert not world.views()[0].verified


def test_live_mode_deletes_the_kept_lun_when_a_disk_takes_its_address(ietroot: Any,
                                                                      bed: Bed) -> None:
    world = World(ietroot, bed, TAPE0, apply_mode="live")
    bed.add_tape("1:0:6:0", serial=SERIAL, wwn=WWN, sg_index=0)
    world.apply()
    bed.remove(bed.syspath("1:0:6:0"))
    world.apply()
    assert "path:1:0:6:0" in ietroot.read(ietroot.volume)  # kept while nothing is there
    bed.add_disk("1:0:6:0", sg_index=1)
    report = world.apply()
    assert any("ietadm" in a and "delete" in a for a in report.actions), report.actions
    assert not any("--op new" in a for a in report.actions), report.actions
    assert "lun:" not in ietroot.read(ietroot.volume)
    assert world.apply().actions == []
