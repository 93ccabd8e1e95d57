"""`status` names what keeps a cold host from exporting: LIO's kernel parts and
a portal without its address; its JSON carries the backend, the portals and
the daemon's last pass time (schema 2)."""

import json
import os
import subprocess
import sys
import time

import pytest
from support.paths import ROOT

from tapeshared import config, status
from tapeshared.daemon.statefile import StateFile, process_start
from tapeshared.reconcile import Report

EXPORT = ("[export tape0]\nserial = NOSUCHTAPE0\ninitiators = 192.0.2.10\n"
          "initiator_iqns = iqn.1994-05.com.example:a\n")


@pytest.fixture
def live_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


def running_state(cfg, pid):
    state = StateFile(cfg.globals.state_dir, cfg.globals.resync_interval)
    state.record(Report(started=time.time()), None, None)
    state.set("pid", pid)
    state.set("pid_start", process_start(pid))
    state.set("pass_time", 1700000000.5)
    state.write()


def test_a_missing_fabric_and_portal_address_are_named_with_what_to_do(ietroot, live_child,
                                                                       tmp_path):
    lio_root = str(tmp_path / "config" / "target")
    os.makedirs(lio_root)
    ietroot.write_config(EXPORT, backend="lio", lio_root=lio_root, portal="192.0.2.77")
    cfg = config.load(ietroot.conf)
    running_state(cfg, live_child.pid)
    code, doc = status.collect(ietroot.conf)
    assert code == status.BROKEN == doc["exit_code"]
    assert doc["schema"] == status.SCHEMA == 2
    assert doc["daemon"]["last_pass_time"] == 1700000000.5
    parts = {p["name"]: p for p in doc["backend"]["parts"]}
    assert doc["backend"]["name"] == "lio"
    assert parts[lio_root + "/iscsi"]["ok"] is False
    assert parts["configfs"]["hint"] == "mount -t configfs none /sys/kernel/config"
    problem = [p for p in doc["problems"] if p.startswith("LIO kernel part")]
    assert len(problem) == 1 and "%s/iscsi absent (mkdir %s/iscsi" % (lio_root, lio_root) \
        in problem[0]
    assert doc["portals"] == {"configured": "192.0.2.77", "addresses": [], "problem":
                              "192.0.2.77 has no address now (the export listens once it "
                              "gets one)"}
    text = status.render(doc)
    assert "backend: lio\n" in text and "portal 192.0.2.77: no address\n" in text
    assert "last pass: %s" % time.strftime("%Y-%m-%d %H:%M:%S",
                                            time.localtime(1700000000.5)) in text
    assert "problem: LIO kernel parts missing: " in text


def test_iet_has_no_parts_and_a_portal_present_is_no_problem(ietroot, live_child):
    ietroot.write_config(EXPORT, portal="127.0.0.1")
    cfg = config.load(ietroot.conf)
    running_state(cfg, live_child.pid)
    _code, doc = status.collect(ietroot.conf)
    assert doc["backend"] == {"name": "iet"}
    assert doc["portals"]["addresses"] == ["127.0.0.1"] and doc["portals"]["problem"] is None
    assert not [p for p in doc["problems"] if "portal" in p or "LIO" in p]
    out = subprocess.run([sys.executable, "-m", "tapeshared", "-c", ietroot.conf, "status",
                          "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    assert json.loads(out.stdout)["schema"] == 2
