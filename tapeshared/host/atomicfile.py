"""Atomic file writes: same-directory temp file, fsync, rename, directory fsync."""

import errno
import logging
import os
import tempfile
from typing import Optional

log = logging.getLogger(__name__)


def read_bytes(path: str) -> Optional[bytes]:
    """Return the file's bytes, or None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def _copy_label(src: str, dst: str) -> None:
    """Carry an SELinux label over where the host has one."""
    try:
        label = os.getxattr(src, "security.selinux")
    except (OSError, AttributeError):
        return
    try:
        os.setxattr(dst, "security.selinux", label)
    except OSError as exc:
        log.debug("could not copy SELinux label to %s: %s", dst, exc)


def fsync_dir(directory: str) -> None:
    """Make a rename in directory durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_if_changed(path: str, data: bytes, mode: Optional[int] = None) -> bool:
    """Replace path with data atomically; return False, writing nothing, if equal.

    A new file gets `mode` (default 0644); an existing one keeps its mode, owner
    and SELinux label. On any error the original file is left as it was.
    """
    if read_bytes(path) == data:
        return False
    directory = os.path.dirname(os.path.abspath(path))
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path),
                               suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if old is not None:
            os.chmod(tmp, old.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.chown(tmp, old.st_uid, old.st_gid)
            _copy_label(path, tmp)
        else:
            os.chmod(tmp, 0o644 if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    log.info("wrote %s (%d bytes)", path, len(data))
    return True
