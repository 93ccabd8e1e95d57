"""udev event watch for the daemon loop: a pyudev monitor whose fd the loop owns."""

import logging
import re
from typing import Any, Optional, Sequence

log = logging.getLogger(__name__)

SUBSYSTEMS = ("scsi", "scsi_tape", "scsi_generic")
# A tape brings st/nst plus six mode nodes (stNl, stNm, stNa, ...) and driver
# bind events: only the events that can change what a pass sees restart the
# debounce, so it does not stretch the outage of a renumbering.
_MODE_NODE = re.compile(r"\An?st[0-9]+[lma]\Z")
# Bounded work per drain() so an event storm cannot starve timers and signals;
# what is left keeps the fd readable and is read on the next loop round.
_MAX_EVENTS = 2048


class UdevWatch:
    """A pyudev Monitor read without blocking; no MonitorObserver thread.

    Any error out of the monitor (ENOBUFS after an overflow, or anything else)
    means events were lost: the monitor is re-opened and drain() returns True
    so the caller re-reads everything. After a re-open fileno() differs:
    re-register it.
    """

    def __init__(self, subsystems: Sequence[str] = SUBSYSTEMS, source: str = "udev",
                 receive_buffer: Optional[int] = None, context: Any = None) -> None:
        self.subsystems = tuple(subsystems)
        self.source = source
        self.receive_buffer = receive_buffer
        self._context = context
        self.events = 0
        self.errors = 0
        self._monitor: Any = None
        self._open()

    def _open(self) -> None:
        import pyudev
        if self._context is None:
            self._context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(self._context, source=self.source)
        for subsystem in self.subsystems:
            monitor.filter_by(subsystem)
        if self.receive_buffer:
            monitor.set_receive_buffer_size(self.receive_buffer)
        monitor.start()
        self._monitor = monitor
        log.debug("udev monitor (%s: %s) open on fd %d", self.source,
                  " ".join(self.subsystems), monitor.fileno())

    def fileno(self) -> int:
        """The fd to register for reading; it changes after a re-open."""
        if self._monitor is None:
            self._open()
        return int(self._monitor.fileno())

    def drain(self) -> bool:
        """Read pending events without blocking; True if anything may have changed."""
        if self._monitor is None:
            self._open()
            return True
        seen = False
        for _ in range(_MAX_EVENTS):
            try:
                device = self._monitor.poll(timeout=0)
            except (OSError, ValueError) as exc:  # ENOBUFS, a dead socket, a bad message
                self.errors += 1
                log.warning("udev monitor failed (%s): events may be lost; re-opening it "
                            "and re-reading every device", exc)
                self._reopen()
                return True
            if device is None:
                break
            self.events += 1
            wanted = relevant(device)
            seen = seen or wanted
            log.debug("uevent %s %s%s", device.action, device.sys_path,
                      "" if wanted else " (ignored)")
        return seen

    def _reopen(self) -> None:
        # pyudev has no close(): dropping the last reference unrefs the libudev
        # monitor, which closes its socket.
        self._monitor = None
        try:
            self._open()
        except (OSError, ValueError) as exc:
            # Leave it closed; fileno()/drain() retry the open on the next round.
            log.warning("re-opening the udev monitor failed: %s", exc)

    def close(self) -> None:
        self._monitor = None


def relevant(device: Any) -> bool:
    """Whether a uevent can change what discovery sees (others are only noise)."""
    if device.action in ("bind", "unbind"):
        return False
    if device.subsystem == "scsi":
        return device.device_type == "scsi_device"
    if device.subsystem == "scsi_tape":
        return not _MODE_NODE.match(device.sys_name or "")
    return True
