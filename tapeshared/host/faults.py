"""The step log and the kill hook: how a test stops the daemon at step k.

Every backend calls `step(label)` right before each change it makes to the
live target (one configfs mkdir/rmdir/link/write, one tgtadm call, one file
rename, one restart or ietadm call). Nothing happens unless the environment
asks for it, so the daemon pays one dictionary lookup per step:

- ``TAPESHARED_STEP_LOG=PATH``: append ``N<TAB>label`` for every step, N
  counting from 1 within this process (a dry run tells a test how many steps
  a change takes);
- ``TAPESHARED_KILL_AT_STEP=K``: log step K with a trailing ``<TAB>KILL``, then
  SIGKILL this process before step K is carried out: the state a power cut or
  an OOM kill at that point leaves behind.
"""

import os
import signal

LOG_ENV = "TAPESHARED_STEP_LOG"
KILL_ENV = "TAPESHARED_KILL_AT_STEP"

_count = 0


def step(label: str) -> None:
    """Count one change to the live target, log it, and die here if asked to."""
    global _count
    log_path = os.environ.get(LOG_ENV)
    kill_at = os.environ.get(KILL_ENV)
    if not log_path and not kill_at:
        return
    _count += 1
    kill = kill_at is not None and kill_at.strip() == str(_count)
    if log_path:
        line = "%d\t%s%s\n" % (_count, " ".join(label.split()), "\tKILL" if kill else "")
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)


def steps_taken() -> int:
    """How many steps this process has counted (0 when the log is off)."""
    return _count
