"""Writing an import: new files only, each complete or absent (the adapter part)."""

import os
from typing import List, Tuple

from tapeshared.core.errors import TapesharedError
from tapeshared.host.atomicfile import fsync_dir


def _create(path: str, data: bytes, mode: int) -> None:
    """Write path whole under a temp name, then link it in: never replaces a file."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700 if mode == 0o600 else 0o755, exist_ok=True)
    tmp = os.path.join(directory, ".%s.import-%d" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.link(tmp, path)  # fails with EEXIST: an existing file is never touched
    finally:
        os.unlink(tmp)
    fsync_dir(directory)


def write_new(dropin: str, text: str, secrets: List[Tuple[str, str]]) -> List[str]:
    """The secret files (0600), then the drop-in naming them; refuse any that exists."""
    for path in [p for p, _s in secrets] + [dropin]:
        if os.path.lexists(path):
            raise TapesharedError("%s already exists: nothing was written (move it "
                                  "away or merge by hand)" % path)
    written = []
    try:
        for path, secret in secrets:
            _create(path, (secret + "\n").encode("utf-8"), 0o600)
            written.append(path)
        _create(dropin, text.encode("utf-8"), 0o644)
        written.append(dropin)
    except OSError as exc:
        for path in written:
            os.unlink(path)
        raise TapesharedError("cannot write %s: %s; nothing was written" % (
            exc.filename or dropin, exc.strerror))
    return written
