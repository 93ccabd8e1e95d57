"""SysV daemon support: detaching (fork, setsid, fork, readiness pipe) and the pid file."""

import logging
import os
import select
import sys

from tapeshared.host.atomicfile import write_if_changed

log = logging.getLogger(__name__)


def detach(wait: float = 120.0) -> int:
    """Become a SysV daemon (fork, setsid, fork); the original process waits until
    the daemon reports ready and exits 0, or 1 if it died first. Returns, in the
    daemon, the fd to hand to Notifier(ready_fd=...)."""
    reader, writer = os.pipe()
    if os.fork() > 0:
        os.close(writer)
        ready, _w, _x = select.select([reader], [], [], wait)
        ok = bool(ready) and os.read(reader, 1) == b"1"
        if not ok:
            sys.stderr.write("tapeshared: the daemon did not become ready (see the log)\n")
        os._exit(0 if ok else 1)
    os.close(reader)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return writer


def write_pidfile(path: str) -> None:
    """Write our pid (for the init script); logged once."""
    # the project's atomic write: fsynced, and a temp left by a killed start is
    # removed by the next one
    write_if_changed(path, ("%d\n" % os.getpid()).encode("ascii"))
    log.info("wrote pid file %s", path)


def remove_pidfile(path: str) -> None:
    try:
        with open(path) as handle:
            if handle.read().strip() != str(os.getpid()):
                return  # another instance's file: not ours to remove
        os.unlink(path)
        log.info("removed pid file %s", path)
    except OSError:
        pass
