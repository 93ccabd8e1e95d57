"""The command runner with real processes: the watchdog keepalive during a slow
command, timeouts that kill, input, and commands that cannot be run."""

import os
import time

import pytest

from tapeshared.core.errors import CommandError
from tapeshared.host.runner import Runner


class Ticks:
    def __init__(self):
        self.at = []

    def __call__(self):
        self.at.append(time.monotonic())


def test_keepalive_is_called_while_a_slow_command_runs():
    ticks = Ticks()
    start = time.monotonic()
    result = Runner(keepalive=ticks, poll=0.1).run(["sh", "-c", "sleep 1.2; echo done"])
    end = time.monotonic()
    assert result.stdout == "done\n" and result.rc == 0
    marks = [start] + ticks.at + [end]
    assert max(b - a for a, b in zip(marks, marks[1:])) < 0.3, ticks.at
    assert len(ticks.at) >= 10


def test_a_command_over_its_timeout_is_killed_and_the_wait_stays_fed():
    ticks = Ticks()
    start = time.monotonic()
    with pytest.raises(CommandError, match="timed out after 0.6s"):
        Runner(keepalive=ticks, poll=0.1).run(["sleep", "30"], timeout=0.6)
    assert time.monotonic() - start < 5
    assert len(ticks.at) >= 5


def test_input_reaches_the_command_across_wait_slices():
    text = "x" * 200000 + "\n"  # more than a pipe buffer: written across slices
    result = Runner(keepalive=Ticks(), poll=0.05).run(
        ["sh", "-c", "sleep 0.3; wc -c"], input_text=text)
    assert result.stdout.strip() == str(len(text))


def test_a_command_that_cannot_be_run_is_a_clean_error(tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    os.chmod(str(script), 0o644)
    with pytest.raises(CommandError, match="cannot be run"):
        Runner().run([str(script)])
    with pytest.raises(CommandError, match="not found"):
        Runner().run([str(tmp_path / "missing")])
