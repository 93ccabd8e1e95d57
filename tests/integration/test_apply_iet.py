"""Plan/apply against the IET stand-in: files, restarts, live updates, verify."""

import os

import pytest
from support import builders

from tapeshared import app, config
from tapeshared.backends.iet.backend import IetBackend
from tapeshared.core.errors import LockError, ManagedFileError, VerifyError
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

    def reconciler(self):
        cfg = config.load(self.root.conf)
        backend = IetBackend(app.iet_settings(cfg.globals), Runner(timeout=30),
                             sleep=lambda s: None)
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
