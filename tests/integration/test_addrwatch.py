"""Tests for the netlink address watch adapter, against real netlink in a private netns."""

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from support.paths import ROOT as _ROOT

ROOT = Path(_ROOT)

# Runs inside the namespace (`ip netns exec`), so it works under any Python the
# suite runs on (3.6 has no os.setns). Prints one JSON object.
CHILD = r'''
import json, logging, os, select, socket, subprocess, sys, time
from tapeshared.host.addrwatch import AddressWatch, addresses, resolve_portal

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warnings.append(record.getMessage())
logging.getLogger("tapeshared").addHandler(Keep())

def ip(*args):
    return subprocess.run(("ip",) + args, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True).stdout

def readable(watch, timeout=2.0):
    return bool(select.select([watch.fileno()], [], [], timeout)[0])

def settle(watch):
    # Link state changes reach netlink late (linkwatch): wait for quiet.
    deadline = time.time() + 5
    while time.time() < deadline and readable(watch, 0.3):
        watch.drain()

def step(watch, *args):
    ip(*args)
    return [readable(watch), watch.drain(), watch.drain(), readable(watch, 0)]

def resolve():
    ip("addr", "add", "192.0.2.10/24", "dev", "d0")
    ip("addr", "add", "198.51.100.7/24", "dev", "d0")
    ip("addr", "add", "192.0.2.77/24", "dev", "d0", "label", "d0:1")
    ip("addr", "add", "2001:db8::7/64", "dev", "d0", "nodad")
    ip("addr", "add", "fe80::7/64", "dev", "d0", "nodad")
    ip("addr", "add", "198.51.100.9/24", "dev", "t0")
    ip("addr", "add", "2001:db8:2::1/64", "dev", "t0")  # t0 is down: stays tentative
    out = {
        "lit_v4": resolve_portal("192.0.2.10"),
        "lit_v4_absent": resolve_portal("192.0.2.11"),
        "lit_v6": resolve_portal("2001:db8:0:0::7"),
        "lit_v6_bracket": resolve_portal("[2001:db8::7]"),
        "lit_v6_absent": resolve_portal("2001:db8::8"),
        "lit_tentative": resolve_portal("2001:db8:2::1"),
        "if_d0": resolve_portal("d0"),
        "if_d0_v4": resolve_portal("d0", socket.AF_INET),
        "if_d0_v6": resolve_portal("d0", socket.AF_INET6),
        "if_label": resolve_portal("d0:1"),
        "if_t0": resolve_portal("t0"),
        "if_missing": resolve_portal("nosuch0"),
        "pairs_d0": addresses("d0"),
        "t0_tentative": "tentative" in ip("-6", "addr", "show", "dev", "t0"),
    }
    ip("link", "set", "t0", "name", "t9")
    out["renamed_old"] = resolve_portal("t0")
    out["renamed_new"] = resolve_portal("t9")
    ip("addr", "del", "192.0.2.10/24", "dev", "d0")
    out["lit_v4_gone"] = resolve_portal("192.0.2.10")
    return out

def watch():
    ip("addr", "add", "198.51.100.21/24", "dev", "d0")
    with AddressWatch() as w:
        settle(w)
        out = {"idle": [readable(w, 0.2), w.drain()]}
        out["add"] = step(w, "addr", "add", "192.0.2.20/24", "dev", "d0")
        out["add6"] = step(w, "addr", "add", "2001:db8::20/64", "dev", "d0", "nodad")
        out["del"] = step(w, "addr", "del", "192.0.2.20/24", "dev", "d0")
        out["down"] = step(w, "link", "set", "d0", "down")
        settle(w)
        out["rename"] = step(w, "link", "set", "d0", "name", "d7")
        out["portal_after_rename"] = [resolve_portal("d0"), resolve_portal("d7")]
    return out

def dad():
    with AddressWatch() as w:
        settle(w)
        out = {"added": step(w, "addr", "add", "2001:db8::99/64", "dev", "d0"),
               "tentative": resolve_portal("2001:db8::99")}
        # Duplicate address detection ends with another RTM_NEWADDR.
        out["dad_done"] = [readable(w, 10.0), w.drain()]
        out["usable"] = resolve_portal("2001:db8::99")
    return out

def overflow():
    with AddressWatch(rcvbuf=1) as w:  # the kernel raises it to its minimum (~2 KiB)
        settle(w)
        batch = "\n".join("address %s 198.51.100.%d/32 dev d0" % (verb, i)
                          for verb in ("add", "del") for i in range(1, 201))
        subprocess.run(["ip", "-batch", "-"], input=batch + "\n", check=True,
                       universal_newlines=True)
        out = {"readable": readable(w), "first": w.drain(), "second": w.drain(),
               "warnings": list(warnings)}
        out["after"] = step(w, "addr", "add", "192.0.2.200/24", "dev", "d0")
        out["portal"] = resolve_portal("d0")
    return out

def reopen():
    with AddressWatch() as w:
        settle(w)
        os.close(w.fileno())  # break the socket behind the watch's back
        out = {"first": w.drain(), "warnings": list(warnings)}
        out["after"] = step(w, "addr", "add", "192.0.2.30/24", "dev", "d0")
    return out

print(json.dumps(globals()[sys.argv[1]]()))
'''


def _run(argv: List[str], check: bool = True) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(argv, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


def _add_link(ns: str, name: str) -> None:
    """A dummy link, or one end of a veth pair where the kernel has no dummy driver."""
    if _run(["ip", "-n", ns, "link", "add", name, "type", "dummy"], check=False).returncode:
        proc = _run(["ip", "-n", ns, "link", "add", name, "type", "veth",
                     "peer", "name", name + "p"], check=False)
        if proc.returncode:
            pytest.skip("cannot create dummy or veth links: %s" % proc.stderr.strip())
        _run(["ip", "-n", ns, "link", "set", name + "p", "addrgenmode", "none", "up"])
    # No automatic link-local address: its DAD would fire events mid-test.
    _run(["ip", "-n", ns, "link", "set", name, "addrgenmode", "none"])


@pytest.fixture
def netns() -> Iterator[str]:
    """A private network namespace with link d0 (up) and t0 (down)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 'ip' is not installed")
    name = "ts-aw-%s" % uuid.uuid4().hex[:8]
    proc = _run(["ip", "netns", "add", name], check=False)
    if proc.returncode:
        pytest.skip("ip netns add failed: %s" % proc.stderr.strip())
    try:
        _add_link(name, "d0")
        _add_link(name, "t0")
        _run(["ip", "-n", name, "link", "set", "d0", "up"])
        yield name
    finally:
        _run(["ip", "netns", "del", name], check=False)


def _child(ns: str, scenario: str, tmp_path: Path) -> Dict[str, Any]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C")
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(script), scenario],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _need_pyroute2() -> None:
    pytest.importorskip("pyroute2", reason="pyroute2 is not installed for this Python")


@pytest.mark.netns
def test_resolve_portal_follows_real_addresses(netns: str, tmp_path: Path) -> None:
    _need_pyroute2()
    out = _child(netns, "resolve", tmp_path)
    assert out["lit_v4"] == ["192.0.2.10"]
    assert out["lit_v4_absent"] == []
    assert out["lit_v6"] == ["2001:db8::7"]
    assert out["lit_v6_bracket"] == ["2001:db8::7"]
    assert out["lit_v6_absent"] == []
    assert out["t0_tentative"], "the kernel did not leave the address tentative"
    assert out["lit_tentative"] == []
    assert out["if_d0"] == ["192.0.2.10", "192.0.2.77", "198.51.100.7", "2001:db8::7"]
    assert out["if_d0_v4"] == ["192.0.2.10", "192.0.2.77", "198.51.100.7"]
    assert out["if_d0_v6"] == ["2001:db8::7"]
    assert out["if_label"] == ["192.0.2.77"]
    assert out["if_t0"] == ["198.51.100.9"]
    assert out["if_missing"] == []
    assert [tuple(p) for p in out["pairs_d0"]] == [
        ("d0", "192.0.2.10"), ("d0", "192.0.2.77"), ("d0", "198.51.100.7"),
        ("d0", "2001:db8::7")]
    assert out["renamed_old"] == []
    assert out["renamed_new"] == ["198.51.100.9"]
    assert out["lit_v4_gone"] == []


@pytest.mark.netns
def test_watch_fd_wakes_on_address_and_link_changes(netns: str, tmp_path: Path) -> None:
    _need_pyroute2()
    out = _child(netns, "watch", tmp_path)
    assert out["idle"] == [False, False]
    # [readable after the change, first drain, second drain, readable after draining]
    for change in ("add", "add6", "del", "down", "rename"):
        assert out[change] == [True, True, False, False], change
    assert out["portal_after_rename"] == [[], ["198.51.100.21"]]


@pytest.mark.netns
def test_address_leaving_tentative_state_wakes_the_watch(netns: str, tmp_path: Path) -> None:
    _need_pyroute2()
    out = _child(netns, "dad", tmp_path)
    assert out["added"] == [True, True, False, False]
    assert out["tentative"] == []
    assert out["dad_done"] == [True, True]
    assert out["usable"] == ["2001:db8::99"]


@pytest.mark.netns
def test_overflow_reports_change_and_watch_survives(netns: str, tmp_path: Path) -> None:
    _need_pyroute2()
    out = _child(netns, "overflow", tmp_path)
    assert out["readable"] is True
    assert out["first"] is True
    assert out["second"] is False
    assert any("ENOBUFS" in w for w in out["warnings"]), out["warnings"]
    assert out["after"] == [True, True, False, False]
    assert out["portal"] == ["192.0.2.200"]


@pytest.mark.netns
def test_broken_socket_is_reopened(netns: str, tmp_path: Path) -> None:
    out = _child(netns, "reopen", tmp_path)
    assert out["first"] is True
    assert any("re-opening" in w for w in out["warnings"]), out["warnings"]
    assert out["after"] == [True, True, False, False]


@pytest.mark.parametrize("portal", [
    "", "192.0.2.300", "192.0.2.1/24", "d0 ", " d0", "a/b", "x" * 16, ".", "..",
    "2001:db8::zz", "[d0]", "[192.0.2.1", "[192.0.2.1]", "d0:", ":1", "d0:1:2", "0.0.0.0", "::",
    "224.0.0.1", "fe80::1", "fe80::1%d0", "d\x000", "d\n0",
])
def test_malformed_portal_raises_before_any_netlink(portal: str) -> None:
    from tapeshared.host.addrwatch import resolve_portal
    with pytest.raises(ValueError):
        resolve_portal(portal)


def test_family_must_match_a_literal_and_be_known() -> None:
    from tapeshared.host.addrwatch import resolve_portal
    with pytest.raises(ValueError):
        resolve_portal("2001:db8::1", socket.AF_INET)
    with pytest.raises(ValueError):
        resolve_portal("192.0.2.1", socket.AF_INET6)
    with pytest.raises(ValueError):
        resolve_portal("d0", 99)


def test_imports_without_pyroute2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyroute2", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "tapeshared.host.addrwatch", raising=False)
    module = importlib.import_module("tapeshared.host.addrwatch")
    with pytest.raises(ValueError):
        module.resolve_portal("bad/name")
    with pytest.raises(ImportError):
        module.addresses()
