"""Atomic writes: the original survives a failure at every step; mode/owner kept."""

import errno
import os

import pytest

from tapeshared.host import atomicfile


def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def test_creates_with_mode_and_reports_change(tmp_path):
    path = str(tmp_path / "ietd.conf")
    assert atomicfile.write_if_changed(path, b"one\n", 0o600) is True
    assert open(path, "rb").read() == b"one\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert atomicfile.write_if_changed(path, b"one\n") is False


def test_equal_bytes_do_not_touch_the_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"same")
    os.utime(str(path), ns=(1, 1))
    assert atomicfile.write_if_changed(str(path), b"same") is False
    assert os.stat(str(path)).st_mtime_ns == 1


def test_existing_mode_and_owner_are_kept(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    os.chmod(str(path), 0o640)
    if os.geteuid() == 0:
        os.chown(str(path), 12345, 54321)
    assert atomicfile.write_if_changed(str(path), b"new", 0o600)
    info = os.stat(str(path))
    assert info.st_mode & 0o777 == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (12345, 54321)


@pytest.mark.parametrize("step", ["write", "fsync", "chmod", "replace"])
def test_failure_at_each_step_keeps_the_original(tmp_path, monkeypatch, step):
    path = tmp_path / "ietd.conf"
    path.write_bytes(b"original\n")
    boom = OSError(errno.EIO, "injected failure at " + step)

    def fail(*args, **kwargs):
        raise boom

    if step == "write":
        real_fdopen = os.fdopen

        class Failing:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                self.handle.write(data[:3])
                raise boom

        monkeypatch.setattr(atomicfile.os, "fdopen",
                            lambda fd, mode: Failing(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(atomicfile.os, step, fail)
    with pytest.raises(OSError, match="injected"):
        atomicfile.write_if_changed(str(path), b"replacement that never lands\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"original\n"
    assert _leftovers(str(tmp_path)) == []
