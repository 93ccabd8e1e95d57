"""kill -9 at random points of `tapeshared apply`: files always whole, no temp outlives
the next apply.

Each round starts `tapeshared apply` (the CLI's own main(), in a forked child
with its own process group, so the stand-in's restart dies with it) towards
the other of two configurations, kills the group with SIGKILL after a random
delay within one apply's duration, checks that every managed file holds
exactly the old or the new bytes, then lets one apply run to the end and
checks the new bytes are in place and no temp file remains.
"""

import os
import random
import shlex
import signal
import sys
import time

from support.ietroot import STANDIN

from tapeshared import cli
from tapeshared.backends.iet import conf as ietconf

ROUNDS = int(os.environ.get("TAPESHARED_KILL_ROUNDS", "200"))
SEED = int(os.environ.get("TAPESHARED_KILL_SEED", "11"))
CONFIGS = [  # all three files change, and ietd.conf's effective lines (a restart)
    ("HU19487TL1", "192.0.2.10", "262144"),
    ("HU19487TL2", "192.0.2.11, 198.51.100.0/24", "131072"),
]


def write_config(ietroot, which):
    serial, initiators, burst = CONFIGS[which]
    # the stand-in started without site-packages: the same target, quicker to start
    restart = " ".join(shlex.quote(a) for a in (sys.executable, "-S", STANDIN, "--root",
                                                ietroot.base, "restart"))
    ietroot.write_config("[export tape0]\nserial = %s\ninitiators = %s\n"
                         "session.MaxBurstLength = %s\n" % (serial, initiators, burst),
                         restart_command=restart)


def start_apply(ietroot):
    """`tapeshared -c CONF apply` in a forked child leading its own process group."""
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setpgid(0, 0)
            os.environ["LANGUAGE"] = "C"  # argparse's gettext lookups: no locale search
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            code = cli.main(["-c", ietroot.conf, "apply"])
        finally:
            os._exit(code)
    return pid


def finish(pid):
    _pid, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def files(ietroot):
    found = {}
    for path in (ietroot.ietd_conf, ietroot.allow, ietroot.deny):
        with open(path, "rb") as handle:
            found[path] = handle.read()
    return found


def temps(ietroot):
    return sorted(n for n in os.listdir(ietroot.path("etc")) if n.endswith(".tmp"))


def replaced_after(ietroot, begin, inode):
    """Seconds from begin until ietd.conf (the last file written) is replaced."""
    while os.stat(ietroot.ietd_conf).st_ino == inode:
        assert time.monotonic() - begin < 30, "ietd.conf was never replaced"
        time.sleep(0.0005)
    return time.monotonic() - begin


def test_kill_9_at_random_points_of_apply(ietroot):
    rng = random.Random(SEED)
    expected = []
    for which in (0, 1):
        write_config(ietroot, which)
        assert finish(start_apply(ietroot)) == 0
        expected.append(files(ietroot))
    assert expected[0] != expected[1]
    spans, writes = [], []  # calibrate: a whole apply, and when its writes end
    for which in (0, 1, 0, 1):
        write_config(ietroot, which)
        begin, inode = time.monotonic(), os.stat(ietroot.ietd_conf).st_ino
        pid = start_apply(ietroot)
        writes.append(replaced_after(ietroot, begin, inode))
        assert finish(pid) == 0
        spans.append(time.monotonic() - begin)
    span, written = sorted(spans)[2], sorted(writes)[2]  # medians: load spikes aside
    interrupted = torn_writes = 0
    outcomes = {}  # how many of the three files held the new bytes after the kill
    begin = time.monotonic()
    for round_ in range(ROUNDS):
        old, new = round_ % 2, (round_ + 1) % 2
        write_config(ietroot, new)
        pid = start_apply(ietroot)
        # half the kills anywhere in the apply, half around the file writes
        time.sleep(rng.uniform(0, span) if round_ % 4 < 2
                   else rng.uniform(written * 0.6, written * 1.05))
        try:
            os.killpg(pid, signal.SIGKILL)
            interrupted += 1
        except ProcessLookupError:
            pass
        finish(pid)
        now = files(ietroot)
        where = "round %d (seed %d)" % (round_, SEED)
        for path, data in now.items():
            assert data in (expected[old][path], expected[new][path]), (where, path, data)
            ietconf.split(data.decode("utf-8", "surrogateescape"), path)  # parseable
        if temps(ietroot):
            torn_writes += 1
        changed = sum(now[p] == expected[new][p] for p in now)
        outcomes[changed] = outcomes.get(changed, 0) + 1
        code = finish(start_apply(ietroot))
        assert code == 0, where
        assert files(ietroot) == expected[new], where
        assert temps(ietroot) == [], where
    seconds = time.monotonic() - begin
    print("\n%d rounds in %.1fs (one apply %.0f ms, its writes done at %.0f ms): %d "
          "killed mid-apply, %d mid-write (a temp file left, removed by the next apply); "
          "files new after the kill: %s" % (
              ROUNDS, seconds, span * 1000, written * 1000, interrupted, torn_writes,
              ", ".join("%d of 3: %d" % kv for kv in sorted(outcomes.items()))))
    assert interrupted > ROUNDS // 4  # the kills land inside applies, not after them
