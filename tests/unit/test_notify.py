"""sd_notify over a real unix datagram socket: messages, abstract names, watchdog rules."""

import os
import socket
import threading
import time

from tapeshared.daemon.notify import Notifier


def bound(address):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def lines(sock):
    return sock.recv(4096).decode().splitlines()


def test_messages_reach_a_real_notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    sock = bound(path)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    notifier.ready("1 export ok")
    assert lines(sock) == ["READY=1", "STATUS=1 export ok"]
    notifier.status("1 export ok")  # unchanged: not sent again
    notifier.status("line one\nline two")
    assert lines(sock) == ["STATUS=line one line two"]
    notifier.reloading()
    got = lines(sock)
    assert got[0] == "RELOADING=1" and got[1].startswith("MONOTONIC_USEC=")
    notifier.stopping()
    assert lines(sock) == ["STOPPING=1"]
    notifier.close()
    sock.close()


def test_abstract_socket_names():
    name = "tapeshared-test-%d" % os.getpid()
    sock = bound("\0" + name)
    Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).send(READY=1)
    assert lines(sock) == ["READY=1"]
    sock.close()


def test_watchdog_pings_at_a_quarter_of_the_interval(tmp_path):
    # a quarter, so that a wait checking in every wait_slice still leaves
    # systemd less than half of WatchdogSec without a ping
    path = str(tmp_path / "notify")
    sock = bound(path)
    now = [100.0]
    notifier = Notifier(path, watchdog_usec=10000000, clock=lambda: now[0])
    assert notifier.interval == 2.5 and notifier.wait_slice == 0.5
    notifier.ping_if_due()
    assert lines(sock) == ["WATCHDOG=1"]
    now[0] += 2.4
    notifier.ping_if_due()
    now[0] += 0.2
    notifier.ping_if_due()
    assert lines(sock) == ["WATCHDOG=1"]
    sock.settimeout(0.05)
    try:
        extra = sock.recv(4096)
    except socket.timeout:
        extra = None
    assert extra is None, "pinged before a quarter of the interval had passed"
    assert abs(notifier.ping_due() - 105.1) < 1e-9


def test_keepalive_sleep_feeds_the_watchdog_through_a_long_sleep(tmp_path):
    # a retry's back-off sleeps up to 5 s: longer than half of a small WatchdogSec
    path = str(tmp_path / "notify")
    sock = bound(path)
    pings = []

    def read():  # as systemd does, at once: each datagram stamped when it arrives
        while True:
            try:
                data = sock.recv(4096)
            except (socket.timeout, OSError):
                return
            pings.append((time.monotonic(), data))

    reader = threading.Thread(target=read)
    reader.start()
    notifier = Notifier(path, watchdog_usec=800000)  # WatchdogSec=0.8
    start = time.monotonic()
    notifier.keepalive_sleep(2.0)
    end = time.monotonic()
    reader.join()  # ends after 2 s without a datagram
    sock.close()
    assert end - start >= 2.0
    marks = [start] + [t for t, data in pings if t <= end and data == b"WATCHDOG=1\n"] + [end]
    assert max(b - a for a, b in zip(marks, marks[1:])) < 0.4, "half of WatchdogSec"


def test_a_notify_socket_nobody_reads_never_blocks(tmp_path):
    path = str(tmp_path / "notify")
    sock = bound(path)  # bound, never read: its queue fills up
    notifier = Notifier(path)
    start = time.monotonic()
    sent = [notifier.send(STATUS="message %d" % n) for n in range(500)]
    assert time.monotonic() - start < 2
    assert sent[0] and not sent[-1], "the queue filled up and later sends were dropped"
    sock.close()


def test_watchdog_pid_of_another_process_is_ignored(tmp_path):
    path = str(tmp_path / "notify")
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_environ(env).interval is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier.from_environ(env).interval == 0.25
    del env["WATCHDOG_PID"]
    assert Notifier.from_environ(env).interval == 0.25


def test_no_notify_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    notifier = Notifier.from_environ()
    assert not notifier.enabled
    assert notifier.send(READY=1) is False
    notifier.ready("x")
    notifier.ping_if_due()
    assert "WATCHDOG_USEC" not in os.environ, "children must not inherit the watchdog"


def test_unreachable_socket_does_not_raise(tmp_path):
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    assert notifier.send(READY=1) is False


def test_sysv_parent_pipe_gets_readiness():
    reader, writer = os.pipe()
    notifier = Notifier(None, ready_fd=writer)
    notifier.ready("ok")
    assert os.read(reader, 10) == b"1"
    assert os.read(reader, 10) == b"", "the pipe is closed after readiness"
    os.close(reader)


def test_log_target_auto_follows_journal_stream(monkeypatch, tmp_path):
    import logging
    import sys

    from tapeshared.daemon import logsetup
    err = open(str(tmp_path / "stderr"), "w")
    info = os.fstat(err.fileno())
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("JOURNAL_STREAM", "%d:%d" % (info.st_dev, info.st_ino))
    monkeypatch.setattr(logsetup, "JOURNAL_SOCKET", str(tmp_path / "no-journald"))
    handler = logsetup.choose("auto")  # stderr is the journal, python-systemd unusable
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "moved %s", ("x",), None)
    record.TAPESHARED_HCTL = "3:0:2:0"
    assert handler.format(record) == "<4>moved x [hctl=3:0:2:0]"
    monkeypatch.delenv("JOURNAL_STREAM")
    plain = logsetup.choose("stderr").format(record)
    assert plain == "tapeshared: WARNING: moved x [hctl=3:0:2:0]"
    err.close()


def test_start_up_reload_and_stop_extend_the_job_timeout_while_waiting(tmp_path):
    path = str(tmp_path / "notify")
    sock = bound(path)
    sock.settimeout(0.05)
    now = [100.0]
    notifier = Notifier(path, clock=lambda: now[0])  # no watchdog: extends all the same

    def got():
        out = []
        while True:
            try:
                out += lines(sock)
            except socket.timeout:
                return out

    notifier.keepalive()
    assert got() == ["EXTEND_TIMEOUT_USEC=30000000"]  # the first pass waits
    now[0] += 5
    notifier.keepalive()
    assert got() == []
    now[0] += 5
    notifier.keepalive()
    assert got() == ["EXTEND_TIMEOUT_USEC=30000000"]
    notifier.ready("ok")
    got()
    now[0] += 60
    notifier.keepalive()
    assert got() == [], "a wait outside a job does not extend anything"
    notifier.reloading()
    got()
    notifier.keepalive()
    assert got() == ["EXTEND_TIMEOUT_USEC=30000000"]
    sock.close()
