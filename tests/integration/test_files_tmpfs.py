"""Atomic writes on a real, tiny tmpfs: ENOSPC comes from the kernel, not a mock."""

import errno
import os
import subprocess

import pytest

from tapeshared.host import atomicfile


def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


@pytest.fixture
def tiny_fs(tmp_path):
    """A real 64 KiB tmpfs, so ENOSPC comes from the kernel."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                        str(mount)]) != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.call(["umount", str(mount)])


def test_full_filesystem_keeps_the_original(tiny_fs):
    path = tiny_fs / "ietd.conf"
    path.write_bytes(b"original\n")
    with pytest.raises(OSError) as info:
        atomicfile.write_if_changed(str(path), b"x" * (1 << 20))
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"original\n"
    assert _leftovers(str(tiny_fs)) == []
