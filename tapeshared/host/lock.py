"""The apply lock: a CLI run and the daemon never change the target at once."""

import errno
import fcntl
import os
import time
from typing import Any, Callable

from tapeshared.core.errors import LockError


class ApplyLock:
    """An exclusive flock on a file, waited for up to a timeout."""

    def __init__(self, path: str, timeout: float = 30.0,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.path = path
        self.timeout = timeout
        self.sleep = sleep
        self.fd = -1

    def __enter__(self) -> "ApplyLock":
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockError("%s is held by another tapeshared process "
                                    "(waited %gs)" % (self.path, self.timeout))
                self.sleep(0.05)
        self.fd = fd
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
