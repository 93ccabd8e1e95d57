"""Rate-limited warnings: a recurring problem is counted, not logged every time."""

import logging
import time
from typing import Callable, Optional

log = logging.getLogger(__name__)


class Tally:
    """Counts a recurring problem and logs one WARNING per `every` seconds at most,
    with the count, so a flood of hostile input cannot flood the log."""

    def __init__(self, what: str, every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 logger: logging.Logger = log) -> None:
        self.what = what
        self.log = logger
        self.every = every
        self.clock = clock
        self.total = 0
        self.pending = 0
        self.last = ""
        self.warned_at: Optional[float] = None

    def add(self, detail: str) -> None:
        self.total += 1
        self.pending += 1
        self.last = detail
        self.flush()

    def flush(self) -> None:
        """Log what was counted, if the last warning is old enough."""
        now = self.clock()
        if not self.pending or (self.warned_at is not None
                                and now - self.warned_at < self.every):
            return
        self.log.warning("%s: %d since %s (last: %s); repeated at most every %gs",
                         self.what, self.pending, "the last warning"
                         if self.warned_at is not None else "start", self.last, self.every)
        self.warned_at, self.pending = now, 0
