"""A plan: the file changes and commands an apply would make, shown as a diff."""

import difflib
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

Mask = Callable[[str], str]


def _no_mask(text: str) -> str:
    return text


@dataclass(frozen=True)
class FileChange:
    """A managed file whose bytes would change."""

    path: str
    old: Optional[bytes]
    new: bytes
    mode: int = 0o644
    mask: Mask = field(default=_no_mask, compare=False, repr=False)

    def diff(self) -> str:
        """Unified diff a person can read; secrets masked."""
        if self.old == self.new:
            return "--- %s\n+++ %s\n(same content; only the file's mode changes)\n" % (
                self.path, self.path)
        old = self.mask((self.old or b"").decode("utf-8", "replace"))
        new = self.mask(self.new.decode("utf-8", "replace"))
        lines = list(difflib.unified_diff(
            old.splitlines(True), new.splitlines(True),
            "/dev/null" if self.old is None else self.path, self.path))
        if not lines:
            return "--- %s\n+++ %s\n(only secrets differ; not shown)\n" % (self.path,
                                                                         self.path)
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end "
                       "of file\n" for line in lines)


@dataclass(frozen=True)
class Plan:
    """What apply will do: write files, then restart or run live commands."""

    files: Tuple[FileChange, ...] = ()
    restart: bool = False
    commands: Tuple[Tuple[str, ...], ...] = ()
    reasons: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()
    ops: Tuple[Tuple[str, ...], ...] = ()  # backend operations (configfs for LIO)
    steps: Tuple[str, ...] = ()  # those operations as a person reads them

    @property
    def empty(self) -> bool:
        return not (self.files or self.restart or self.commands or self.ops)

    def describe(self, restart_command: Tuple[str, ...] = ()) -> str:
        """The plan as text: diffs, then the commands in the order apply runs them."""
        out: List[str] = [change.diff() for change in self.files]
        steps = list(self.steps) + [" ".join(c) for c in self.commands]
        if self.restart:
            steps.append(" ".join(restart_command) or "restart the target")
        for reason in self.reasons:
            out.append("# because: %s\n" % reason)
        for step in steps:
            out.append("$ %s\n" % step)
        for note in self.notes:
            out.append("# note: %s\n" % note)
        return "".join(out)
