"""The daemon's loop run for real (its selector, real fds, SIGTERM, the real
clock) with a reconciler that fails while LIO's kernel parts are missing: a
long backoff never holds back a real event or a part appearing."""

import os
import signal
import socket
import threading
import time
from typing import List

from tapeshared.core.model import Config, GlobalConfig
from tapeshared.daemon.loop import Daemon
from tapeshared.daemon.notify import Notifier
from tapeshared.host.lioparts import Part, PartsMissing
from tapeshared.reconcile import Report

DEBOUNCE = 0.2


class Parts:
    """The fabric is missing until the test says it appeared."""

    def __init__(self) -> None:
        self.there = False

    def missing(self) -> List[Part]:
        return [] if self.there else [Part("/sys/kernel/config/target/iscsi", False,
                                          "absent", "mkdir it")]


class Reconciler:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.applies: List[float] = []
        self.fail_always = False

    def apply(self) -> Report:
        self.applies.append(time.monotonic())
        if self.fail_always or self.parts.missing():
            raise PartsMissing("LIO kernel part missing: iscsi")
        return Report()

    def unexport(self) -> List[str]:
        return []


class Watch:
    """A uevent socket: a byte written to the other end is one event."""

    def __init__(self) -> None:
        self.pair = socket.socketpair()
        self.pair[0].setblocking(False)

    def fileno(self) -> int:
        return self.pair[0].fileno()

    def drain(self) -> bool:
        try:
            return bool(self.pair[0].recv(64))
        except BlockingIOError:
            return False

    def close(self) -> None:
        for sock in self.pair:
            sock.close()


def run_daemon(tmp_path, script):
    """Run the loop in this (main) thread; `script(daemon, fake, watch)` runs
    beside it and ends it with SIGTERM."""
    parts = Parts()
    fake = Reconciler(parts)
    watches: List[Watch] = []

    def udev() -> Watch:
        watches.append(Watch())
        return watches[-1]

    cfg = Config(GlobalConfig(state_dir=str(tmp_path), debounce=DEBOUNCE, debounce_max=2.0,
                              resync_interval=600.0), ())
    daemon = Daemon("/etc/tapeshared/tapeshared.conf", cfg, lambda p: cfg, lambda c: fake,
                    udev=udev, addrs=udev, notifier=Notifier())
    daemon.backoff = 200.0  # as after hours of failures: the next wait is BACKOFF_MAX
    errors: List[BaseException] = []

    def beside() -> None:
        try:
            deadline = time.monotonic() + 5
            while not fake.applies and time.monotonic() < deadline:
                time.sleep(0.01)
            script(daemon, fake, parts, watches[0])
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=beside)
    thread.start()
    try:
        assert daemon.run() == 0
    finally:
        thread.join(10)
    if errors:
        raise errors[0]
    return daemon, fake


def test_the_part_appearing_is_acted_on_within_a_poll_not_the_backoff(tmp_path):
    seen = {}

    def script(daemon, fake, parts, _watch):
        time.sleep(0.3)
        assert daemon.retry_at - time.monotonic() > 200, "the backoff is long"
        parts.there = True  # the admin's modprobe; no uevent comes
        appeared = time.monotonic()
        while len(fake.applies) < 2 and time.monotonic() < appeared + 5:
            time.sleep(0.01)
        seen["delay"] = fake.applies[-1] - appeared
        seen["applies"] = len(fake.applies)

    daemon, fake = run_daemon(tmp_path, script)
    assert seen["applies"] == 2
    assert seen["delay"] < 1.0 + DEBOUNCE + 0.5, "waited %.2fs" % seen["delay"]
    assert daemon.last_error == "" and daemon.backoff == 0.0


def test_a_uevent_during_a_long_backoff_gets_a_pass_after_the_debounce_and_resets_it(
        tmp_path):
    seen = {}

    def script(daemon, fake, parts, watch):
        fake.fail_always = True
        time.sleep(0.3)
        assert daemon.retry_at - time.monotonic() > 200
        sent = time.monotonic()
        watch.pair[1].send(b"x")  # a uevent
        while len(fake.applies) < 2 and time.monotonic() < sent + 5:
            time.sleep(0.01)
        seen["delay"] = fake.applies[-1] - sent
        time.sleep(0.05)
        seen["retry_in"] = daemon.retry_at - fake.applies[-1]

    run_daemon(tmp_path, script)
    assert DEBOUNCE - 0.05 <= seen["delay"] < DEBOUNCE + 0.5, "waited %.2fs" % seen["delay"]
    # the event reset the backoff: the failed pass it caused retries from the start
    assert seen["retry_in"] < 1.5, "next attempt %.1fs away" % seen["retry_in"]
