"""The daemon as a real process for tests and the benchmark: testbed, notify socket, log."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from support.ietroot import HOSTFAKE
from support.paths import ROOT
from support.udevbed import UMOCKDEV_PROBLEM

SERIAL = "HU1234ABCD"
TAPE0 = """[export tape0]
serial = %s
initiators = 192.0.2.10
""" % SERIAL
# umockdev delivers uevents over a unix datagram socket whose queue is capped by
# net.unix.max_dgram_qlen (10 here); its sender aborts the whole test process on
# EAGAIN. The real udev netlink socket has no such cap, so the daemon runs in a
# private network namespace where the cap is raised (the host's is untouched).
QLEN = 100000
# The daemon's interpreter; e.g. .venv36/bin/python checks it on Python 3.6
# (the test itself needs gi for umockdev, which that venv lacks).
DAEMON_PYTHON = os.environ.get("TAPESHARED_DAEMON_PYTHON", sys.executable)


def needs_daemon(func):
    """A daemon test: real process, real uevents; skipped outside umockdev-wrapper."""
    func = pytest.mark.skipif(UMOCKDEV_PROBLEM is not None, reason=UMOCKDEV_PROBLEM or "")(func)
    return pytest.mark.daemon(func)


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Poll predicate until true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(interval)


def netns_wrapper():
    """argv prefix running a command in a new netns with a big unix datagram queue."""
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "echo %d > "
                            "/proc/sys/net/unix/max_dgram_qlen" % QLEN],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if probe.returncode != 0:
        return None
    return ["unshare", "-n", "sh", "-c", 'echo %d > /proc/sys/net/unix/max_dgram_qlen '
            '&& exec "$@"' % QLEN, "sh"]


class Notify:
    """A NOTIFY_SOCKET the test binds, collecting every message the daemon sends."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages = []

    def pump(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            self.messages.append((time.monotonic(), dict(
                line.split("=", 1) for line in data.decode().splitlines() if "=" in line)))

    def collect(self, seconds, interval=0.01):
        """Read for `seconds`, often: a message is stamped when it is read."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump()
            time.sleep(interval)
        self.pump()

    def find(self, key, value=None, after=0.0):
        self.pump()
        return [m for t, m in self.messages
                if t >= after and key in m and (value is None or m[key] == value)]

    def wait(self, key, value=None, after=0.0, timeout=10.0):
        return wait_for(lambda: self.find(key, value, after), timeout,
                        what="%s=%s from the daemon" % (key, value or "*"))[0]

    def close(self):
        self.sock.close()


class DaemonRun:
    """One `tapeshared run` process with its testbed, IET stand-in and notify socket."""

    def __init__(self, bed, root, exports=TAPE0, watchdog_usec=None, **extra):
        self.bed = bed
        self.root = root
        # the stand-in then checks the (fake) /sys/devices for the H:C:T:L
        os.rmdir(root.path("standin/sysfs"))
        extra.setdefault("restart_retries", "1")
        self.conf = root.write_config(exports, **extra)
        self.notify = Notify(root.path("notify.sock"))
        self.log_path = root.path("daemon.log")
        self.proc = None
        self.watchdog_usec = watchdog_usec

    def start(self, wait_ready=True):
        env = dict(os.environ)
        env["UMOCKDEV_DIR"] = self.bed.tb.get_root_dir()
        env["NOTIFY_SOCKET"] = self.notify.path
        # the reset fake (IetRoot.fake_host_reset) stays on the path
        env["PYTHONPATH"] = os.pathsep.join([ROOT, HOSTFAKE])
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        prefix = netns_wrapper() or []
        argv = prefix + [DAEMON_PYTHON, "-m", "tapeshared", "-c", self.conf, "-vv", "run",
                         "--log-target", "stderr"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait_ready:
            return self.notify.wait("READY", "1")
        return None

    def text(self):
        with open(self.log_path) as handle:
            return handle.read()

    def passes(self):
        return [int(n) for n in re.findall(r"DEBUG: pass (\d+) \(", self.text())]

    def wait_pass(self, after, timeout=10.0):
        """Wait until a pass numbered above `after` has finished; return its number."""
        return wait_for(lambda: max(self.passes() or [0]) > after and max(self.passes()),
                        timeout, what="a reconcile pass after pass %d" % after)

    def settle(self, quiet=0.6, timeout=15.0):
        """Wait until no pass ran for `quiet` seconds; return the last pass number."""
        deadline = time.monotonic() + timeout
        last, since = max(self.passes() or [0]), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = max(self.passes() or [0])
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return last
        raise AssertionError("the daemon never went quiet")

    def ietd(self):
        return self.root.read(self.root.ietd_conf) or ""

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("the daemon ignored SIGTERM")
        return self.proc.returncode if self.proc else None

    def close(self):
        try:
            self.stop()
        finally:
            self.notify.close()
            self.log.close()


def hctl_line(hctl):
    return "Lun 0 H=%s,C=%s,I=%s,L=%s,Type=rawio" % tuple(hctl.split(":"))


def in_netns(pid, *argv):
    """Run argv in the daemon's private network namespace."""
    return subprocess.run(["nsenter", "-t", str(pid), "-n"] + list(argv), check=True,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout
