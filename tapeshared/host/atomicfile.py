"""Atomic file writes: through symlinks, same-directory temp file, fsync, rename."""

import errno
import fcntl
import logging
import os
import re
import stat
import tempfile
from typing import Optional, Pattern, Tuple

from tapeshared.core.errors import ManagedFileError, TransientError

log = logging.getLogger(__name__)

MAX_LINKS = 40  # the kernel's own limit on a chain of symlinks
TAG = ".tapeshared-"  # in every temp name, so we only ever remove our own
_RANDOM = r"[a-z0-9_]{8}"  # what tempfile.mkstemp puts between prefix and suffix


class FileError(TransientError, OSError):
    """A managed file cannot be read or written now (read-only, full, immutable...).

    Also an OSError (errno, filename) for callers that catch those; the old file
    is always left as it was.
    """

    def __init__(self, path: str, exc: OSError, message: str) -> None:
        super().__init__(exc.errno, message, path)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _where(path: str, target: str) -> str:
    if target == os.path.abspath(path):
        return path
    return "%s (a link to %s)" % (path, target)


def _hint(exc: OSError, directory: str) -> str:
    if exc.errno == errno.EPERM:
        return " (is it immutable? see lsattr)"
    if exc.errno == errno.ENOENT:
        return " (the directory %s does not exist)" % directory
    return ""


def _fault(path: str, target: str, exc: OSError, doing: str) -> FileError:
    return FileError(target, exc, "cannot %s %s: %s%s; the old file is unchanged" % (
        doing, _where(path, target), exc.strerror or exc,
        _hint(exc, os.path.dirname(target))))


def resolve(path: str) -> str:
    """The file a chain of symlinks ends at (which need not exist: a dangling link)."""
    current = os.path.abspath(path)
    for _hop in range(MAX_LINKS + 1):
        try:
            target = os.readlink(current)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                return current  # not a link (or nothing there): the file itself
            raise _fault(path, current, exc, "resolve")
        current = os.path.join(os.path.dirname(current), target)
    raise ManagedFileError("%s: more than %d symbolic links in a row (a loop?); "
                           "nothing was written" % (path, MAX_LINKS))


def read_bytes(path: str) -> Optional[bytes]:
    """Return the file's bytes, or None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.EISDIR:
            raise ManagedFileError("%s is a directory, not a file; nothing was "
                                   "written" % path)
        if exc.errno == errno.ELOOP:
            raise ManagedFileError("%s: too many symbolic links (a loop?); nothing "
                                   "was written" % path)
        raise FileError(path, exc, "cannot read %s: %s" % (path, exc.strerror or exc))


def mode_of(path: str) -> Optional[int]:
    """The permission bits of the file path names (through links); None if unknown."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _stale_pattern(name: str) -> Pattern[str]:
    return re.compile(r"\A\.%s%s%s\.tmp\Z" % (re.escape(name), re.escape(TAG), _RANDOM))


def remove_stale(path: str) -> int:
    """Remove temp files an interrupted write of path left; return how many.

    Only names this module makes for this very file, regular files owned by us
    and not locked: a writer holds a lock on its temp file until the rename, so
    a live write (the daemon's, a CLI's) is never touched.
    """
    target = resolve(path)
    directory, name = os.path.split(target)
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    pattern = _stale_pattern(name)
    removed = 0
    for entry in sorted(n for n in names if pattern.match(n)):
        stale = os.path.join(directory, entry)
        try:
            fd = os.open(stale, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue  # gone already, a symlink, or not ours to open
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            if os.lstat(stale).st_ino != info.st_ino:
                continue
            os.unlink(stale)
            removed += 1
            log.info("removed %s, left by an interrupted write", stale)
        except OSError as exc:
            log.debug("could not remove %s: %s", stale, exc)
        finally:
            os.close(fd)
    return removed


def _copy_xattrs(src: str, dst: str) -> None:
    """Carry every extended attribute over (SELinux label, user.*, trusted.*, ACLs)."""
    try:
        names = os.listxattr(src)
    except (OSError, AttributeError):
        return
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError as exc:
            level = logging.DEBUG if name == "security.selinux" else logging.WARNING
            log.log(level, "could not keep the extended attribute %s of %s: %s",
                    name, src, exc)


def fsync_dir(directory: str) -> None:
    """Make a rename in directory durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode(old: Optional[os.stat_result], mode: Optional[int], private: bool) -> int:
    """The new file's mode: the old one's, or mode; never group/world readable if private."""
    wanted = (old.st_mode & 0o7777) if old is not None else (0o644 if mode is None else mode)
    return wanted & ~0o077 if private else wanted


def _said_tightened(path: str, old: Optional[os.stat_result], new_mode: int) -> None:
    if old is not None and old.st_mode & 0o7777 != new_mode:
        log.warning("%s holds CHAP secrets but was readable by others (mode %04o): "
                    "tightened to %04o", path, old.st_mode & 0o7777, new_mode)


def _temp(directory: str, name: str) -> Tuple[int, str]:
    """A new temp file, locked (so remove_stale leaves it alone) and still ours."""
    for _attempt in range(5):
        fd, tmp = tempfile.mkstemp(prefix=".%s%s" % (name, TAG), suffix=".tmp",
                                   dir=directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:  # a file system without locks: write unlocked
            log.debug("cannot lock %s: %s", tmp, exc)
        try:
            if os.lstat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)  # another remove_stale took it between mkstemp and flock
    raise OSError(errno.EAGAIN, "temp files keep disappearing in %s" % directory)


def write_if_changed(path: str, data: bytes, mode: Optional[int] = None,
                     private: bool = False) -> bool:
    """Replace path with data atomically; return False, writing nothing, if equal.

    A symlink is followed to its final target, which is replaced in its own
    directory (the link stays a link; a dangling link's target is created). A
    new file gets `mode` (default 0644); an existing one keeps its mode, owner
    and extended attributes. `private` (the data holds secrets): the file is
    made unreadable to group and others, even when the bytes are equal. On any
    error the original file is left as it was and no temp file remains.
    """
    target = resolve(path)
    directory, name = os.path.split(target)
    try:
        old: Optional[os.stat_result] = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise _fault(path, target, exc, "read")
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise ManagedFileError("%s is %s, not a regular file; nothing was written" % (
            _where(path, target), "a directory" if stat.S_ISDIR(old.st_mode)
            else "a special file"))
    remove_stale(target)
    new_mode = _mode(old, mode, private)
    if read_bytes(target) == data:
        if old is not None and new_mode != old.st_mode & 0o7777:
            try:
                os.chmod(target, new_mode)
            except OSError as exc:
                raise _fault(path, target, exc, "change the mode of")
            _said_tightened(target, old, new_mode)
        return False
    try:
        fd, tmp = _temp(directory, name)
    except OSError as exc:
        raise _fault(path, target, exc, "write")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if old is not None:
                if os.geteuid() == 0:
                    os.chown(tmp, old.st_uid, old.st_gid)
                _copy_xattrs(target, tmp)
            os.chmod(tmp, new_mode)
            os.replace(tmp, target)  # still locked: a cleaner never takes a live temp
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, FileError):
            raise _fault(path, target, exc, "write") from exc
        raise
    try:
        fsync_dir(directory)
    except OSError as exc:  # the rename is done: say so, do not pretend it failed
        log.warning("wrote %s but could not fsync %s: %s", target, directory, exc)
    log.info("wrote %s (%d bytes)", _where(path, target), len(data))
    _said_tightened(target, old, new_mode)
    return True
