"""IET verification reads what each LUN points at in /proc/net/iet/volume."""

import shlex

import pytest
from support import builders
from test_apply_iet import TAPE0, World, tape

from tapeshared.backends.iet import plan as iet_plan
from tapeshared.backends.iet.proc import parse_volume
from tapeshared.core.errors import TransientError, VerifyError
from tapeshared.core.model import Hctl

VOLUME = """tid:1 name:iqn.2007-04.com.example:tape0
\tlun:0 state:0 iotype:rawio iomode:wt blocks:0 blocksize:512 path:12:0:6:0
\tlun:1 state:0 iotype:rawio iomode:wt blocks:0 blocksize:512 path:H=1,C=0,I=2,L=0
\tlun:2 state:0 iotype:rawio iomode:wt args:H=3,C=0,I=4,L=5,Type=rawio
\tlun:3 state:0 iotype:blockio iomode:wt blocks:2048 blocksize:512 path:/dev/sg3
\tlun:4 state:0 iotype:rawio iomode:wt
"""


def test_volume_lines_give_the_address_or_node_each_lun_points_at():
    luns = parse_volume(VOLUME)["iqn.2007-04.com.example:tape0"].luns
    assert [luns[n].hctl for n in range(5)] == [
        Hctl(12, 0, 6, 0), Hctl(1, 0, 2, 0), Hctl(3, 0, 4, 5), None, None]
    assert luns[3].path == "/dev/sg3"


def test_standin_volume_follows_iet_format(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("12:0:6:0", "HU19487TL1"))
    world.apply()
    line = [x for x in ietroot.read(ietroot.volume).splitlines() if "lun:" in x][0]
    assert line == "\tlun:0 state:0 iotype:rawio iomode:wt blocks:0 blocksize:512 " \
                   "path:12:0:6:0"


@pytest.mark.parametrize("command", ["already-running", "true"])
def test_a_restart_that_did_not_take_effect_is_a_failure(ietroot, command):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    assert world.reconciler().views(world.reconciler().observe())[0].verified
    # the tape moves; the restart command now does nothing (exit 0)
    restart = ietroot.standin_argv(command) if command != "true" else "/bin/true"
    ietroot.write_config(TAPE0, restart_command=restart)
    world.set(tape("12:0:6:0", "HU19487TL1"))
    with pytest.raises((VerifyError, TransientError)) as caught:
        world.apply()
    assert "points at 1:0:6:0, not at the device (12:0:6:0)" in str(caught.value)
    assert "\tLun 0 H=12,C=0,I=6,L=0,Type=rawio\n" in ietroot.read(ietroot.ietd_conf)
    view = world.reconciler().views(world.reconciler().observe())[0]
    assert not view.verified
    assert any("points at 1:0:6:0" in p for p in view.problems), view.problems
    if command == "already-running":
        assert ietroot.counter("noop_restarts") >= 1


def test_a_lun_whose_volume_line_shows_no_device_is_not_verified(ietroot):
    world = World(ietroot, TAPE0)
    world.set(tape("1:0:6:0", "HU19487TL1"))
    world.apply()
    text = ietroot.read(ietroot.volume).replace(" path:1:0:6:0", "")
    with open(ietroot.volume, "w") as handle:
        handle.write(text)
    view = world.reconciler().views(world.reconciler().observe())[0]
    assert not view.verified
    assert any("cannot verify" in p for p in view.problems), view.problems
    # and an apply's verification (after a restart) does not accept it either
    snap = world.reconciler().observe().snapshot
    desired = world.reconciler().observe().desired
    assert iet_plan.problems(snap, desired)


def test_a_lun_on_a_node_path_is_verified_against_the_device_nodes(ietroot):
    world = World(ietroot, TAPE0)
    world.devices = [builders.tape("1:0:6:0", serial="HU19487TL1", sg="/dev/sg3")]
    ietroot.present("1:0:6:0")
    world.apply()
    for path, ok in (("/dev/sg3", True), ("/dev/sg4", False)):
        text = ietroot.read(ietroot.volume).split(" path:")[0] + " path:%s\n" % path
        with open(ietroot.volume, "w") as handle:
            handle.write(text)
        assert world.reconciler().views(world.reconciler().observe())[0].verified is ok


def test_an_apply_whose_ietd_shows_no_device_behind_a_lun_fails(ietroot):
    # a restart that runs ietd, whose volume lines then name no device
    strip = "%s && sed -i 's/ path:[^ ]*//' %s" % (ietroot.standin_argv("restart"),
                                                   ietroot.volume)
    world = World(ietroot, TAPE0, restart_command="/bin/sh -c %s" % shlex.quote(strip))
    world.set(tape("1:0:6:0", "HU19487TL1"))
    with pytest.raises((VerifyError, TransientError)) as caught:
        world.apply()
    assert "cannot verify" in str(caught.value)
    assert ietroot.restarts >= 1
