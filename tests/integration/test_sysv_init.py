"""The SysV init script with a stale pid file: a pid that another process took
after a crash is never taken for the daemon (not signalled, not 'already running')."""

import os
import subprocess
import sys
import time

import pytest
from support.paths import ROOT

SCRIPT = os.path.join(ROOT, "init.d", "tapeshared")
TAPE0 = """[export tape0]
serial = NOSUCHTAPE0
initiators = 192.0.2.10
"""


@pytest.fixture
def init(ietroot):
    ietroot.write_config(TAPE0)
    wrapper = ietroot.path("tapeshared")
    with open(wrapper, "w") as handle:
        handle.write('#!/bin/sh\nPYTHONPATH=%s exec %s -m tapeshared "$@"\n'
                     % (ROOT, sys.executable))
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, DAEMON=wrapper, CONFIG=ietroot.conf,
               PIDFILE=ietroot.path("tapeshared.pid"), STOP_TIMEOUT="10",
               SYSTEMCTL_SKIP_REDIRECT="1", _SYSTEMCTL_SKIP_REDIRECT="1")
    env.pop("NOTIFY_SOCKET", None)

    def call(action):
        out = subprocess.run(["sh", SCRIPT, action], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
        return out.returncode, out.stdout
    call.pidfile = env["PIDFILE"]
    yield call
    call("stop")


@pytest.fixture
def stranger():
    """A live process that is not the daemon, as a reused pid would be."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_stop_with_a_stale_pid_file_signals_nobody(init, stranger):
    with open(init.pidfile, "w") as handle:
        handle.write("%d\n" % stranger.pid)
    code, text = init("stop")
    assert code == 0, text
    time.sleep(0.3)
    assert stranger.poll() is None, "the init script killed a process that is not ours"
    assert not os.path.exists(init.pidfile)


def test_start_with_a_stale_pid_file_starts_the_daemon(init, stranger):
    with open(init.pidfile, "w") as handle:
        handle.write("%d\n" % stranger.pid)
    code, text = init("start")
    assert code == 0 and "already running" not in text, text
    pid = int(open(init.pidfile).read())
    assert pid != stranger.pid
    code, text = init("stop")
    assert code == 0, text
    assert stranger.poll() is None
