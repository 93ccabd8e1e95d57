"""The error hierarchy: config errors are terminal, transient ones are retried."""

from typing import Optional, Sequence


class TapesharedError(Exception):
    """Base of every error tapeshared raises on purpose."""


class ConfigError(TapesharedError):
    """The configuration is wrong; retrying will not help until it is fixed."""

    def __init__(self, message: str, path: Optional[str] = None,
                 section: Optional[str] = None, key: Optional[str] = None,
                 line: Optional[int] = None) -> None:
        self.path = path
        self.section = section
        self.key = key
        self.line = line
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path if self.line is None
                         else "%s:%d" % (self.path, self.line))
        if self.section:
            where.append("[%s]" % self.section)
        if self.key:
            where.append(self.key)
        prefix = ":".join(where)
        return "%s: %s" % (prefix, self.message) if prefix else self.message


class ManagedFileError(TapesharedError):
    """A file we manage cannot be parsed safely, so we refuse to rewrite it."""


class TransientError(TapesharedError):
    """Something that may succeed on a later attempt (a target still starting)."""


class VerifyError(TransientError):
    """The target runs but does not export what we configured."""


class CommandError(TransientError):
    """An external command failed; carries argv, exit status and stderr."""

    def __init__(self, argv: Sequence[str], rc: Optional[int], stderr: str,
                 reason: str = "") -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr
        self.reason = reason
        super().__init__(self.__str__())

    def __str__(self) -> str:
        what = self.reason or ("exit status %s" % self.rc)
        tail = self.stderr.strip().splitlines()[-1:] if self.stderr else []
        return "command %r failed (%s)%s" % (
            " ".join(self.argv), what, (": " + tail[0]) if tail else "")


class LockError(TransientError):
    """Another tapeshared process holds the apply lock."""
