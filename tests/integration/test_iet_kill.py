"""IET killed at every step of an apply: the next pass repairs it, restart included.

`tapeshared apply` runs as its own process (forked, the CLI's own main()) with
TAPESHARED_KILL_AT_STEP=k, so the daemon's step hook SIGKILLs it right before
step k (a file replace, the pending-restart record, a reset, the restart).
Then one apply runs to the end and one more (the resync) must do nothing;
after each, ietd.conf, initiators.allow/deny, /proc/net/iet/volume and the
configuration the stand-in's ietd loaded must equal what an apply that was
never killed leaves, byte for byte, and the pending-restart record is gone.
The session-key case is the one /proc cannot tell: only the record makes the
next pass restart ietd after a kill between the write and the restart.
"""

import os
import signal

import pytest
from support import builders
from support.ietroot import IetRoot

from tapeshared import cli
from tapeshared.backends.iet.plan import pending_path
from tapeshared.host import faults, scsireset, udev

TAPE0 = """[export tape0]
serial = HU19487TL1
initiators = 192.0.2.10, 198.51.100.0/24
session.MaxBurstLength = %s
"""
LIB = """[export lib]
lun0 = serial:CHANGER01
lun1 = serial:DRIVE01
lun2 = serial:DRIVE02
initiators = 192.0.2.0/24
"""
TAPE = builders.tape("1:0:6:0", serial="HU19487TL1")
MOVED = builders.tape("12:0:6:0", serial="HU19487TL1")
CHANGER = builders.tape("2:0:1:0", serial="CHANGER01", kind=8)
DRIVE1 = builders.tape("2:0:2:0", serial="DRIVE01")
DRIVE2 = builders.tape("2:0:3:0", serial="DRIVE02")
DRIVE2_MOVED = builders.tape("9:0:3:0", serial="DRIVE02")

# name -> (config and devices applied first, or None; config and devices then)
CASES = {
    "first export": (None, (TAPE0 % "262144", [TAPE])),
    "renumbering": ((TAPE0 % "262144", [TAPE]), (TAPE0 % "262144", [MOVED])),
    "library re-point": ((LIB, [CHANGER, DRIVE1, DRIVE2]),
                         (LIB, [CHANGER, DRIVE1, DRIVE2_MOVED])),
    "session key only": ((TAPE0 % "262144", [TAPE]), (TAPE0 % "131072", [TAPE])),
}


def run_apply(root, exports, devices, kill_at=None, log=None):
    """`tapeshared apply` in a forked child; its exit code, or -9 when killed."""
    root.write_config(exports)
    root.present(*(str(d.hctl) for d in devices))
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.environ["LANGUAGE"] = "C"
            os.environ.pop(faults.KILL_ENV, None)
            os.environ.pop(faults.LOG_ENV, None)
            if kill_at is not None:
                os.environ[faults.KILL_ENV] = str(kill_at)
            if log is not None:
                os.environ[faults.LOG_ENV] = log
            faults._count = 0  # a new process counts from 1
            udev.observe = lambda: list(devices)  # the scan port: these devices
            scsireset.reset_lu = root.fake_reset
            scsireset.instance = root.instance
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            code = cli.main(["-c", root.conf, "apply"])
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def prepared(base, case):
    root = IetRoot(base)
    if case[0] is not None:
        assert run_apply(root, *case[0]) == 0
    return root


def target_state(root):
    """Everything an initiator's view depends on, and the leftovers of a kill."""
    found = {}
    for name, path in (("ietd.conf", root.ietd_conf), ("allow", root.allow),
                       ("deny", root.deny), ("volume", root.volume),
                       ("running", root.path("standin/running.conf"))):
        found[name] = root.read(path)
    found["pending"] = os.path.exists(pending_path(root.path("run/tapeshared")))
    found["temps"] = sorted(n for n in os.listdir(root.path("etc")) if n.endswith(".tmp"))
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_kill_at_every_step_is_repaired_by_the_next_pass(tmp_path, name):
    case = CASES[name]
    clean = prepared(str(tmp_path / "clean"), case)
    log = str(tmp_path / "steps.log")
    assert run_apply(clean, *case[1], log=log) == 0
    expected = target_state(clean)
    assert expected["running"] == expected["ietd.conf"] and not expected["pending"]
    steps = open(log).read().splitlines()
    labels = [line.split("\t")[1] for line in steps]
    assert any(label.startswith("restart ") for label in labels), labels
    assert labels[0].startswith("replace ") and labels[0].endswith("iet-restart-pending") \
        or labels[0].startswith("reset "), labels
    for k in range(1, len(steps) + 1):
        root = prepared(str(tmp_path / ("k%d" % k)), case)
        killed_log = str(tmp_path / ("k%d.log" % k))
        assert run_apply(root, *case[1], kill_at=k, log=killed_log) == -signal.SIGKILL, k
        assert open(killed_log).read().splitlines()[-1].endswith("\tKILL")
        assert run_apply(root, *case[1]) == 0, "pass after a kill at step %d" % k
        assert target_state(root) == expected, "after a kill at step %d (%s)" % (
            k, labels[k - 1])
        restarts = root.restarts
        assert run_apply(root, *case[1]) == 0
        assert target_state(root) == expected, "resync after a kill at step %d" % k
        assert root.restarts == restarts, "the resync restarted ietd (step %d)" % k


def test_without_the_record_a_kill_before_the_restart_would_leave_ietd_stale(tmp_path):
    """Why the record: the running LUNs match the file, only the loaded text differs."""
    case = CASES["session key only"]
    log = str(tmp_path / "steps.log")
    assert run_apply(prepared(str(tmp_path / "clean"), case), *case[1], log=log) == 0
    labels = [line.split("\t")[1] for line in open(log).read().splitlines()]
    at = [n for n, label in enumerate(labels, 1) if label.startswith("restart ")][0]
    root = prepared(str(tmp_path / "root"), case)
    assert run_apply(root, *case[1], kill_at=at) == -signal.SIGKILL
    running = root.path("standin/running.conf")
    assert "MaxBurstLength 131072" in root.read(root.ietd_conf)
    assert "MaxBurstLength 262144" in root.read(running)
    os.unlink(pending_path(root.path("run/tapeshared")))
    assert run_apply(root, *case[1]) == 0
    assert "MaxBurstLength 262144" in root.read(running), \
        "the volume alone tells no difference: without the record ietd stays stale"
