"""Watching a backend's kernel parts while one is missing.

LIO's modules, configfs and fabric give no uevent the daemon listens to when
they appear (loaded by hand, a late modules-load). While one is missing the
daemon looks every POLL seconds (read-only, a few stat calls); a change is an
event like a uevent: it is not left to wait out the apply's backoff.
"""

import logging
from typing import Callable, Optional, Tuple

log = logging.getLogger(__name__)

POLL = 1.0


class PartsWatch:
    """`after_pass` arms it when a failed pass left a part missing; `due` says
    when what is missing changed."""

    def __init__(self, reconciler: Callable[[], object], poll: float = POLL) -> None:
        self.reconciler = reconciler
        self.poll = poll
        self.missing = None  # type: Optional[Tuple[str, ...]]
        self.at = None  # type: Optional[float]

    def look(self) -> Optional[Tuple[str, ...]]:
        """The names of the parts missing now ((): none; None: no parts to watch)."""
        parts = getattr(self.reconciler(), "parts", None)
        if parts is None:
            return None
        try:
            return tuple(part.name for part in parts.missing())
        except OSError as exc:
            log.debug("cannot check the kernel parts: %s", exc)
            return None

    def after_pass(self, failed: bool, now: float) -> None:
        self.missing = self.look() if failed else None
        self.at = now + self.poll if self.missing else None

    def due(self, now: float) -> bool:
        """Look if it is time; True when the missing parts changed."""
        if self.at is None or now < self.at:
            return False
        seen = self.look()
        changed = seen is not None and seen != self.missing
        if changed:
            log.info("kernel parts changed (missing now: %s); applying",
                     ", ".join(seen or ()) or "none")
            self.missing = seen
        self.at = now + self.poll if self.missing else None
        return changed
