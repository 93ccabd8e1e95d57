"""The unit tier refuses to start processes (tests/unit/conftest.py)."""

import os
import subprocess
import sys

import pytest


def test_a_subprocess_call_fails_the_test():
    with pytest.raises(AssertionError, match="move it to tests/integration"):
        subprocess.run([sys.executable, "-c", "pass"])


def test_fork_and_system_fail_the_test():
    for call in (os.fork, lambda: os.system("true")):
        with pytest.raises(AssertionError, match="tried to start a process"):
            call()
