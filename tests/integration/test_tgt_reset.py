"""The drive reset before tgtd exports a device: when it runs, what a failure
does, what is remembered; and the sysfs checks that decide which device is reset.

LUNs are rdwr files in a real tgtd (no SCSI devices here) with a stand-in reset
that records calls; the real reset's sysfs checks run against a sysfs-shaped tree
with the ioctl itself replaced (the nested-VM tier resets a real tape).
"""

import json
import os

import pytest
from support import builders
from support import tgtd as tgtd_support
from support.tgtd import CountingRunner, FakeDrive

from tapeshared.backends.tgt import show as tgtshow
from tapeshared.backends.tgt.backend import TgtBackend
from tapeshared.backends.tgt.plan import TgtSettings
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import TransientError
from tapeshared.core.model import Hctl
from tapeshared.host.drivereset import DriveReset

IQN = builders.IQN


@pytest.fixture
def tgtd(tmp_path):
    try:
        with tgtd_support.running(str(tmp_path)) as adm_prefix:
            yield adm_prefix
    except tgtd_support.Unavailable as exc:
        pytest.skip(str(exc))


def backend(tgtd, tmp_path, clock=lambda: 1700000000.0):
    settings = TgtSettings(tgtadm=tuple(tgtd), state_dir=str(tmp_path / "state"),
                           bstype="rdwr", device_type="disk")
    runner = CountingRunner()
    return TgtBackend(settings, runner, drive=FakeDrive(runner.seen), clock=clock)


def config(initiators=("192.0.2.0/24",)):
    return builders.config(builders.export(lun=1, initiators=initiators), backend="tgt")


def image(tmp_path, name="tape1.img"):
    path = str(tmp_path / name)
    with open(path, "wb") as handle:
        handle.truncate(1 << 20)
    return path


def reconcile(back, cfg, devices):
    snapshot = back.observe([export.iqn for export in cfg.exports])
    desired = desired_state(cfg, devices, snapshot.previous)
    plan = back.plan(snapshot, desired)
    return plan, (back.apply(plan, desired) if not plan.empty else [])


def lun_of(back):
    return back.observe((IQN,)).targets[IQN].luns.get(1)


@pytest.mark.netns
def test_the_drive_is_reset_right_before_tgtd_exports_it_and_never_otherwise(tgtd, tmp_path):
    back = backend(tgtd, tmp_path)
    path = image(tmp_path)
    _plan, actions = reconcile(back, config(), [builders.tape("1:0:6:0", sg=path)])
    seen = back.runner.seen
    new = [i for i, argv in enumerate(seen) if "logicalunit" in argv and "new" in argv]
    assert len(new) == 1 and seen[new[0] - 1] == ("reset", "1:0:6:0", path)
    assert any(a.startswith("reset the logical unit 1:0:6:0") for a in actions)
    with open(back.memory_path) as handle:
        assert json.load(handle)["resets"] == {"%s 1" % IQN: {
            "at": 1700000000.0, "hctl": "1:0:6:0", "path": path, "instance": "1"}}
    lun = lun_of(back)
    assert (lun.reset_at, lun.reset_scope) == (1700000000.0, "drive")
    # an ACL change and an unchanged LUN: the drive may be mid-backup, no reset
    reconcile(back, config(initiators=("192.0.2.9/32",)), [builders.tape("1:0:6:0", sg=path)])
    reconcile(back, config(initiators=("192.0.2.9/32",)), [builders.tape("1:0:6:0", sg=path)])
    assert back.drive.resets() == [("reset", "1:0:6:0", path)]
    # another kernel object at the address now: the reset on record is not its
    back.drive.instances["1:0:6:0"] = "2"
    assert lun_of(back).reset_at is None and lun_of(back).reset_scope == ""


@pytest.mark.netns
def test_a_failed_reset_exports_nothing_names_the_device_and_heals_next_pass(tgtd, tmp_path):
    back = backend(tgtd, tmp_path)
    path = image(tmp_path)
    devices = [builders.tape("1:0:6:0", sg=path)]
    back.drive.fail = "it has no sg node (is the sg module loaded?)"
    with pytest.raises(TransientError, match=r"reset of 1:0:6:0 .*no sg node"):
        reconcile(back, config(), devices)
    shown = tgtshow.parse_show(back.runner.run(back._adm(
        ("--mode", "target", "--op", "show"))).stdout)
    ours = shown[1000]
    assert 1 not in ours.luns and ours.acl == ["192.0.2.0/24", builders.INIT]
    back.drive.fail = ""
    plan, _ = reconcile(back, config(), devices)
    assert [op[0] for op in plan.ops if op[0] == "reset"] == ["reset"]
    assert lun_of(back).backing == path and lun_of(back).reset_scope == "drive"
    assert reconcile(back, config(), devices)[0].empty


def sysfs_tree(root, hctl="2:0:0:0", sg="sg3", dev="21:3"):
    """The sysfs parts the reset reads: the device, its sg node, the class link."""
    device = root / "devices" / "pseudo_0" / "adapter0" / "host2" / "target2:0:0" / hctl
    (device / "scsi_generic" / sg).mkdir(parents=True)
    (device / "scsi_generic" / sg / "dev").write_text(dev + "\n")
    (root / "bus" / "scsi" / "devices").mkdir(parents=True, exist_ok=True)
    os.symlink(str(device), str(root / "bus" / "scsi" / "devices" / hctl))
    (root / "class" / "scsi_generic" / sg).mkdir(parents=True)
    os.symlink(str(device), str(root / "class" / "scsi_generic" / sg / "device"))
    return device


def test_the_real_reset_refuses_a_node_that_names_another_device(tmp_path):
    sysfs_tree(tmp_path)
    calls = []
    drive = DriveReset(str(tmp_path), reset_lu=lambda *a, **kw: calls.append((a, kw)))
    with pytest.raises(TransientError, match=r"/dev/sg3 names 2:0:0:0, not the device "
                                             r"found at 4:0:0:0; not reset"):
        drive.reset(Hctl(4, 0, 0, 0), "/dev/sg3")
    with pytest.raises(TransientError, match="names no SCSI device"):
        drive.reset(Hctl(2, 0, 0, 0), "/dev/sg9")
    assert calls == []


def test_the_real_reset_resets_the_instance_it_checked_and_tells_it(tmp_path):
    sysfs_tree(tmp_path)
    calls = []
    drive = DriveReset(str(tmp_path), reset_lu=lambda hctl, **kw: calls.append(
        (hctl, kw["expect"])) or "/dev/sg3")
    held = drive.reset(Hctl(2, 0, 0, 0), "/dev/sg3")
    assert calls == [(Hctl(2, 0, 0, 0), held)] and held == drive.instance(Hctl(2, 0, 0, 0))
    assert drive.holds("/dev/sg3", Hctl(2, 0, 0, 0), held)
    assert not drive.holds("/dev/sg3", Hctl(2, 0, 0, 0), held + "0")


def test_the_real_reset_reports_a_device_replaced_during_the_reset(tmp_path):
    device = sysfs_tree(tmp_path)
    link = str(tmp_path / "bus" / "scsi" / "devices" / "2:0:0:0")

    def replaced(hctl, **kw):
        os.rename(str(device), str(device) + ".old")  # the old object leaves
        os.makedirs(str(device))                        # a new one at the address
        return "/dev/sg3"

    drive = DriveReset(str(tmp_path), reset_lu=replaced)
    assert os.path.islink(link)
    with pytest.raises(TransientError, match="changed during the reset"):
        drive.reset(Hctl(2, 0, 0, 0), "/dev/sg3")


def test_the_real_reset_refusal_is_a_transient_error_that_names_the_device(tmp_path):
    sysfs_tree(tmp_path)

    def refuses(hctl, **kw):
        raise TransientError("reset of the device at %s (/dev/sg3): the host adapter "
                             "could not reset the logical unit" % hctl)

    with pytest.raises(TransientError, match=r"reset of 2:0:0:0 \(/dev/sg3\) before it is "
                                             r"exported: .*could not reset"):
        DriveReset(str(tmp_path), reset_lu=refuses).reset(Hctl(2, 0, 0, 0), "/dev/sg3")
