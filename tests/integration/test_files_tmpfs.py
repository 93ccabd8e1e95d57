"""Atomic writes on a real, tiny tmpfs: ENOSPC comes from the kernel, not a mock."""

import errno
import os

from support.mountns import in_mount_ns, mount_tmpfs

from tapeshared.host import atomicfile


def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def _full(mount):
    mount_tmpfs(mount, "size=64k")
    path = os.path.join(mount, "ietd.conf")
    with open(path, "wb") as handle:
        handle.write(b"original\n")
    try:
        atomicfile.write_if_changed(path, b"x" * (1 << 20))
    except atomicfile.FileError as exc:
        error = [exc.errno, str(exc)]
    else:
        error = None
    return {"error": error, "data": open(path, "rb").read().decode(),
            "leftovers": _leftovers(mount)}


def test_full_filesystem_keeps_the_original(tmp_path):
    got = in_mount_ns(_full, str(tmp_path / "tiny"))
    assert got["error"][0] == errno.ENOSPC
    assert got["error"][1].endswith("No space left on device; the old file is unchanged")
    assert got["data"] == "original\n"
    assert got["leftovers"] == []
