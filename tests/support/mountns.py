"""Run a test body in a private mount namespace (a forked child): tmpfs mounts
with options (size=, remount ro) that never reach the host's mount table."""

import ctypes
import json
import os
import subprocess
import traceback
from typing import Any, Callable

import pytest

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def _private_namespace() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")


def mount_tmpfs(path: str, options: str = "size=1m") -> None:
    """A fresh tmpfs at path (call it inside in_mount_ns)."""
    os.makedirs(path, exist_ok=True)
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path])


def remount_ro(path: str) -> None:
    subprocess.check_call(["mount", "-o", "remount,ro", path])


def in_mount_ns(body: Callable[..., Any], *args: Any) -> Any:
    """body(*args) in a forked child with its own mount namespace; its JSON result.

    An exception in the child fails the test with the child's traceback; a
    pytest.skip there skips the test. The namespace and its mounts vanish with
    the child.
    """
    if os.geteuid() != 0:
        pytest.skip("a mount namespace needs root")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            try:
                _private_namespace()
                message = {"ok": body(*args)}
                code = 0
            except pytest.skip.Exception as exc:
                message = {"skip": str(exc)}
                code = 0
            except BaseException:  # noqa: BLE001 - reported to the parent
                message = {"error": traceback.format_exc()}
            data = json.dumps(message).encode("utf-8")
            while data:
                data = data[os.write(write_end, data):]
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError("the mount-namespace child died without a word")
    result = json.loads(b"".join(chunks).decode("utf-8"))
    if "skip" in result:
        pytest.skip(result["skip"])
    if "error" in result:
        raise AssertionError("in the mount namespace:\n" + result["error"])
    return result["ok"]
