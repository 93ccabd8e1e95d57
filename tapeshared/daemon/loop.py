"""The daemon loop: one thread, selectors over udev/netlink/signal fds, debounced reconciles."""

import logging
import os
import selectors
import signal
import socket
import time
from typing import Callable, Dict, Optional, Set

from tapeshared.core.errors import ConfigError, ManagedFileError, TapesharedError
from tapeshared.core.model import Config
from tapeshared.daemon.notify import Interrupted, Notifier
from tapeshared.daemon.partswatch import PartsWatch
from tapeshared.daemon.statefile import StateFile, summary
from tapeshared.host.lock import RunLock
from tapeshared.ports import Watch
from tapeshared.reconcile import Reconciler, Report

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0


class Daemon:
    """Level-triggered: every wake-up only marks the state dirty; a pass re-reads all."""

    def __init__(self, config_path: str, config: Config, load: Callable[[str], Config],
                 build: Callable[[Config], Reconciler], udev: Callable[[], Watch],
                 addrs: Callable[[], Watch], notifier: Notifier,
                 clock: Callable[[], float] = time.monotonic,
                 run_lock: Optional[RunLock] = None) -> None:
        self.config_path = config_path
        self.config = config
        self.load = load
        self.build = build
        self.reconciler = build(config)
        self.open_udev = udev
        self.open_addrs = addrs
        self.notifier = notifier
        self.clock = clock
        self.run_lock = run_lock
        self.state = StateFile(config.globals.state_dir, config.globals.resync_interval)
        self.selector = selectors.DefaultSelector()
        self.watches: Dict[str, Watch] = {}
        self.fds: Dict[str, int] = {}
        self.flags: Dict[str, bool] = {"hup": False, "term": False}
        self.dirty_since: Optional[float] = None
        self.pass_at: Optional[float] = None
        self.retry_at: Optional[float] = None
        self.resync_at = 0.0
        self.backoff = 0.0
        self.parts = PartsWatch(lambda: self.reconciler)  # LIO's, while one is missing
        self.halted: Optional[str] = None  # None | "config" | "managed"
        self.last_error = ""
        self.passes = 0
        self.report, self.status_text = Report(), "starting"
        self.why: Set[str] = set()

    # --- signals: the handlers only set flags; the wake-up fd ends the select ---
    def _on_signal(self, signum: int, _frame: object) -> None:
        self.flags["hup" if signum == signal.SIGHUP else "term"] = True

    def _setup_signals(self) -> socket.socket:
        reader, writer = socket.socketpair()
        for sock in (reader, writer):
            sock.setblocking(False)
        self._wakeup_writer = writer
        try:
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except TypeError:  # Python 3.6
            signal.set_wakeup_fd(writer.fileno())
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self.selector.register(reader, selectors.EVENT_READ, "signal")
        return reader

    # --- watches: fds that only mark dirty ---
    def _watch(self, name: str, opener: Optional[Callable[[], Watch]]) -> None:
        old = self.watches.pop(name, None)
        if old is not None:
            self._unregister(name)
            old.close()
        if opener is None:
            return
        try:
            self.watches[name] = opener()
            self._register(name)
        except (OSError, ImportError, ValueError) as exc:
            log.error("cannot watch %s events (%s); relying on the periodic resync", name, exc)

    def _register(self, name: str) -> None:
        fd = self.watches[name].fileno()
        self.selector.register(fd, selectors.EVENT_READ, name)
        self.fds[name] = fd

    def _unregister(self, name: str) -> None:
        fd = self.fds.pop(name, None)
        if fd is not None:
            self.selector.unregister(fd)

    def _drain(self, name: str) -> None:
        watch = self.watches[name]
        errors = getattr(watch, "errors", 0)
        try:
            changed = watch.drain()
        except (OSError, ValueError) as exc:
            log.error("%s watch failed (%s); re-opening it", name, exc)
            self._watch(name, self.open_udev if name == "udev" else self.open_addrs)
            self.mark_dirty(name + " error")
            return
        if changed:
            # A watch re-opened after an overflow may reuse the fd number, and epoll
            # forgot the old one when it closed: register again whenever it says so.
            self._unregister(name)
            try:
                self._register(name)
            except (OSError, ValueError) as exc:
                log.error("%s watch cannot be re-registered (%s); re-opening it", name, exc)
                self._watch(name, self.open_udev if name == "udev" else self.open_addrs)
            self.mark_dirty(name + (" overflow" if getattr(watch, "errors", 0) > errors
                                    else ""))

    # --- timers ---
    def mark_dirty(self, why: str, immediate: bool = False) -> None:
        """Something may have changed: pass after a quiet period, or at once.
        A real event (not a retry or resync) resets the backoff."""
        self.why.add(why)
        self.backoff = self.backoff if why in ("retry", "resync") else 0.0
        now = self.clock()
        settings = self.config.globals
        if self.dirty_since is None:
            self.dirty_since = now
        cap = self.dirty_since + settings.debounce_max
        self.pass_at = now if immediate else min(now + settings.debounce, cap)

    def _next_deadline(self) -> float:
        return min(t for t in (self.resync_at, self.pass_at, self.retry_at, self.parts.at,
                               self.notifier.ping_due()) if t is not None)

    def _timers(self) -> None:
        now = self.clock()
        if self.parts.due(now):
            self.mark_dirty("kernel part appeared")
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            log.info("retrying the failed apply")
            self.mark_dirty("retry", immediate=True)
        if now >= self.resync_at:
            self.mark_dirty("resync", immediate=True)
            if "udev" not in self.watches:  # a failed re-open: try again now
                self._watch("udev", self.open_udev)
            if self.config.globals.portal and "addrs" not in self.watches:
                self._watch("addrs", self.open_addrs)
        # a fresh clock: mark_dirty() stamped pass_at after `now` was read
        if self.pass_at is not None and self.clock() >= self.pass_at:
            self.run_pass()

    # --- the pass ---
    def run_pass(self) -> None:
        """Observe everything afresh and apply; errors decide the next attempt."""
        self.pass_at = self.dirty_since = None
        why, self.why = ", ".join(sorted(self.why)) or "start", set()
        self.resync_at = self.clock() + self.config.globals.resync_interval
        if self.halted == "config":
            log.debug("configuration error pending: no apply until a reload")
            return
        self.passes += 1
        report = Report(started=time.time())
        error: Optional[str] = None
        try:
            report = self.reconciler.apply()
        except Interrupted:
            return  # SIGTERM cut a wait short: the loop stops next, nothing to retry
        except ConfigError as exc:
            error, self.halted = "configuration error: %s" % exc, "config"
        except ManagedFileError as exc:
            error, self.halted = "refused: %s" % exc, "managed"
        except (TapesharedError, OSError) as exc:  # transient, command, verify, lock
            error = "apply failed: %s" % exc
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the loop either
            log.exception("unexpected error in apply")
            error = "apply failed unexpectedly: %r" % exc
        retry_in = None
        if error is None:
            self.halted, self.backoff, self.retry_at = None, 0.0, None
            if self.last_error:
                log.info("apply succeeded again")
            self.last_error = ""
            self._log_moves(report)
            self.report = report
            self.status_text = summary(report)
            self.notifier.status(self.status_text)
        else:
            if self.halted is None:
                self.backoff = min(BACKOFF_MAX, self.backoff * 2 or BACKOFF_FIRST)
                retry_in = self.backoff
                self.retry_at = self.clock() + retry_in
            self._report_error(error, retry_in)
        self.parts.after_pass(error is not None, self.clock())
        log.debug("pass %d (%s): %d actions in %.3fs%s", self.passes, why, len(report.actions),
                  report.seconds, ", failed" if error else "")
        self.state.set("pass_time", time.time())  # for `status`: the last pass, done or not
        self.state.record(report, error, retry_in)
        self._write_state()

    def _log_moves(self, report: Report) -> None:
        """One INFO line per LUN whose device appeared, moved or went (journal fields)."""
        old = {(t.iqn, lun.lun): lun for t in self.report.desired.targets for lun in t.luns}
        for target in report.desired.targets:
            for lun in target.luns:
                before = old.get((target.iqn, lun.lun))
                if before is not None and (before.status, before.hctl) == (lun.status,
                                                                           lun.hctl):
                    continue
                log.info("[export %s] LUN %d (%s): %s at %s", target.name, lun.lun, lun.match,
                         lun.status, lun.hctl or "-", extra={
                             "TAPESHARED_TARGET": target.iqn,
                             "TAPESHARED_" + lun.match.kind.upper(): lun.match.value,
                             "TAPESHARED_HCTL": str(lun.hctl or "")})

    def _report_error(self, error: str, retry_in: Optional[float]) -> None:
        if retry_in is not None:
            text = "%s (next attempt in %gs)" % (error, retry_in)
        elif self.halted == "config":
            text = "%s; waiting for a fixed configuration and a reload (SIGHUP)" % error
        else:
            text = "%s; trying again on the next event, resync or reload" % error
        if error != self.last_error:
            log.error("%s", text)
        else:
            log.debug("%s", text)
        self.last_error = error
        self.status_text = text
        self.notifier.status(text)

    def _write_state(self) -> None:
        try:
            self._move_state(self.config.globals.state_dir)  # a removed run lock: re-taken
            self.state.write()
        except (OSError, TapesharedError) as exc:  # a host condition: tried every pass
            log.warning("cannot write the state file %s: %s", self.state.path, exc)

    # --- reload and stop ---
    def reload(self) -> None:
        """SIGHUP: load and check the config; a bad one leaves the last good in force."""
        self.notifier.reloading()
        log.info("reloading the configuration from %s", self.config_path)
        try:
            config = self.load(self.config_path)
            reconciler = self.build(config)
            self._move_state(config.globals.state_dir)  # another daemon there: refused
        except TapesharedError as exc:  # a ConfigError, or the run lock of a new state_dir
            log.error("reload refused, keeping the last good configuration: %s", exc)
            self.notifier.send(READY=1, STATUS="reload refused (last good configuration "
                                               "kept): %s" % exc)
            return
        portal_changed = bool(config.globals.portal) != bool(self.config.globals.portal)
        self.config, self.reconciler = config, reconciler
        self.state.set("resync_interval", config.globals.resync_interval)
        self.halted, self.backoff, self.retry_at = None, 0.0, None
        self.why.add("reload")
        if portal_changed:
            self._watch("addrs", self.open_addrs if config.globals.portal else None)
        self.run_pass()
        self.notifier.ready(self.status_text)

    def _move_state(self, state_dir: str) -> None:
        """Follow a moved state_dir: the run lock first, then the state file."""
        if self.run_lock is not None:
            self.run_lock = self.run_lock.move(state_dir)
        self.state.move(state_dir)

    def _stop(self) -> None:
        self.notifier.stopping()
        self.notifier.abort = None  # an unexport on stop waits for the lock in full
        log.info("stopping (stop_action = %s)", self.config.globals.stop_action)
        if self.config.globals.stop_action == "unexport":
            self._unexport()
        self.state.set("running", False)
        self._write_state()

    def _unexport(self) -> None:
        try:
            actions = self.reconciler.unexport()
            log.info("unexported the managed targets: %s", "; ".join(actions) or "none")
        except Exception as exc:  # noqa: BLE001 - stopping anyway; say why
            log.error("unexport on stop failed: %s", exc)

    # --- the loop ---
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status."""
        self._move_state(self.config.globals.state_dir)  # the lock taken before a re-read
        reader = self._setup_signals()
        self.notifier.abort = lambda: self.flags["term"]
        self._watch("udev", self.open_udev)
        if self.config.globals.portal:
            self._watch("addrs", self.open_addrs)
        log.info("started (pid %d, config %s)", os.getpid(), self.config_path)
        self.run_pass()  # the first pass runs at once, then READY=1 even if it failed
        self.notifier.ready(self.status_text)
        try:
            while not self.flags["term"]:
                timeout = max(0.0, self._next_deadline() - self.clock())
                for key, _mask in self.selector.select(timeout):
                    if key.data == "signal":
                        try:
                            while reader.recv(256):
                                pass
                        except BlockingIOError:
                            pass
                    elif key.data in self.watches:
                        self._drain(key.data)
                self.notifier.ping_if_due()
                if self.flags["term"]:
                    break
                if self.flags["hup"]:
                    self.flags["hup"] = False
                    self.reload()
                self._timers()
        finally:
            self._stop()
            signal.set_wakeup_fd(-1)
            for name in list(self.watches):
                self._watch(name, None)
            self.notifier.close()
            if self.run_lock is not None:
                self.run_lock.release()
        return 0
