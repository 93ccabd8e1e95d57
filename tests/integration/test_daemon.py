"""The daemon as a real process fed real udev events (umockdev), real signals and a
real NOTIFY_SOCKET, exporting through the IET stand-in."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from support.daemonrun import (
    DAEMON_PYTHON,
    SERIAL,
    TAPE0,
    hctl_line,
    in_netns,
    needs_daemon,
    netns_wrapper,
    wait_for,
)
from support.paths import ROOT


@pytest.fixture
def run(daemon_run):
    return daemon_run


@needs_daemon
def test_add_change_remove_return_at_new_address(run, ietroot):
    d = run()
    ready = d.start()
    assert "1 device absent" in ready.get("STATUS", ""), ready
    base = ietroot.restarts
    assert "Target iqn.2007-04.com.example:tape0" in d.ietd()

    added_at = time.monotonic()
    path = d.bed.add_tape("1:0:6:0", serial=SERIAL)
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd() and ietroot.restarts == base + 1,
             what="the export after add")
    assert time.monotonic() - added_at < 3
    assert "lun:0" in ietroot.read(ietroot.volume)
    d.notify.wait("STATUS", "1 export ok")

    last = d.settle()
    d.bed.uevent(path, "change")
    last = d.wait_pass(last)
    assert ietroot.restarts == base + 1, "a change uevent must not restart the target"

    d.bed.remove(path)
    d.wait_pass(last)
    assert ietroot.restarts == base + 1, "absent = keep: no restart when the tape goes"
    assert hctl_line("1:0:6:0") in d.ietd()
    d.notify.wait("STATUS", "0 exports ok, 1 degraded, 1 device absent (last address kept)")

    returned_at = time.monotonic()
    d.bed.add_tape("3:0:2:0", serial=SERIAL, st_index=1, sg_index=1)
    wait_for(lambda: hctl_line("3:0:2:0") in d.ietd() and ietroot.restarts == base + 2,
             what="the export to follow the tape to 3:0:2:0")
    assert time.monotonic() - returned_at < 3
    d.settle()
    assert ietroot.restarts == base + 2, "exactly one restart for the renumbering"
    assert hctl_line("1:0:6:0") not in d.ietd()
    # each new device instance was reset once, before the restart that mapped it
    assert [line for line in ietroot.log() if line.startswith(("reset", "restarted"))][
        -4:] == ["reset 1:0:6:0", "restarted", "reset 3:0:2:0", "restarted"]
    # structured fields (journal) are shown in text logs too
    assert ("INFO: [export tape0] LUN 0 (serial:%s): present at 3:0:2:0 [target=iqn.2007-04"
            ".com.example:tape0 serial=%s hctl=3:0:2:0]" % (SERIAL, SERIAL)) in d.text()
    assert d.stop() == 0


@needs_daemon
def test_burst_of_300_change_events_is_coalesced_without_restart(run, ietroot):
    d = run()
    path = d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    last = d.settle()
    base = ietroot.restarts
    for _ in range(300):
        d.bed.uevent(path, "change")
    d.wait_pass(last)
    passes = d.settle() - last
    assert 1 <= passes <= 3, "300 uevents made %d passes" % passes
    assert ietroot.restarts == base
    assert d.text().count("DEBUG: uevent change") == 300, "every uevent reached the daemon"


@needs_daemon
def test_sighup_good_then_bad_config_and_sigterm_keeps_export(run, ietroot):
    d = run()
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    d.settle()
    base = ietroot.restarts

    ietroot.write_config(TAPE0.replace("192.0.2.10", "192.0.2.10, 192.0.2.11"),
                         restart_retries="1")
    sent = time.monotonic()
    d.signal(signal.SIGHUP)
    d.notify.wait("RELOADING", "1", after=sent)
    d.notify.wait("READY", "1", after=sent)
    wait_for(lambda: "192.0.2.11" in (ietroot.read(ietroot.allow) or ""),
             what="initiators.allow to follow the reload")
    assert ietroot.restarts == base, "an access change needs no restart"

    conf_before = d.ietd()
    ietroot.write_config(TAPE0 + "bogus = 1\n", restart_retries="1")
    sent = time.monotonic()
    d.signal(signal.SIGHUP)
    d.notify.wait("RELOADING", "1", after=sent)
    ready = d.notify.wait("READY", "1", after=sent)
    assert "last good configuration kept" in ready["STATUS"]
    line = wait_for(lambda: [ln for ln in d.text().splitlines() if "reload refused" in ln],
                    what="the reload error in the log")[0]
    assert d.conf in line and "[export tape0]" in line and "bogus" in line, line
    d.settle()
    assert d.ietd() == conf_before and ietroot.restarts == base

    sent = time.monotonic()
    assert d.stop() == 0
    d.notify.wait("STOPPING", "1", after=sent, timeout=2)
    assert hctl_line("1:0:6:0") in d.ietd(), "stop_action = keep leaves the export up"
    assert "tid:1 name:iqn.2007-04.com.example:tape0" in ietroot.read(ietroot.volume)
    assert ietroot.restarts == base


@needs_daemon
def test_stop_action_unexport_removes_the_target(run, ietroot):
    d = run(stop_action="unexport")
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    assert d.stop() == 0
    assert "Target iqn.2007-04.com.example:tape0" not in d.ietd()
    assert "tape0" not in (ietroot.read(ietroot.volume) or "")
    assert "unexported the managed targets" in d.text()


@needs_daemon
def test_failed_apply_backs_off_without_blocking_the_loop(run, ietroot):
    with open(ietroot.path("standin/fail_restarts"), "w") as handle:
        handle.write("2")
    d = run(watchdog_usec=400000)
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    ready = d.start()
    assert "apply failed" in ready["STATUS"] and "next attempt in 1s" in ready["STATUS"]
    second = wait_for(lambda: [m for m in d.notify.find("STATUS")
                               if "next attempt in 2s" in m["STATUS"]], timeout=5,
                      what="the second failure")[0]
    d.notify.wait("STATUS", "1 export ok", timeout=10)
    ok = [(t, m) for t, m in d.notify.messages if m.get("STATUS") == "1 export ok"][0]
    assert "next attempt in 2s" in second["STATUS"], second
    first_t = [t for t, m in d.notify.messages if m.get("READY") == "1"][0]
    assert ok[0] - first_t >= 2.5, "1 s then 2 s of back-off"
    pings = [t for t, m in d.notify.messages if m.get("WATCHDOG") == "1"
             and first_t <= t <= ok[0]]
    assert len(pings) >= 8, "the watchdog is fed while waiting to retry: %d" % len(pings)
    assert ietroot.counter("failed_restarts") == 2 and ietroot.restarts == 1
    # the same error again is logged once (then at DEBUG), and the recovery once
    assert d.text().count("ERROR: apply failed") == 1
    assert d.text().count("INFO: apply succeeded again") == 1


@needs_daemon
def test_periodic_resync_repairs_drift_and_idles(run, ietroot):
    d = run(resync_interval="1")
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    base = ietroot.restarts
    os.unlink(ietroot.ietd_conf)  # drift, and no event tells the daemon
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), timeout=5,
             what="the resync to rewrite ietd.conf")
    wait_for(lambda: ietroot.restarts == base + 1, what="one restart after the repair")
    with open("/proc/%d/stat" % d.proc.pid) as handle:
        ticks0 = sum(int(x) for x in handle.read().rsplit(")", 1)[1].split()[11:13])
    time.sleep(2.5)
    with open("/proc/%d/stat" % d.proc.pid) as handle:
        ticks1 = sum(int(x) for x in handle.read().rsplit(")", 1)[1].split()[11:13])
    assert len(re.findall(r"DEBUG: pass \d+ \(resync\)", d.text())) >= 3
    assert ticks1 - ticks0 < 0.5 * os.sysconf("SC_CLK_TCK"), "the loop must not spin"
    assert ietroot.restarts == base + 1


@needs_daemon
@needs_daemon
def test_portal_address_events_move_the_firewall_rule(run, ietroot):
    if netns_wrapper() is None or shutil.which("iptables") is None:
        pytest.skip("needs a private network namespace (unshare -n) and iptables")
    d = run(portal="lo", firewall="iptables")
    d.start()
    pid = d.proc.pid
    rules = lambda: in_netns(pid, "iptables", "-w", "-S", "TAPESHARED")  # noqa: E731
    assert "ACCEPT" not in rules()  # the portal has no address yet: nothing is open
    last = d.settle()
    in_netns(pid, "ip", "addr", "add", "192.0.2.1/32", "dev", "lo")
    d.wait_pass(last)
    assert re.search(r"DEBUG: pass \d+ \(addrs\)", d.text())
    wait_for(lambda: "-s 192.0.2.10/32 -d 192.0.2.1/32" in rules(), what="rule to portal")
    in_netns(pid, "ip", "addr", "del", "192.0.2.1/32", "dev", "lo")
    wait_for(lambda: "ACCEPT" not in rules(), what="rule gone with the address")


UDEV_OVERFLOW = r"""
import subprocess, sys, tempfile
sys.path.insert(0, sys.argv[1])
from tapeshared.host.udev import UdevWatch
watch = UdevWatch(subsystems=("net",), source="kernel", receive_buffer=1)
with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
    batch.write("".join("link add b%d type bridge\n" % i for i in range(64)))
    batch.flush()
    subprocess.run(["ip", "-batch", batch.name], check=True)
resync = watch.drain()
print("overflow", resync, watch.errors)
subprocess.run(["ip", "link", "add", "late", "type", "bridge"], check=True)
import select
select.select([watch], [], [], 5)
print("after", watch.drain(), watch.events)
"""


@pytest.mark.netns
def test_udev_monitor_overflow_reopens_and_asks_for_resync():
    # umockdev cannot overflow a monitor (its sender aborts on a full queue), so
    # this uses a real kernel uevent socket in a private netns, flooded by bridges.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
    try:
        out = subprocess.run(["unshare", "-n", sys.executable, "-c", UDEV_OVERFLOW, ROOT],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if out.returncode != 0 and "Operation not permitted" in out.stderr:
        pytest.skip("no permission for a private network namespace")
    assert out.returncode == 0, out.stderr
    assert "overflow True 1" in out.stdout, out.stdout + out.stderr
    assert "udev monitor failed" in out.stderr
    assert "after True" in out.stdout, "the re-opened monitor delivers events again"


WATCHDOG_SEC = 4.0


def longest_silence(notify, since, until):
    """The longest time without WATCHDOG=1 in [since, until], edges included."""
    pings = [t for t, m in notify.messages if m.get("WATCHDOG") == "1" and since <= t <= until]
    marks = [since] + pings + [until]
    return max(b - a for a, b in zip(marks, marks[1:]))


@needs_daemon
def test_watchdog_is_fed_while_the_lock_is_held_and_the_restart_is_slow(run, ietroot):
    # Another process holds the apply lock for 10 s, then the target's restart
    # command takes 10 s: the first pass is in bounded waits for 20 s and
    # systemd (WatchdogSec=4 here) must hear from us at least every 2 s.
    lock_file = ietroot.path("run/tapeshared/apply.lock")
    holder = subprocess.Popen(["flock", "-x", lock_file, "sleep", "10"])
    try:
        wait_for(lambda: subprocess.run(["flock", "-n", lock_file, "true"]).returncode != 0,
                 what="the other process to hold the lock")
        slow = "sh -c 'sleep 10; exec \"$@\"' sh " + ietroot.standin_argv("restart")
        d = run(watchdog_usec=int(WATCHDOG_SEC * 1e6), lock_timeout="30",
                restart_command=slow)
        d.bed.add_tape("1:0:6:0", serial=SERIAL)
        spawned = time.monotonic()
        d.start(wait_ready=False)
        # messages are stamped when read: wait() reads every 10 ms
        d.notify.wait("READY", "1", timeout=60)
        ready_t = [t for t, m in d.notify.messages if m.get("READY") == "1"][0]
        d.notify.collect(2.5)  # and on into the idle loop
    finally:
        holder.kill()
        holder.wait()
    assert ready_t - spawned >= 19, "the pass did not wait for the lock and the restart"
    # the start-up job's timeout is extended while it waits (systemd >= 236), not after
    extends = [t for t, m in d.notify.messages if m.get("EXTEND_TIMEOUT_USEC") == "30000000"]
    assert extends and extends[0] - spawned < 2 and max(extends) < ready_t
    marks = [spawned] + extends + [ready_t]
    assert max(b - a for a, b in zip(marks, marks[1:])) < 30, "the extension ran out"
    assert ietroot.restarts == 1 and hctl_line("1:0:6:0") in d.ietd()
    silence = longest_silence(d.notify, spawned, time.monotonic())
    print("longest watchdog silence: %.3fs over %.1fs (WatchdogSec=%gs)"
          % (silence, time.monotonic() - spawned, WATCHDOG_SEC))
    assert silence < WATCHDOG_SEC / 2, "no WATCHDOG=1 for %.2fs" % silence


def tapeshared(d, *argv, timeout=30):
    """A second tapeshared command beside the daemon, seeing the same testbed."""
    env = dict(os.environ, PYTHONPATH=ROOT, UMOCKDEV_DIR=d.bed.tb.get_root_dir())
    env.pop("NOTIFY_SOCKET", None)
    out = subprocess.run([DAEMON_PYTHON, "-m", "tapeshared", "-c", d.conf] + list(argv),
                         env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=timeout)
    assert "Traceback" not in out.stderr, out.stderr
    return out


@needs_daemon
def test_a_second_daemon_on_the_same_configuration_is_refused(run, ietroot):
    d = run()
    d.start()
    state_dir = ietroot.path("run/tapeshared")
    for extra in ([], ["--detach", "--pidfile", ietroot.path("second.pid")]):
        out = tapeshared(d, "run", "--log-target", "stderr", *extra)
        assert out.returncode == 1, out.stderr
        assert ("another tapeshared daemon (pid %d) already runs with state_dir %s"
                % (d.proc.pid, state_dir)) in out.stderr, out.stderr
    assert not os.path.exists(ietroot.path("second.pid"))
    assert d.proc.poll() is None, "the first daemon runs on"
    assert d.stop() == 0
    # the lock ends with the daemon: the next one starts
    d.log.close()
    sent = time.monotonic()
    d.start(wait_ready=False)
    d.notify.wait("READY", "1", after=sent)
    assert d.stop() == 0


@needs_daemon
def test_a_reload_that_moves_state_dir_moves_the_state_and_the_run_lock(run, ietroot):
    d = run()
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    old = ietroot.path("run/tapeshared/state.json")
    assert os.path.exists(old)
    moved = ietroot.path("run/moved")
    ietroot.write_config(TAPE0, restart_retries="1", state_dir=moved)
    sent = time.monotonic()
    d.signal(signal.SIGHUP)
    d.notify.wait("READY", "1", after=sent)
    wait_for(lambda: os.path.exists(os.path.join(moved, "state.json")),
             what="the state file in the new state_dir")
    assert not os.path.exists(old), "the old state file is removed, not left to go stale"
    out = tapeshared(d, "status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "daemon: running (pid %d" % d.proc.pid in out.stdout
    out = tapeshared(d, "run", "--log-target", "stderr")
    assert out.returncode == 1 and "state_dir %s" % moved in out.stderr, out.stderr
    # a reload onto a state_dir another daemon holds is refused; the old one is kept
    os.mkdir(ietroot.path("run/taken"))
    blocker = subprocess.Popen(["flock", "-x", ietroot.path("run/taken/daemon.lock"),
                                "sleep", "30"])
    try:
        wait_for(lambda: os.path.exists(ietroot.path("run/taken/daemon.lock")),
                 what="the other lock")
        ietroot.write_config(TAPE0, restart_retries="1", state_dir=ietroot.path("run/taken"))
        sent = time.monotonic()
        d.signal(signal.SIGHUP)
        ready = d.notify.wait("READY", "1", after=sent)
        assert "reload refused" in ready["STATUS"] and "already runs" in ready["STATUS"]
    finally:
        blocker.kill()
        blocker.wait()
    assert os.path.exists(os.path.join(moved, "state.json"))
    assert d.stop() == 0


@needs_daemon
def test_uevents_that_are_not_utf8_log_one_warning_and_the_daemon_goes_on(run, ietroot):
    d = run()
    path = d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    last = d.settle()
    # the bytes go into the uevent messages only: sysfs is clean again for the pass
    uevent_file = d.bed.tb.get_root_dir() + path + "/uevent"
    with open(uevent_file, "rb") as handle:
        clean = handle.read()
    with open(uevent_file, "wb") as handle:
        handle.write(clean + b"DEVTYPE=scsi_\xff\xfedevice\n")
    for _ in range(30):
        d.bed.uevent(path, "change")
    with open(uevent_file, "wb") as handle:
        handle.write(clean)
    last = d.wait_pass(last)
    d.settle()
    text = d.text()
    warnings = [ln for ln in text.splitlines() if "not UTF-8" in ln]
    assert len(warnings) == 1 and warnings[0].startswith(
        "tapeshared: WARNING: uevents with strings that are not UTF-8"), \
        warnings
    assert "ERROR" not in text and "Traceback" not in text
    assert "re-opening" not in text, "one bad message is not a dead monitor"
    # and it goes on following the tape
    d.bed.remove(path)
    d.bed.add_tape("3:0:2:0", serial=SERIAL, st_index=1, sg_index=1)
    wait_for(lambda: hctl_line("3:0:2:0") in d.ietd(), what="the export to follow the tape")
    assert d.proc.poll() is None


@needs_daemon
def test_a_lock_dir_that_goes_bad_at_run_time_is_retried_until_it_heals(run, ietroot):
    lock_dir = ietroot.path("lockdir")
    d = run(lock_file=lock_dir + "/apply.lock", resync_interval="1")
    d.bed.add_tape("1:0:6:0", serial=SERIAL)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    shutil.rmtree(lock_dir)
    with open(lock_dir, "w"):
        pass  # a file where the lock directory was
    wait_for(lambda: "ERROR: apply failed: cannot create the apply lock directory %s: %s "
             "is not a directory" % (lock_dir, lock_dir) in d.text(), timeout=10,
             what="the failure, naming the path")
    wait_for(lambda: [m for m in d.notify.find("STATUS") if "next attempt in 2s"
                      in m["STATUS"]], timeout=10, what="a second attempt, backed off")
    os.unlink(lock_dir)
    wait_for(lambda: "INFO: apply succeeded again" in d.text(), timeout=15,
             what="the recovery once the host is fixed")
    assert d.proc.poll() is None and "Traceback" not in d.text()
    assert d.text().count("ERROR: apply failed") == 1, "the same error is logged once"


@needs_daemon
def test_a_state_dir_that_goes_bad_at_run_time_is_warned_about_and_retried(run, ietroot):
    d = run(resync_interval="1")
    d.start()
    state_dir = ietroot.path("run/tapeshared")
    shutil.rmtree(state_dir)
    with open(state_dir, "w"):
        pass
    wait_for(lambda: "WARNING: cannot write the state file %s/state.json: cannot create the "
             "state directory %s" % (state_dir, state_dir) in d.text(), timeout=10,
             what="the warning, naming the path")
    os.unlink(state_dir)
    wait_for(lambda: os.path.exists(os.path.join(state_dir, "state.json")), timeout=10,
             what="the state file written again")
    assert d.proc.poll() is None and "Traceback" not in d.text()


@needs_daemon
def test_sigterm_ends_a_wait_for_the_lock_at_once(run, ietroot):
    lock_file = ietroot.path("run/tapeshared/apply.lock")
    holder = subprocess.Popen(["flock", "-x", lock_file, "sleep", "25"])
    try:
        wait_for(lambda: subprocess.run(["flock", "-n", lock_file, "true"]).returncode != 0,
                 what="the other process to hold the lock")
        d = run(lock_timeout="30", watchdog_usec=4000000)
        d.start(wait_ready=False)
        d.notify.wait("WATCHDOG", "1")  # in the first pass, waiting for the lock
        time.sleep(1)
        sent = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.proc.wait(10) == 0
        took = time.monotonic() - sent
    finally:
        holder.kill()
        holder.wait()
    print("SIGTERM to exit during the lock wait: %.3fs" % took)
    assert took < 2, "SIGTERM waited %.1fs for the lock" % took
    assert "ERROR" not in d.text() and "Traceback" not in d.text()
    assert ietroot.restarts == 0


@needs_daemon
def test_a_removed_run_lock_is_taken_again_so_a_second_daemon_is_still_refused(run, ietroot):
    d = run(resync_interval="1")
    d.start()
    state_dir = ietroot.path("run/tapeshared")
    shutil.rmtree(state_dir)  # an admin cleaning /run by hand
    wait_for(lambda: os.path.exists(os.path.join(state_dir, "daemon.lock")), timeout=10,
             what="the run lock taken again")
    out = tapeshared(d, "run", "--log-target", "stderr")
    assert out.returncode == 1 and "already runs" in out.stderr, out.stderr
    assert d.proc.poll() is None


@needs_daemon
def test_status_calls_a_daemon_busy_in_a_long_wait_running_not_stale(run, ietroot):
    # resync_interval = 1: status calls a state older than 12 s stale; the first
    # pass waits 16 s for the lock held by another process
    lock_file = ietroot.path("run/tapeshared/apply.lock")
    holder = subprocess.Popen(["flock", "-x", lock_file, "sleep", "16"])
    try:
        wait_for(lambda: subprocess.run(["flock", "-n", lock_file, "true"]).returncode != 0,
                 what="the other process to hold the lock")
        d = run(lock_timeout="30", resync_interval="1")
        d.start(wait_ready=False)
        time.sleep(14)
        assert not d.notify.find("READY"), "still in the first pass"
        out = tapeshared(d, "status", "--json")
    finally:
        holder.kill()
        holder.wait()
    doc = json.loads(out.stdout)
    assert doc["daemon"]["health"] == "running", doc["daemon"]
    assert doc["daemon"]["pid"] == d.proc.pid
    d.notify.wait("READY", "1", timeout=20)
