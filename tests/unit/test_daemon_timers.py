"""The daemon's timing rules in-process, with an injected clock and a fake reconciler:
debounce and its cap, backoff, resync, configuration errors, the lock. The real
process (real uevents, signals, NOTIFY_SOCKET) is tested in tests/integration."""

from typing import List

import pytest

from tapeshared.core.errors import ConfigError, LockError, TransientError
from tapeshared.core.model import Config, GlobalConfig
from tapeshared.daemon import loop
from tapeshared.daemon.loop import Daemon
from tapeshared.daemon.notify import Notifier
from tapeshared.reconcile import Report


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeReconciler:
    """Counts applies; raises what the test queues."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.applies: List[float] = []
        self.failures: List[Exception] = []
        self.unexported = 0

    def apply(self) -> Report:
        self.applies.append(self.clock())
        if self.failures:
            raise self.failures.pop(0)
        return Report()

    def unexport(self) -> List[str]:
        self.unexported += 1
        return []


class FakeWatch:
    """A watch with a real (idle) fd, as the loop registers it with its selector."""

    def __init__(self) -> None:
        import socket
        self.pair = socket.socketpair()

    def fileno(self) -> int:
        return self.pair[0].fileno()

    def drain(self) -> bool:
        return False

    def close(self) -> None:
        for sock in self.pair:
            sock.close()


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    fake = FakeReconciler(clock)
    cfg = Config(GlobalConfig(state_dir=str(tmp_path), debounce=0.15, debounce_max=2.0,
                              resync_interval=60.0), ())
    loaded = {"config": cfg}

    def load(_path: str) -> Config:
        result = loaded["config"]
        if isinstance(result, Exception):
            raise result
        return result

    daemon = Daemon("/etc/tapeshared/tapeshared.conf", cfg, load, lambda c: fake,
                    udev=FakeWatch, addrs=FakeWatch,
                    notifier=Notifier(clock=clock), clock=clock)
    daemon.run_pass()  # the first pass at start
    return clock, fake, daemon, loaded


def tick(daemon: Daemon, clock: Clock, seconds: float, step: float = 0.01) -> None:
    """Let time pass, running the timers as the loop would after each select."""
    end = clock.now + seconds
    while clock.now < end - 1e-9:
        clock.advance(min(step, end - clock.now))
        daemon._timers()


def test_a_burst_of_events_is_one_pass_after_the_quiet_time(world):
    clock, fake, daemon, _ = world
    for _ in range(10):
        daemon.mark_dirty("udev")
        tick(daemon, clock, 0.05)
    assert len(fake.applies) == 1, "no pass while events keep coming"
    tick(daemon, clock, 0.2)
    assert len(fake.applies) == 2
    assert fake.applies[1] - fake.applies[0] == pytest.approx(0.45 + 0.15, abs=0.02)


def test_a_storm_is_capped_at_debounce_max(world):
    clock, fake, daemon, _ = world
    start = clock.now
    for _ in range(300):
        daemon.mark_dirty("udev")
        tick(daemon, clock, 0.1)
        if len(fake.applies) > 1:
            break
    assert fake.applies[1] - start == pytest.approx(2.0, abs=0.02)


def test_failures_back_off_doubling_and_success_resets(world):
    clock, fake, daemon, _ = world
    fake.failures = [TransientError("target busy")] * 4
    daemon.mark_dirty("udev")
    tick(daemon, clock, 20.0)
    gaps = [b - a for a, b in zip(fake.applies[1:], fake.applies[2:])]
    assert gaps[:3] == pytest.approx([1.0, 2.0, 4.0], abs=0.02)
    assert daemon.backoff == 0.0 and daemon.retry_at is None, "the fifth pass succeeded"
    assert daemon.last_error == ""


def test_backoff_is_capped(world):
    clock, fake, daemon, _ = world
    fake.failures = [TransientError("x")] * 12
    daemon.mark_dirty("udev")
    tick(daemon, clock, 2000.0, step=0.5)
    assert daemon.backoff <= loop.BACKOFF_MAX
    gaps = [b - a for a, b in zip(fake.applies[1:], fake.applies[2:])]
    assert max(gaps) <= loop.BACKOFF_MAX + 0.5


def test_an_event_during_backoff_is_followed_after_the_debounce(world):
    clock, fake, daemon, _ = world
    fake.failures = [TransientError("x")] * 9
    daemon.mark_dirty("udev")
    tick(daemon, clock, 40.0, step=0.05)  # backoff now 32 s or more
    assert daemon.backoff >= 32
    before = len(fake.applies)
    daemon.mark_dirty("udev")
    tick(daemon, clock, 0.2)
    assert len(fake.applies) == before + 1, "a real event is not held back by the backoff"


def test_resync_runs_a_pass_on_its_interval(world):
    clock, fake, daemon, _ = world
    tick(daemon, clock, 59.0, step=1.0)
    assert len(fake.applies) == 1
    tick(daemon, clock, 2.0, step=0.5)
    assert len(fake.applies) == 2
    tick(daemon, clock, 61.0, step=1.0)
    assert len(fake.applies) == 3


def test_a_held_lock_is_retried_like_any_transient_failure(world):
    clock, fake, daemon, _ = world
    fake.failures = [LockError("apply.lock is held")]
    daemon.mark_dirty("udev")
    tick(daemon, clock, 0.2)
    assert "apply.lock is held" in daemon.last_error and daemon.retry_at is not None
    tick(daemon, clock, 1.1)
    assert len(fake.applies) == 3 and daemon.last_error == ""


def test_a_configuration_error_halts_applies_until_a_good_reload(world):
    clock, fake, daemon, loaded = world
    fake.failures = [ConfigError("bad key", path="x.conf")]
    daemon.mark_dirty("udev")
    tick(daemon, clock, 0.2)
    assert daemon.halted == "config" and daemon.retry_at is None
    daemon.mark_dirty("udev")
    tick(daemon, clock, 120.0, step=1.0)
    assert len(fake.applies) == 2, "no apply while the configuration is bad"
    loaded["config"] = ConfigError("still bad", path="x.conf")
    daemon.reload()
    assert daemon.halted == "config" and len(fake.applies) == 2
    loaded["config"] = daemon.config
    daemon.reload()
    assert daemon.halted is None and len(fake.applies) == 3


def test_stop_unexports_only_when_asked(world, tmp_path):
    _clock, fake, daemon, _ = world
    daemon._stop()
    assert fake.unexported == 0
    daemon.config = Config(GlobalConfig(state_dir=str(tmp_path), stop_action="unexport"), ())
    daemon._stop()
    assert fake.unexported == 1
