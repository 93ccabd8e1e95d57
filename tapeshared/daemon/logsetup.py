"""Daemon logging: the journal with structured fields, else syslog, else stderr."""

import logging
import logging.handlers
import os
import sys
from typing import Optional

TARGETS = ("auto", "journal", "syslog", "stderr")
# Structured fields callers pass with extra={...}; shown in text logs too.
FIELDS = ("TAPESHARED_TARGET", "TAPESHARED_SERIAL", "TAPESHARED_WWN", "TAPESHARED_HCTL")
SYSLOG_SOCKET = "/dev/log"
JOURNAL_SOCKET = "/run/systemd/journal/socket"


class _TextFormatter(logging.Formatter):
    """Plain text for syslog/stderr: the message plus any structured fields."""

    def __init__(self, fmt: str, sd_prefix: bool = False) -> None:
        super().__init__(fmt)
        self.sd_prefix = sd_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = ["%s=%s" % (f[len("TAPESHARED_"):].lower(), getattr(record, f))
                 for f in FIELDS if getattr(record, f, None)]
        text = "%s [%s]" % (text, " ".join(extra)) if extra else text
        if self.sd_prefix:  # sd-daemon(3) "<N>" priority prefix that journald parses
            text = "<%d>%s" % (_PRIORITY.get(record.levelno, 6), text)
        return text


_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


def _stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal (JOURNAL_STREAM=dev:ino)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        info = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (dev, ino)


def _journal_handler() -> Optional[logging.Handler]:
    if not os.path.exists(JOURNAL_SOCKET):  # no journald: every send would fail
        return None
    try:
        from systemd import journal  # type: ignore[attr-defined]
    except ImportError:
        return None
    handler: logging.Handler = journal.JournalHandler(SYSLOG_IDENTIFIER="tapeshared")
    return handler


def _syslog_handler() -> Optional[logging.Handler]:
    if not os.path.exists(SYSLOG_SOCKET):
        return None
    try:
        handler = logging.handlers.SysLogHandler(
            address=SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
    except OSError:
        return None
    handler.setFormatter(_TextFormatter("tapeshared[%d]: %%(message)s" % os.getpid()))
    return handler


def _stderr_handler(journal: bool = False) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TextFormatter("%(message)s", sd_prefix=True) if journal else
                         _TextFormatter("tapeshared: %(levelname)s: %(message)s"))
    return handler


def choose(target: str) -> logging.Handler:
    """The handler for target; auto = journal when stderr is the journal, stderr on a
    terminal, else syslog, else stderr. An explicit target that cannot work falls
    back the same way (and says so)."""
    if target not in TARGETS:
        raise ValueError("log target must be one of %s" % ", ".join(TARGETS))
    handler: Optional[logging.Handler] = None
    if target == "auto" and _stderr_is_journal():
        return _journal_handler() or _stderr_handler(journal=True)
    if target == "journal":
        handler = _journal_handler()
    if handler is None and target == "stderr":
        return _stderr_handler()
    if handler is None and (target == "syslog" or (target != "journal"
                                                   and not sys.stderr.isatty())):
        handler = _syslog_handler()
    if handler is None:
        if target in ("journal", "syslog"):
            sys.stderr.write("tapeshared: %s logging is unavailable; logging to stderr\n"
                             % target)
        handler = _stderr_handler()
    return handler


def configure(target: str = "auto", level: int = logging.INFO) -> logging.Handler:
    """Replace the root logger's handlers with the one for target."""
    handler = choose(target)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
