"""Locks on files: the apply lock (a CLI run and the daemon never change the target
at once), the daemon's run lock (one daemon per state directory), their directories."""

import errno
import fcntl
import os
import time
from typing import Any, Callable, Optional, Tuple

from tapeshared.core.errors import LockError, TransientError


def process_start(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: fields resume after the last ')';
    # starttime is field 22, the 20th after comm and state
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


class PathError(TransientError):
    """A directory or lock file that the host does not let us create or open (a file
    in its place, a read-only or foreign-owned parent): retried, since the host may
    change; its message names the path."""


def _blocker(path: str) -> str:
    """The nearest existing ancestor-or-self of path that is not a directory."""
    while path and not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _why(exc: OSError, path: str = "") -> str:
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = _blocker(path) if path else ""
        return ("%s is not a directory" % blocker if blocker and not os.path.isdir(blocker)
                else "something that is not a directory is in the way")
    if exc.errno == errno.EISDIR:
        return "it is a directory"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def make_dir(path: str, what: str, mode: int = 0o755) -> None:
    """Create directory path (and parents) if missing; PathError naming it if not."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as exc:
        raise PathError("cannot create the %s %s: %s" % (what, path, _why(exc, path)))


def open_lock_file(path: str, what: str) -> int:
    """An fd on path (created, with its directory), or PathError naming it."""
    make_dir(os.path.dirname(path) or ".", what + " directory")
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise PathError("cannot open the %s %s: %s" % (what, path, _why(exc, path)))


def try_lock(fd: int) -> bool:
    """An exclusive flock without waiting: False if another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


class ApplyLock:
    """An exclusive flock on a file, waited for up to a timeout.

    `sleep` is the daemon's keepalive sleep: the wait feeds its watchdog.
    """

    def __init__(self, path: str, timeout: float = 30.0,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.path = path
        self.timeout = timeout
        self.sleep = sleep
        self.fd = -1

    def __enter__(self) -> "ApplyLock":
        fd = open_lock_file(self.path, "apply lock")
        deadline = time.monotonic() + self.timeout
        try:
            while not try_lock(fd):
                if time.monotonic() >= deadline:
                    raise LockError("%s is held by another tapeshared process "
                                    "(waited %gs)" % (self.path, self.timeout))
                self.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class AlreadyRunning(TransientError):
    """Another daemon holds the run lock of this state directory."""


class RunLock:
    """The daemon's run lock: an flock on <state_dir>/daemon.lock held for its whole
    life (fork keeps it: flock belongs to the open file), with "pid start" written
    in it so the message can name the other daemon."""

    FILENAME = "daemon.lock"

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, self.FILENAME)
        self.fd = -1

    def acquire(self) -> "RunLock":
        """Take the lock or raise AlreadyRunning / PathError (both name the path)."""
        make_dir(self.state_dir, "state directory")
        fd = open_lock_file(self.path, "run lock")
        try:
            locked = try_lock(fd)
        except OSError as exc:
            os.close(fd)
            raise PathError("cannot lock %s: %s" % (self.path, _why(exc)))
        if not locked:
            other = holder(fd)
            os.close(fd)
            raise AlreadyRunning(
                "another tapeshared daemon%s already runs with state_dir %s (it holds %s); "
                "stop it first, or give this configuration its own state_dir"
                % (" (pid %d)" % other[0] if other else "", self.state_dir, self.path))
        self.fd = fd
        self.record()
        return self

    def record(self) -> None:
        """Write our pid and start time (again after a fork: the pid changed)."""
        if self.fd < 0:
            return
        pid = os.getpid()
        text = "%d %s\n" % (pid, process_start(pid))
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, text.encode("ascii"), 0)
        except OSError:
            pass  # the lock itself is what counts; the pid is only for messages

    def intact(self) -> bool:
        """Whether the lock path still names the file we hold (an admin's rm -rf of
        the state directory would otherwise let a second daemon start)."""
        try:
            held, named = os.fstat(self.fd), os.stat(self.path)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)

    def move(self, state_dir: str) -> "RunLock":
        """The run lock of state_dir (taken before this one is released); also
        re-taken when its file was removed or replaced."""
        if state_dir == self.state_dir and self.intact():
            return self
        moved = RunLock(state_dir).acquire()
        self.release()
        return moved

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def holder(fd: int) -> Optional[Tuple[int, str]]:
    """(pid, start) written in a run lock file, if it can be read."""
    try:
        words = os.pread(fd, 64, 0).decode("ascii", "replace").split()
        return int(words[0]), words[1] if len(words) > 1 else ""
    except (OSError, ValueError, IndexError):
        return None
