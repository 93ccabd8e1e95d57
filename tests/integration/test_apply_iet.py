"""Plan/apply against the IET stand-in: files, restarts, live updates, verify."""

import json
import os

import pytest
from support import builders

from tapeshared import app, config
from tapeshared.backends.iet.backend import IetBackend
from tapeshared.core.errors import LockError, ManagedFileError, TransientError, VerifyError
from tapeshared.core.model import Device, Hctl
from tapeshared.host.lock import ApplyLock
from tapeshared.host.runner import Runner
from tapeshared.reconcile import Reconciler

TAPE0 = """[export tape0]
serial = HU19487TL1
initiators = 192.0.2.10, 198.51.100.0/24, 2001:db8::7
"""
LIB = """[export lib]
lun0 = serial:CHANGER01
lun1 = serial:DRIVE01
lun2 = wwn:0x5000E11100000002
initiators = 192.0.2.0/24
"""


def tape(hctl, serial=None, wwn=None, kind=1):
    return builders.tape(hctl, serial=serial, wwn=wwn, kind=kind)


class World:
    """The devices the fake scan port returns; everything else is real."""

    def __init__(self, root, exports, **extra):
        self.root = root
        self.devices = []
        root.write_config(exports, **extra)

    portals = ()  # the addresses the portal interface has (the netlink port)
    now = 1700000000.0  # the backend's clock (when a reset happened)

    def reconciler(self):
        cfg = config.load(self.root.conf)
        backend = IetBackend(app.iet_settings(cfg.globals), Runner(timeout=30),
                             sleep=lambda s: None, reset=self.root.fake_reset,
                             instance=self.root.instance, clock=lambda: self.now)
        return Reconciler(cfg, backend, lambda: list(self.devices),
                          lambda: ApplyLock(cfg.globals.lock_file, cfg.globals.lock_timeout),
                          portals=lambda: list(self.portals))

    def set(self, *devices):
        self.devices = list(devices)
        self.root.present(*(str(d.hctl) for d in devices))

    def apply(self):
        return self.reconciler().apply()


def test_first_apply_writes_restarts_once_and_verifies(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    report = world.apply()
    conf = ietroot.read(ietroot.ietd_conf)
    assert "Target iqn.2007-04.com.example:tape0\n" in conf
    assert "\tLun 0 H=1,C=0,I=6,L=0,Type=rawio\n" in conf
    assert "\tType 1\n" in conf
    assert ietroot.restarts == 1
    assert "lun:0 state:0 iotype:rawio" in ietroot.read(ietroot.volume)
    assert ietroot.read(ietroot.allow).splitlines()[1] == (
        "iqn.2007-04.com.example:tape0 192.0.2.10, 198.51.100.0/24, [2001:db8::7]")
    assert "iqn.2007-04.com.example:tape0 ALL\n" in ietroot.read(ietroot.deny)
    assert any(a.startswith("restarted") for a in report.actions)
    assert oct(os.stat(ietroot.ietd_conf).st_mode & 0o777) == "0o600"


def test_second_apply_writes_nothing_and_restarts_nothing(ietroot):
    world = World(ietroot, TAPE0 + "\n" + LIB)
    world.set(tape("1:0:6:0", "HU19487TL1"), tape("2:0:1:0", "CHANGER01", kind=8),
              tape("2:0:2:0", "DRIVE01"), tape("2:0:3:0", wwn="5000e11100000002"))
    world.apply()
    stats = {p: os.stat(p).st_mtime_ns for p in (ietroot.ietd_conf, ietroot.allow,
                                                  ietroot.deny)}
    report = world.apply()
    assert report.actions == []
    assert report.plan.empty
    assert ietroot.restarts == 1
    assert {p: os.stat(p).st_mtime_ns for p in stats} == stats


def test_renumbering_restart_mode_restarts_exactly_once(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    world.set(tape("12:0:6:0", "HU19487TL1"))
    world.apply()
    assert "\tLun 0 H=12,C=0,I=6,L=0,Type=rawio\n" in ietroot.read(ietroot.ietd_conf)
    assert ietroot.restarts == 2
    assert world.apply().actions == []
    assert ietroot.restarts == 2


def test_live_mode_replaces_the_lun_and_keeps_other_sessions(ietroot):
    world = World(ietroot, TAPE0 + "\n" + LIB, apply_mode="live")
    devices = [tape("1:0:6:0", "HU19487TL1"), tape("2:0:1:0", "CHANGER01", kind=8),
               tape("2:0:2:0", "DRIVE01"), tape("2:0:3:0", wwn="5000e11100000002")]
    world.set(*devices)
    world.apply()
    assert ietroot.restarts == 1
    ietroot.set_sessions(["tid:1 name:iqn.2007-04.com.example:lib",
                          "\tsid:1 initiator:iqn.1994-05.com.example:backup",
                          "\t\tcid:0 ip:192.0.2.5 state:active hd:none dd:none"])
    devices[0] = tape("10:0:6:0", "HU19487TL1")
    world.set(*devices)
    report = world.apply()
    assert ietroot.restarts == 1, report.actions
    assert ietroot.counter("ietadm") == 2
    assert "initiator:iqn.1994-05.com.example:backup" in ietroot.read(ietroot.session)
    assert "iotype:rawio iomode:wt blocks:0 blocksize:512 path:10:0:6:0" in ietroot.read(
        ietroot.volume)
    assert "\tLun 0 H=10,C=0,I=6,L=0,Type=rawio\n" in ietroot.read(ietroot.ietd_conf)
    assert world.apply().actions == []


def test_live_mode_falls_back_to_restart_for_a_new_target(ietroot):
    world = World(ietroot, TAPE0, apply_mode="live")
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    world.root.write_config(TAPE0 + "\n" + LIB, apply_mode="live")
    world.set(tape("1:0:6:0", "HU19487TL1"), tape("2:0:2:0", "DRIVE01"))
    world.apply()
    assert ietroot.restarts == 2


def test_absent_keep_changes_nothing_and_remove_drops_the_lun(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    before = ietroot.read(ietroot.ietd_conf)
    world.set()
    report = world.apply()
    assert report.actions == [] and ietroot.restarts == 1
    assert ietroot.read(ietroot.ietd_conf) == before
    state = report.desired.targets[0].luns[0]
    assert (state.status, str(state.hctl)) == ("kept", "1:0:6:0")
    ietroot.write_config(TAPE0 + "absent = remove\n")
    world.apply()
    assert "Lun 0 H=" not in ietroot.read(ietroot.ietd_conf)
    assert ietroot.restarts == 2


def test_kept_address_taken_by_another_device_is_not_exported(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    world.set(tape("1:0:6:0", "SOMEONEELSE"))
    report = world.apply()
    assert "Lun 0 H=" not in ietroot.read(ietroot.ietd_conf)
    assert any("now holds serial:SOMEONEELSE" in p for p in report.desired.problems)


def test_remote_device_is_not_exported_unless_opted_in(ietroot):
    world = World(ietroot, TAPE0)
    remote = Device(hctl=Hctl(7, 0, 0, 0), type=1, serial="HU19487TL1",
                    transport="iscsi_tcp", remote=True)
    world.set(remote)
    report = world.apply()
    assert "Lun 0 H=" not in ietroot.read(ietroot.ietd_conf)
    assert "iSCSI session" in report.desired.targets[0].luns[0].note
    ietroot.write_config(TAPE0 + "allow_remote = yes\n")
    world.apply()
    assert "Lun 0 H=7,C=0,I=0,L=0" in ietroot.read(ietroot.ietd_conf)


def test_text_outside_the_block_is_kept_byte_for_byte(ietroot):
    foreign = (b"# site config \xe9 latin-1 byte\nMaxConnections 1\n\n"
               b"Target iqn.2001-04.com.example:disk\n\tLun 0 Path=/dev/vg/x,Type=fileio\n")
    with open(ietroot.ietd_conf, "wb") as handle:
        handle.write(foreign)
    with open(ietroot.allow, "wb") as handle:
        handle.write(b"iqn.2001-04.com.example:disk 192.0.2.99")  # no trailing newline
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    data = open(ietroot.ietd_conf, "rb").read()
    assert data.startswith(foreign)
    allow = open(ietroot.allow, "rb").read()
    # kept as it was, without a line break (IET ignored that line before too)
    assert allow.endswith(b"# END tapeshared managed block\n"
                          b"iqn.2001-04.com.example:disk 192.0.2.99")
    assert allow.index(b"tape0") < allow.index(b"disk")
    world.apply()
    assert open(ietroot.ietd_conf, "rb").read() == data


@pytest.mark.parametrize("content, message", [
    ("# BEGIN tapeshared managed block: generated, edits inside are overwritten\n",
     "markers are damaged"),
    ("Target iqn.2007-04.com.example:tape0\n\tLun 0 H=1,C=0,I=6,L=0,Type=rawio\n",
     "defined outside the tapeshared block"),
])
def test_unsafe_ietd_conf_is_refused_and_untouched(ietroot, content, message):
    with open(ietroot.ietd_conf, "w") as handle:
        handle.write(content)
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    with pytest.raises(ManagedFileError, match=message):
        world.apply()
    assert ietroot.read(ietroot.ietd_conf) == content
    assert ietroot.restarts == 0
    assert ietroot.read(ietroot.allow) is None


def test_hand_edit_inside_the_block_is_repaired(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    good = ietroot.read(ietroot.ietd_conf)
    with open(ietroot.ietd_conf, "w") as handle:
        handle.write(good.replace("H=1,C=0,I=6", "H=3,C=0,I=6"))
    world.apply()
    assert ietroot.read(ietroot.ietd_conf) == good
    assert ietroot.restarts == 2


def test_stopped_target_is_restarted(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    os.unlink(ietroot.volume)
    report = world.apply()
    assert any("not running" in r for r in report.plan.reasons)
    assert ietroot.restarts == 2


def test_silent_lun_failure_is_caught_by_verify(ietroot):
    world = World(ietroot, TAPE0, restart_retries="2")
    world.devices = [tape("1:0:6:0", "HU19487TL1")]  # the stand-in does not see it
    ietroot.present()
    with pytest.raises(VerifyError, match="LUN 0 of iqn.2007-04.com.example:tape0"):
        world.apply()
    assert ietroot.restarts == 2
    assert "Can't create a logical unit" in ietroot.read(ietroot.path("standin/log"))


def test_failed_restart_is_retried(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    with open(ietroot.path("standin/fail_restarts"), "w") as handle:
        handle.write("1")
    world.apply()
    assert ietroot.counter("failed_restarts") == 1
    assert ietroot.restarts == 1


def test_a_held_lock_stops_a_second_apply(ietroot):
    world = World(ietroot, TAPE0, lock_timeout="0.2")
    world.set(tape("1:0:6:0", "HU19487TL1"))
    cfg = config.load(ietroot.conf)
    with ApplyLock(cfg.globals.lock_file):
        with pytest.raises(LockError, match="held by another"):
            world.apply()
    assert ietroot.read(ietroot.ietd_conf) is None


def test_chap_secrets_rendered_but_masked_in_the_plan(ietroot):
    secret = ietroot.secret("in", "s3cretpassw0rd")
    world = World(ietroot, TAPE0 + "incoming_user = backup\nincoming_secret_file = %s\n"
                  % secret)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    report = world.reconciler().plan()
    shown = report.plan.describe()
    assert "IncomingUser backup ********" in shown and "s3cretpassw0rd" not in shown
    world.apply()
    assert "\tIncomingUser backup s3cretpassw0rd\n" in ietroot.read(ietroot.ietd_conf)


def test_moved_portal_restarts_ietd_on_the_new_address(ietroot):
    world = World(ietroot, TAPE0, portal="ts0", proc_net_tcp=ietroot.path("proc/net/tcp"),
                  proc_net_tcp6=ietroot.path("proc/net/tcp6"),
                  restart_command=ietroot.standin_argv("restart") + " {portal}")
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.portals = ("192.0.2.1",)
    world.apply()
    assert ietroot.restarts == 1
    assert world.apply().actions == []
    world.portals = ("198.51.100.1",)
    report = world.apply()
    assert any("ietd listens on 192.0.2.1, the portal is 198.51.100.1" in r
               for r in report.plan.reasons)
    assert ietroot.restarts == 2
    assert world.apply().actions == []


# Re-pointing a LUN at a new device instance: the device is reset first (see
# tapeshared.backends.iet.memory); a restart that keeps the device resets nothing.

IQN0 = "iqn.2007-04.com.example:tape0"


def events(ietroot):
    """The stand-in's log without ietadm lines: resets and restarts, in order."""
    return [line for line in ietroot.log() if line.startswith(("reset", "restarted"))]


def live_lun(world, iqn=IQN0, number=0):
    return world.reconciler().observe().snapshot.targets[iqn].luns[number]


def test_renumbering_resets_the_new_address_once_before_the_restart(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    assert events(ietroot) == ["reset 1:0:6:0", "restarted"], "a first export is new"
    world.now += 60
    world.set(tape("12:0:6:0", "HU19487TL1"))
    report = world.apply()
    assert events(ietroot)[2:] == ["reset 12:0:6:0", "restarted"]
    assert ietroot.resets == ["1:0:6:0", "12:0:6:0"]
    assert ietroot.expected[-1] == "12:0:6:0#0", "only the instance planned with is reset"
    assert "reset the device at 12:0:6:0 before mapping it as LUN 0 of %s" % IQN0 \
        in report.actions
    lun = live_lun(world)
    assert (lun.hctl, lun.reset_at, lun.reset_scope) == (Hctl.parse("12:0:6:0"),
                                                         world.now, "drive")
    assert world.apply().actions == [] and len(ietroot.resets) == 2


def test_same_address_new_instance_is_reset_and_reopened(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    ietroot.replug("1:0:6:0")  # rescanned: a new kernel object at the same address
    assert not live_lun(world).healthy, "ietd still holds the device that is gone"
    world.now += 60
    report = world.apply()
    assert events(ietroot)[2:] == ["reset 1:0:6:0", "restarted"], report.actions
    assert live_lun(world).healthy and live_lun(world).reset_at == world.now
    assert world.apply().actions == [] and ietroot.restarts == 2


def test_live_mode_resets_before_the_ietadm_update(ietroot):
    world = World(ietroot, TAPE0, apply_mode="live")
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    world.set(tape("10:0:6:0", "HU19487TL1"))
    world.apply()
    assert ietroot.log()[-3:] == ["reset 10:0:6:0", "ietadm delete tid=1 lun=0",
                                  "ietadm new tid=1 lun=0"]
    ietroot.replug("10:0:6:0")
    world.apply()
    assert ietroot.log()[-3:] == ["reset 10:0:6:0", "ietadm delete tid=1 lun=0",
                                  "ietadm new tid=1 lun=0"], "the new instance is opened"
    assert ietroot.restarts == 1 and ietroot.resets == ["1:0:6:0"] + ["10:0:6:0"] * 2


@pytest.mark.parametrize("change", ["chap", "target"])
def test_a_config_only_restart_resets_no_drive(ietroot, change):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"), tape("2:0:2:0", "DRIVE01"))
    world.apply()
    if change == "chap":
        ietroot.write_config(TAPE0 + "incoming_user = backup\nincoming_secret_file = %s\n"
                             % ietroot.secret("chap", "s3cr3t-Chap-Pass"))
    else:
        ietroot.write_config(TAPE0 + "\n[export drive]\nserial = DRIVE01\n"
                             "initiators = 192.0.2.10\n")
    world.now += 60
    world.apply()
    assert ietroot.restarts == 2, "the change needs a restart"
    assert ietroot.resets[0] == "1:0:6:0" and "1:0:6:0" not in ietroot.resets[1:], \
        "the drive may be mid-backup: never reset"
    assert ietroot.resets[1:] == ([] if change == "chap" else ["2:0:2:0"])
    assert live_lun(world).reset_at == World.now, "the first reset stays on record"


def test_ietd_stopped_and_started_again_keeps_the_drive_unreset(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    os.unlink(ietroot.volume)  # ietd stopped by hand; the device stayed
    world.apply()
    assert ietroot.restarts == 2 and ietroot.resets == ["1:0:6:0"]


def test_a_running_export_without_a_record_is_adopted_not_reset(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    os.unlink(ietroot.path("run/tapeshared/iet-luns.json"))  # an older version ran it
    ietroot.write_config(TAPE0 + "incoming_user = backup\nincoming_secret_file = %s\n"
                         % ietroot.secret("chap", "s3cr3t-Chap-Pass"))
    world.apply()
    assert ietroot.restarts == 2 and ietroot.resets == ["1:0:6:0"]
    assert live_lun(world).reset_at is None, "no reset on record"


def test_failed_reset_changes_nothing_names_the_device_and_is_retried(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    conf = ietroot.read(ietroot.ietd_conf)
    world.set(tape("12:0:6:0", "HU19487TL1"))
    ietroot.fail_resets = 1
    with pytest.raises(TransientError, match="LUN 0 of %s is not re-pointed at the device "
                       "at 12:0:6:0.*could not reset" % IQN0):
        world.apply()
    assert ietroot.restarts == 1, "no restart: the old target keeps running"
    assert ietroot.read(ietroot.ietd_conf) == conf, "nothing written"
    assert "path:1:0:6:0" in ietroot.read(ietroot.volume)
    world.apply()  # the next pass
    assert events(ietroot)[-2:] == ["reset 12:0:6:0", "restarted"]
    assert ietroot.restarts == 2 and "path:12:0:6:0" in ietroot.read(ietroot.volume)



def test_a_damaged_memory_is_ignored_and_written_afresh(ietroot, caplog):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    path = ietroot.path("run/tapeshared/iet-luns.json")
    with open(path, "w") as handle:
        handle.write("{not json")
    ietroot.write_config(TAPE0 + "incoming_user = backup\nincoming_secret_file = %s\n"
                         % ietroot.secret("chap", "s3cr3t-Chap-Pass"))
    world.apply()
    assert "iet-luns.json: unusable, ignored" in caplog.text
    assert ietroot.restarts == 2 and ietroot.resets == ["1:0:6:0"], "a running LUN: adopted"
    assert json.load(open(path))["luns"][0]["hctl"] == "1:0:6:0"
