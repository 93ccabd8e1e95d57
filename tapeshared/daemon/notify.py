"""Readiness and watchdog notification: systemd's NOTIFY_SOCKET, or a SysV parent's pipe."""

import logging
import os
import socket
import time
from typing import Callable, Dict, Optional

from tapeshared.core.errors import TapesharedError

log = logging.getLogger(__name__)


class Interrupted(TapesharedError):
    """A bounded wait (the apply lock, a retry's back-off) cut short by SIGTERM; not
    a TransientError, so no retry loop takes it for a failure to try again."""

_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
EXTEND_BY = 30.0  # seconds of EXTEND_TIMEOUT_USEC per message


class Notifier:
    """sd_notify(3) without libsystemd: one datagram per message, never raising.

    Built from the environment once; the variables are then removed so the
    commands the daemon runs (a target's init script) do not inherit them.
    """

    def __init__(self, address: Optional[str] = None, watchdog_usec: int = 0,
                 ready_fd: int = -1, clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.ready_fd = ready_fd
        self.clock = clock
        # Ping every quarter of WatchdogSec: a wait that checks in every `wait_slice`
        # then still leaves systemd less than half the interval without a ping.
        self.interval: Optional[float] = watchdog_usec / 4e6 if watchdog_usec > 0 else None
        self.next_ping = clock()
        self._sock: Optional[socket.socket] = None
        self._last_status = ""
        # set by the daemon: True once SIGTERM came, so sleeps inside an apply end
        self.abort: Optional[Callable[[], bool]] = None
        # set by the daemon: called from every wait (the state file's freshness)
        self.on_wait: Optional[Callable[[], None]] = None
        self._in_job = True  # starting until READY=1
        self._extend_at = clock()

    @classmethod
    def from_environ(cls, environ: Optional[Dict[str, str]] = None, unset: bool = True,
                     ready_fd: int = -1) -> "Notifier":
        """The notifier systemd asked for (a no-op one without NOTIFY_SOCKET)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec = 0
        try:
            usec = int(env.get("WATCHDOG_USEC", "0") or 0)
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not a number", env.get("WATCHDOG_USEC"))
        pid = env.get("WATCHDOG_PID")
        if usec and pid and pid != str(os.getpid()):
            log.debug("WATCHDOG_PID=%s is not us (%d): no watchdog pings", pid, os.getpid())
            usec = 0
        if unset and environ is None:
            for name in _ENV:
                os.environ.pop(name, None)
        return cls(address, usec, ready_fd)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def _socket_address(self) -> str:
        assert self.address is not None
        # '@' names an abstract socket: a leading NUL byte on the wire.
        return "\0" + self.address[1:] if self.address.startswith("@") else self.address

    def send(self, **fields: object) -> bool:
        """Send KEY=value lines (READY=1, STATUS=...); False if not delivered."""
        if "READY" in fields and self.ready_fd >= 0:
            self._release_parent()
        if "READY" in fields or "RELOADING" in fields or "STOPPING" in fields:
            self._in_job = "READY" not in fields  # a job whose timeout waits extend
        if self.address is None:
            return False
        text = "".join("%s=%s\n" % (k, str(v).replace("\n", " ")) for k, v in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # never block: a notify socket that is not read must not hang the daemon
            self._sock.sendto(text.encode("utf-8", "replace"), socket.MSG_DONTWAIT,
                              self._socket_address())
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        log.debug("sd_notify: %s", text.strip().replace("\n", " "))
        return True

    def status(self, text: str) -> None:
        """STATUS= for `systemctl status`, sent only when it changes."""
        if text != self._last_status:
            self._last_status = text
            self.send(STATUS=text)

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send(READY=1, STATUS=status)

    def reloading(self) -> None:
        self.send(RELOADING=1, MONOTONIC_USEC=int(time.monotonic() * 1e6))

    def stopping(self) -> None:
        self.send(STOPPING=1)

    def ping_due(self) -> Optional[float]:
        """Monotonic time of the next watchdog ping, or None without a watchdog."""
        return self.next_ping if self.interval else None

    @property
    def wait_slice(self) -> float:
        """How long a bounded wait may block between two keepalive() calls."""
        return min(0.5, self.interval / 2) if self.interval else 0.5

    def ping_if_due(self) -> None:
        """WATCHDOG=1 when a quarter of the watchdog interval has passed since the last."""
        if not self.interval:
            return
        now = self.clock()
        if now >= self.next_ping:
            self.send(WATCHDOG=1)
            self.next_ping = now + self.interval

    def keepalive(self) -> None:
        """Called from inside a wait that has its own deadline (a command's timeout,
        the lock's timeout, a bounded retry): the same thread feeds the watchdog, so
        a wait without a deadline, or a hung loop, still starves it and is killed.
        It pings at half the usual period, so the work between two waits (observe,
        file writes) starts with a fresh ping and has most of the budget."""
        if self.interval and self.clock() >= self.next_ping - self.interval / 2:
            self.send(WATCHDOG=1)
            self.next_ping = self.clock() + self.interval
        if self.on_wait is not None:
            self.on_wait()
        now = self.clock()
        if self._in_job and now >= self._extend_at:
            # start-up, reload or stop still waiting: systemd >= 236 extends its
            # job timeout (TimeoutStartSec/TimeoutStopSec) by this much; older ones
            # ignore it. Bounded like the waits that send it.
            self.send(EXTEND_TIMEOUT_USEC=int(EXTEND_BY * 1e6))
            self._extend_at = now + EXTEND_BY / 3

    def keepalive_sleep(self, seconds: float) -> None:
        """A sleep for bounded waits inside an apply that keeps the watchdog fed and
        ends early (Interrupted) on SIGTERM; a running command is never cut short."""
        deadline = time.monotonic() + seconds
        while True:
            self.keepalive()
            if self.abort is not None and self.abort():
                raise Interrupted("stopping: a wait inside the apply was cut short")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, self.wait_slice))

    def _release_parent(self) -> None:
        """Tell a waiting SysV parent (`run --detach`) that we are ready."""
        try:
            os.write(self.ready_fd, b"1")
            os.close(self.ready_fd)
        except OSError as exc:
            log.debug("readiness pipe: %s", exc)
        self.ready_fd = -1

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
