"""Atomic writes: the original survives a failure at every step; mode/owner kept."""

import errno
import os

import pytest

from tapeshared.core.errors import ManagedFileError, TransientError
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


def test_a_symlink_loop_is_refused_before_anything_is_written(tmp_path):
    os.symlink("b", str(tmp_path / "a"))
    os.symlink("a", str(tmp_path / "b"))
    with pytest.raises(ManagedFileError, match="more than 40 symbolic links"):
        atomicfile.write_if_changed(str(tmp_path / "a"), b"x")
    assert sorted(os.listdir(str(tmp_path))) == ["a", "b"]


def test_a_chain_of_links_resolves_to_the_last_target(tmp_path):
    (tmp_path / "iet").mkdir()
    os.symlink("iet/one", str(tmp_path / "ietd.conf"))
    os.symlink(str(tmp_path / "iet" / "two"), str(tmp_path / "iet" / "one"))
    os.symlink("../real", str(tmp_path / "iet" / "two"))
    assert os.path.samefile(os.path.dirname(atomicfile.resolve(str(tmp_path / "ietd.conf"))),
                            str(tmp_path))
    assert atomicfile.write_if_changed(str(tmp_path / "ietd.conf"), b"data\n")
    assert (tmp_path / "real").read_bytes() == b"data\n"
    assert os.path.islink(str(tmp_path / "iet" / "two"))


def test_file_errors_are_clean_tapeshared_errors_and_still_oserrors(tmp_path, monkeypatch):
    path = tmp_path / "ietd.conf"
    path.write_bytes(b"original\n")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "fsync", no_space)
    with pytest.raises(atomicfile.FileError) as info:
        atomicfile.write_if_changed(str(path), b"new\n")
    assert isinstance(info.value, TransientError) and info.value.errno == errno.ENOSPC
    assert str(info.value) == ("cannot write %s: No space left on device; the old file "
                               "is unchanged" % path)


def test_a_relative_path_is_not_called_a_link(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "ietd.conf").write_bytes(b"old\n")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "fsync", no_space)
    with pytest.raises(atomicfile.FileError, match=r"\Acannot write ietd.conf: No space"):
        atomicfile.write_if_changed("ietd.conf", b"new\n")
