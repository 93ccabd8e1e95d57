"""State file (schema, atomic, no secrets) and `tapeshared status` LSB exit codes."""

import json
import os
import subprocess
import sys
import time

import pytest
from support.paths import ROOT

from tapeshared import config
from tapeshared.core.desired import desired_state
from tapeshared.core.model import Device, Hctl
from tapeshared.daemon.statefile import SCHEMA, StateFile, process_start, read_state
from tapeshared.reconcile import Report

SECRET = "s3cr3t-Chap-Pass"
TAPE0 = """[export tape0]
serial = NOSUCHTAPE0
initiators = 192.0.2.10
incoming_user = backup
incoming_secret_file = %s
"""


def setup_root(ietroot, **extra):
    ietroot.write_config(TAPE0 % ietroot.secret("chap", SECRET), **extra)
    return config.load(ietroot.conf)


def state_file(cfg, devices=(), actions=(), error=None):
    state = StateFile(cfg.globals.state_dir, cfg.globals.resync_interval)
    report = Report(devices=list(devices), desired=desired_state(cfg, list(devices)),
                    actions=list(actions), started=time.time(), seconds=0.01)
    state.record(report, error, 4.0 if error else None)
    return state


def test_state_is_versioned_json_without_secrets(ietroot):
    cfg = setup_root(ietroot)
    tape = Device(hctl=Hctl.parse("1:0:6:0"), type=1, serial="NOSUCHTAPE0", nst="/dev/nst0")
    state = state_file(cfg, [tape], ["restarted the target"])
    state.write()
    raw = open(state.path).read()
    data = json.loads(raw)
    assert data["schema"] == SCHEMA == 1
    assert data["pid"] == os.getpid() and data["pid_start"] == process_start(os.getpid())
    assert data["running"] is True
    assert data["devices"][0]["hctl"] == "1:0:6:0"
    assert data["exports"][0]["luns"][0]["status"] == "present"
    assert data["exports"][0]["luns"][0]["nodes"] == {"nst": "/dev/nst0"}
    assert data["last_change"]["actions"] == ["restarted the target"]
    assert SECRET not in raw and "backup" not in raw, "no CHAP users or secrets"
    assert read_state(state.path)["schema"] == 1


def test_state_write_is_atomic_and_skipped_when_equal(ietroot):
    cfg = setup_root(ietroot)
    state = state_file(cfg)
    state.write()
    inode = os.stat(state.path).st_ino
    os.utime(state.path, (1, 1))
    state.write()  # same content: not rewritten, only touched (freshness)
    info = os.stat(state.path)
    assert info.st_ino == inode and info.st_mtime > 1
    state.set("running", False)
    state.write()
    assert os.stat(state.path).st_ino != inode, "replaced by rename, not rewritten in place"
    assert sorted(os.listdir(os.path.dirname(state.path))) == ["state.json"]


def status(ietroot, *extra, pythonpath=ROOT):
    out = subprocess.run([sys.executable, "-m", "tapeshared", "-c", ietroot.conf, "status"]
                         + list(extra), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=pythonpath))
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, out.stdout + out.stderr


@pytest.fixture
def live_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


def exported(ietroot):
    """A running stand-in target exporting tape0 (LUN absent: nothing to verify)."""
    out = subprocess.run([sys.executable, "-m", "tapeshared", "-c", ietroot.conf, "apply"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "tid:1 name:iqn.2007-04.com.example:tape0" in ietroot.read(ietroot.volume)


def daemon_state(cfg, pid, **changes):
    state = state_file(cfg)
    state.set("pid", pid)
    state.set("pid_start", process_start(pid))
    for key, value in changes.items():
        state.set(key, value)
    state.write()
    return state


def test_status_ok_with_a_live_daemon(ietroot, live_child):
    cfg = setup_root(ietroot)
    exported(ietroot)
    ietroot.set_sessions(["tid:1 name:iqn.2007-04.com.example:tape0",
                          "\tsid:1 initiator:iqn.1993-08.org.debian:01:abc",
                          "\t\tcid:0 ip:192.0.2.10 state:active hd:none dd:none"])
    daemon_state(cfg, live_child.pid)
    code, text = status(ietroot)
    assert code == 0, text
    assert "daemon: running (pid %d" % live_child.pid in text
    assert "export tape0 (iqn.2007-04.com.example:tape0): exported, verified; " \
           "1 initiator connected" in text
    assert "initiator iqn.1993-08.org.debian:01:abc from 192.0.2.10" in text
    code, text = status(ietroot, "--json")
    doc = json.loads(text)
    assert code == doc["exit_code"] == 0
    assert doc["daemon"]["health"] == "running" and doc["daemon"]["pid"] == live_child.pid
    assert doc["exports"][0]["sessions"][0]["addresses"] == ["192.0.2.10"]
    assert SECRET not in text


def test_status_150_when_running_but_an_export_is_broken(ietroot, live_child):
    cfg = setup_root(ietroot)
    exported(ietroot)
    os.unlink(ietroot.volume)  # ietd died
    daemon_state(cfg, live_child.pid)
    code, text = status(ietroot)
    assert code == 150, text
    assert "NOT exported" in text and "ietd is not running" in text
    exported(ietroot)
    state = daemon_state(cfg, live_child.pid)
    state.record(Report(desired=desired_state(cfg, []), started=time.time()),
                 "apply failed: boom", 8.0)
    state.write()
    assert status(ietroot)[0] == 150


def test_status_3_when_not_running_still_shows_the_target(ietroot):
    cfg = setup_root(ietroot)
    exported(ietroot)
    code, text = status(ietroot)
    assert code == 3 and "daemon: not running" in text
    assert "exported, verified" in text, "status works without the daemon"
    daemon_state(cfg, os.getpid(), running=False)  # a clean stop leaves running = false
    assert status(ietroot)[0] == 3


def test_status_1_when_the_daemon_died_and_left_its_state(ietroot):
    cfg = setup_root(ietroot)
    exported(ietroot)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    daemon_state(cfg, dead.pid)
    code, text = status(ietroot, "--json")
    doc = json.loads(text)
    assert code == doc["exit_code"] == 1
    assert doc["daemon"]["health"].startswith("dead")
    assert doc["exports"][0]["verified"] is True, "the target is still shown"


def test_status_detects_a_reused_pid(ietroot, live_child):
    # a live process whose start time is not the one recorded is not the daemon
    cfg = setup_root(ietroot)
    exported(ietroot)
    daemon_state(cfg, live_child.pid, pid_start=1)
    code, text = status(ietroot)
    assert code == 1 and "daemon: dead" in text
    daemon_state(cfg, live_child.pid, pid_start=None)  # unknown start: not trusted
    assert status(ietroot)[0] == 1
    daemon_state(cfg, live_child.pid)
    assert status(ietroot)[0] == 0


def test_status_4_when_the_state_is_unreadable_or_stale(ietroot, live_child):
    cfg = setup_root(ietroot)
    exported(ietroot)
    state = daemon_state(cfg, live_child.pid)
    os.utime(state.path, (time.time() - 1000, time.time() - 1000))
    code, text = status(ietroot)
    assert code == 4 and "daemon: stale" in text
    with open(state.path, "w") as handle:
        handle.write("{not json")
    code, text = status(ietroot)
    assert code == 4 and "state:" in text
    with open(state.path, "w") as handle:
        json.dump({"schema": 99}, handle)
    assert status(ietroot)[0] == 4


@pytest.mark.parametrize("content, why", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"[" * 100000, "not valid JSON"),
    (b'{"schema": 2}', "not a schema 1"),
    (b'["schema", 1]', "not a schema 1"),
])
def test_status_4_on_garbage_or_another_schema(ietroot, content, why):
    cfg = setup_root(ietroot)
    with open(StateFile(cfg.globals.state_dir, 60).path, "wb") as handle:
        handle.write(content)
    code, text = status(ietroot)
    assert code == 4 and why in text, text
    assert "daemon: unknown" in text


@pytest.mark.parametrize("key, value", [
    ("pid", "1234"), ("pid", True), ("pid", None), ("running", "yes"),
    ("resync_interval", "60"), ("started", [1]), ("exports", {}),
    ("last_error", {"time": 1.0, "error": 5}), ("last_change", {"time": "x"}),
    ("last_pass", {"error": None, "actions": [1, 2]}), ("last_pass", "failed"),
])
def test_status_4_on_a_state_field_of_the_wrong_type(ietroot, live_child, key, value):
    cfg = setup_root(ietroot)
    state = daemon_state(cfg, live_child.pid)
    data = json.load(open(state.path))
    data[key] = value
    with open(state.path, "w") as handle:
        json.dump(data, handle)
    code, text = status(ietroot)
    assert code == 4 and "not a usable state file: %s" % key in text, text
    del data[key]
    with open(state.path, "w") as handle:
        json.dump(data, handle)
    code, text = status(ietroot)
    assert code == 4 and "%s is missing" % key in text, text


def test_status_4_when_the_configuration_is_unreadable(ietroot, live_child):
    cfg = setup_root(ietroot)
    daemon_state(cfg, live_child.pid)
    with open(ietroot.conf, "a") as handle:
        handle.write("bogus = 1\n")
    code, text = status(ietroot)
    assert code == 4 and "problem: configuration:" in text, text


NO_PYUDEV = "raise ImportError('No module named pyudev', name='pyudev')\n"


def test_status_without_pyudev_lists_the_exports_as_unknown(ietroot, live_child, tmp_path):
    cfg = setup_root(ietroot)
    exported(ietroot)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "pyudev.py").write_text(NO_PYUDEV)
    path = "%s:%s" % (hide, ROOT)
    code, text = status(ietroot, pythonpath=path)
    assert code == 3, text  # not running: that is known whatever else is not
    assert "export tape0 (iqn.2007-04.com.example:tape0): unknown" in text
    assert "LUN 0 serial:NOSUCHTAPE0: unknown" in text
    assert "pyudev is not installed" in text
    daemon_state(cfg, live_child.pid)
    code, text = status(ietroot, "--json", pythonpath=path)
    doc = json.loads(text)
    assert code == doc["exit_code"] == 4, text
    assert [e["name"] for e in doc["exports"]] == ["tape0"]
    assert doc["exports"][0]["exported"] is None and doc["exports"][0]["verified"] is None
    assert doc["exports"][0]["luns"][0]["status"] == "unknown"


def free_tgt_port():
    port = 29000 + os.getpid() % 900
    while os.path.exists("/run/tgtd/socket.%d" % port):
        port += 1
    return port


def test_status_with_tgtd_down_is_not_exported_not_a_failed_command(ietroot, live_child):
    import shutil
    if shutil.which("tgtadm") is None:
        pytest.skip("tgtadm is not installed (Debian package tgt)")
    ietroot.write_config(
        "[export tape0]\nserial = NOSUCHTAPE0\nlun = 1\ninitiators = 192.0.2.10\n"
        "initiator_iqns = iqn.1994-05.com.example:backup\n",
        backend="tgt", tgtadm="tgtadm -C %d" % free_tgt_port())
    cfg = config.load(ietroot.conf)
    code, text = status(ietroot)
    assert code == 3, text
    assert "NOT exported" in text and "tgtd does not answer" in text
    daemon_state(cfg, live_child.pid)
    code, text = status(ietroot, "--json")
    doc = json.loads(text)
    assert code == doc["exit_code"] == 150, text
    assert doc["exports"][0]["exported"] is False


def test_status_shows_each_luns_last_re_point(ietroot, monkeypatch, capsys):
    """After a renumbering with the IET stand-in: when the device was reset and
    who was told, per LUN, in text and --json; a LUN never reset says so."""
    from support import builders

    from tapeshared import app, cli
    from tapeshared.backends.iet.backend import IetBackend
    from tapeshared.host.lock import ApplyLock
    from tapeshared.host.runner import Runner
    from tapeshared.reconcile import Reconciler

    ietroot.write_config("[export tape0]\nserial = HU19487TL1\ninitiators = 192.0.2.10\n"
                         "\n[export lib]\nserial = CHANGER01\ninitiators = 192.0.2.10\n")
    devices = [builders.tape("1:0:6:0", serial="HU19487TL1"),
               builders.tape("2:0:1:0", serial="CHANGER01", kind=8)]
    clock = [1700000000.0]

    def reconciler(cfg, **_kw):
        backend = IetBackend(app.iet_settings(cfg.globals), Runner(timeout=30),
                             sleep=lambda s: None, reset=ietroot.fake_reset,
                             instance=ietroot.instance, clock=lambda: clock[0])
        return Reconciler(cfg, backend, lambda: list(devices),
                          lambda: ApplyLock(cfg.globals.lock_file, cfg.globals.lock_timeout))

    monkeypatch.setattr(app, "reconciler", reconciler)
    ietroot.present("1:0:6:0", "2:0:1:0")
    reconciler(config.load(ietroot.conf)).apply()
    devices[0] = builders.tape("12:0:6:0", serial="HU19487TL1")  # renumbered
    ietroot.present("12:0:6:0", "2:0:1:0")
    clock[0] = 1700000600.0
    reconciler(config.load(ietroot.conf)).apply()
    assert ietroot.resets[-1] == "12:0:6:0"

    assert cli.main(["-c", ietroot.conf, "status"]) == 3
    text = capsys.readouterr().out
    lines = text.splitlines()
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1700000600.0))
    tape0 = lines.index(next(line for line in lines if line.startswith("  LUN 0 serial:HU")))
    assert "at 12:0:6:0" in lines[tape0]
    assert lines[tape0 + 1] == "    last re-point: reset at %s, told: the first initiator " \
                               "command to reach the drive" % at, text
    lib = lines.index(next(line for line in lines if line.startswith("  LUN 0 serial:CH")))
    assert lines[lib + 1] == "    last re-point: reset at %s, told: the first initiator " \
                             "command to reach the drive" % time.strftime(
                                 "%Y-%m-%d %H:%M:%S", time.localtime(1700000000.0)), text

    assert cli.main(["-c", ietroot.conf, "status", "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    by_name = {e["name"]: e["luns"][0] for e in doc["exports"]}
    assert by_name["tape0"]["reset"] == {
        "time": 1700000600.0, "scope": "drive",
        "told": "the first initiator command to reach the drive"}
    assert by_name["lib"]["reset"]["time"] == 1700000000.0

    os.unlink(ietroot.path("run/tapeshared/iet-luns.json"))  # as if an older version ran
    assert cli.main(["-c", ietroot.conf, "status"]) == 3
    text = capsys.readouterr().out
    assert text.count("    last re-point: no reset on record") == 2, text
    assert cli.main(["-c", ietroot.conf, "status", "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert [e["luns"][0]["reset"] for e in doc["exports"]] == [None, None]
