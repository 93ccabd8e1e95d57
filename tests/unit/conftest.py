"""The unit tier: pure code and files, no processes. The guard below fails any
attempt to start one; a test that needs a real process belongs in tests/integration."""

import os
import subprocess

import pytest


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    def refuse(*args, **_kwargs):
        raise AssertionError("a unit test tried to start a process (%r): move it to "
                             "tests/integration" % (args[1:2] or args[:1],))

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "execv",
                 "execve", "execvp", "execvpe"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
