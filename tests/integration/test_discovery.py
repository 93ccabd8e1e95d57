"""Discovery against real libudev/pyudev over a umockdev sysfs (see tests/udevbed.py).

Run: umockdev-wrapper .venv/bin/python -m pytest tests/test_discovery.py
"""

import builtins
import configparser
import inspect
import io
import json
import os
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import ROOT as _ROOT
from support.udevbed import Bed, bed_fixture, needs_umockdev  # noqa: F401 - bed_fixture is `bed`

from tapeshared.host import udev as discovery

pytestmark = [pytest.mark.umockdev, needs_umockdev]


ROOT = Path(_ROOT)
SAFE_IDENTITY = re.compile(r"\A[A-Za-z0-9._:+/-]+\Z")
PRINTABLE = re.compile(r"\A[\x20-\x7e]*\Z")
WWN_A = "5000e11156304001"
WWN_B = "5000e11156304002"
WWN_C = "5000e11156304100"


def by_hctl(devices: List[Any]) -> Dict[str, Any]:
    return {str(d.hctl): d for d in devices}


def only(bed: Bed) -> Any:
    devices = discovery.scan(bed.context())
    assert len(devices) == 1, devices
    return devices[0]


def drain(monitor: Any) -> List[Any]:
    events: List[Any] = []
    while True:
        event = monitor.poll(timeout=0.5)
        if event is None:
            return events
        events.append(event)


def test_pyudev_monitor_receives_testbed_uevents_in_process(bed: Bed) -> None:
    # Result noted for the daemon tests: a netlink Monitor in the same process
    # does receive tb.uevent() events, with action, sys_path and properties.
    import pyudev
    monitor = pyudev.Monitor.from_netlink(bed.context())
    monitor.filter_by("scsi")
    monitor.start()
    path = bed.add_tape("12:0:6:0")
    added = [(e.action, e.sys_path, e.device_type) for e in drain(monitor)]
    assert ("add", path, "scsi_device") in added
    assert all(action == "add" for action, _p, _t in added)
    assert any(t == "scsi_host" for _a, _p, t in added)  # the on-demand host
    bed.remove(path)
    removed = [(e.action, e.sys_path) for e in drain(monitor)]
    assert ("remove", path) in removed
    # Children (scsi_tape, bsg, ...) are filtered out: only the scsi subsystem.
    assert all("/scsi_tape/" not in p and "/bsg/" not in p for _a, p in removed)
    assert discovery.scan(bed.context()) == []


def test_high_host_numbers_and_wide_target_and_lun_ids(bed: Bed) -> None:
    bed.add_tape("12:0:6:0", serial="S1", wwn=None, st_index=0, sg_index=0)
    bed.add_tape("10:0:15:12", serial="S2", wwn=None, st_index=1, sg_index=1)
    bed.add_tape("1:2:10:0", serial="S3", wwn=None, st_index=2, sg_index=2)
    found = by_hctl(discovery.scan(bed.context()))
    assert sorted(found) == ["10:0:15:12", "12:0:6:0", "1:2:10:0"]
    assert (found["12:0:6:0"].hctl.host, found["12:0:6:0"].hctl.target) == (12, 6)
    wide = found["10:0:15:12"]
    assert (wide.hctl.host, wide.hctl.channel, wide.hctl.target, wide.hctl.lun) == (10, 0, 15, 12)
    assert wide.serial == "S2" and wide.nst == "/dev/nst1"
    assert wide.bsg == "/dev/bsg/10:0:15:12"
    assert found["1:2:10:0"].hctl.channel == 2


def test_scan_never_needs_proc_scsi_scsi(bed: Bed, monkeypatch: Any) -> None:
    # Debian kernels have no /proc/scsi/scsi: make it absent for this process.
    touched = []
    real_open, real_os_open = builtins.open, os.open

    def guard(path: Any) -> None:
        if "/proc/scsi" in str(path):
            touched.append(path)
            raise FileNotFoundError(2, "No such file or directory", str(path))

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        guard(file)
        return real_open(file, *args, **kwargs)

    def fake_os_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        guard(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    bed.add_tape("12:0:6:0")
    devices = discovery.scan(bed.context())
    assert [str(d.hctl) for d in devices] == ["12:0:6:0"]
    assert devices[0].identity == "serial:HU1234ABCD"
    assert touched == []
    assert "/proc/scsi" not in inspect.getsource(discovery)


def test_two_tapes_and_a_changer_with_nodes_links_and_trimmed_strings(bed: Bed) -> None:
    bed.add_tape("12:0:6:0", serial="HU1111", wwn=WWN_A, st_index=0, sg_index=3)
    bed.add_tape("12:0:7:0", serial="HU2222", wwn=WWN_B, vendor="IBM",
                 model="ULT3580-TD5", rev="D8D0", st_index=1, sg_index=4)
    bed.add_changer("12:0:8:1", serial="CH3333", wwn=WWN_C, sg_index=5, ch_index=0)
    devices = discovery.scan(bed.context())
    assert [(str(d.hctl), d.type, d.kind) for d in devices] == [
        ("12:0:6:0", 1, "tape"), ("12:0:7:0", 1, "tape"), ("12:0:8:1", 8, "changer")]
    one, two, changer = devices

    assert (one.st, one.nst, one.sg, one.bsg, one.ch) == (
        "/dev/st0", "/dev/nst0", "/dev/sg3", "/dev/bsg/12:0:6:0", None)
    assert (two.st, two.nst, two.sg, two.bsg, two.ch) == (
        "/dev/st1", "/dev/nst1", "/dev/sg4", "/dev/bsg/12:0:7:0", None)
    assert (changer.st, changer.nst, changer.sg, changer.bsg, changer.ch) == (
        None, None, "/dev/sg5", "/dev/bsg/12:0:8:1", "/dev/sch0")

    assert one.by_id == ("/dev/tape/by-id/scsi-3" + WWN_A,
                         "/dev/tape/by-id/scsi-3" + WWN_A + "-nst")
    assert two.by_id == ("/dev/tape/by-id/scsi-3" + WWN_B,
                         "/dev/tape/by-id/scsi-3" + WWN_B + "-nst")
    assert changer.by_id == ("/dev/tape/by-id/scsi-3" + WWN_C + "-changer",)

    # sysfs pads to 8/16/4 characters: discovery trims.
    assert (one.vendor, one.model, one.rev) == ("HP", "Ultrium 5-SCSI", "Z6ED")
    assert (two.vendor, two.model, two.rev) == ("IBM", "ULT3580-TD5", "D8D0")
    assert (changer.vendor, changer.model, changer.rev) == ("HP", "MSL G3 Series", "E.00")

    assert [d.identity for d in devices] == [
        "serial:HU1111", "serial:HU2222", "serial:CH3333"]
    assert [d.wwn for d in devices] == [WWN_A, WWN_B, WWN_C]
    for device in devices:
        assert (device.transport, device.remote, device.problems) == ("mptspi", False, ())
        assert device.syspath == bed.syspath(str(device.hctl))


def test_tape_on_iscsi_tcp_host_is_remote(bed: Bed) -> None:
    bed.add_host(5, driver="iscsi_tcp")
    bed.add_tape("5:0:0:0")
    bed.add_tape("2:0:1:0", serial="LOCAL1", wwn=None, st_index=1, sg_index=1)
    found = by_hctl(discovery.scan(bed.context()))
    assert (found["5:0:0:0"].transport, found["5:0:0:0"].remote) == ("iscsi_tcp", True)
    assert (found["2:0:1:0"].transport, found["2:0:1:0"].remote) == ("mptspi", False)


def test_tape_under_an_iscsi_session_parent_is_remote(bed: Bed) -> None:
    # The real layout: /sys/devices/platform/host7/session1/target7:0:0/7:0:0:0.
    # A driver name discovery does not know: the session parent alone must tell.
    bed.add_host(7, driver="someoffload", iscsi_session=True)
    path = bed.add_tape("7:0:0:0")
    assert "/host7/session1/target7:0:0/7:0:0:0" in path
    device = only(bed)
    assert (device.transport, device.remote) == ("someoffload", True)
    assert device.identity == "serial:HU1234ABCD"  # same identity as the local drive


def test_iscsi_true_builds_iscsi_tcp_session(bed: Bed) -> None:
    path = bed.add_tape("3:0:0:0", iscsi=True)
    assert re.search(r"/platform/host3/session[0-9]+/target3:0:0/3:0:0:0\Z", path)
    device = only(bed)
    assert (device.transport, device.remote) == ("iscsi_tcp", True)


def test_no_serial_falls_back_to_wwn(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", serial=None, wwn=WWN_A)
    device = only(bed)
    assert device.serial is None
    assert device.wwn == WWN_A
    assert device.identity == "wwn:" + WWN_A
    assert device.problems == ()


def test_neither_serial_nor_wwn_gives_no_identity_and_a_problem(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", serial=None, wwn=None)
    device = only(bed)
    assert (device.serial, device.wwn, device.identity) == (None, None, None)
    assert any("no usable unit serial or WWN" in p for p in device.problems)
    assert device.nst == "/dev/nst0"  # still listed, just not exportable by identity


HOSTILE_DISPLAY = [
    pytest.param(b"HP\nX", id="newline"),
    pytest.param(b"HP\x1b[2J", id="escape-sequence"),
    pytest.param(b"HP\x07\x7f", id="bell-del"),
    pytest.param(b"HP\xe9\xff", id="non-ascii"),
    pytest.param(b"HP#1", id="hash"),
    pytest.param(b"HP,1", id="comma"),
    pytest.param(b"HP=1", id="equals"),
]


@pytest.mark.parametrize("raw", HOSTILE_DISPLAY)
@pytest.mark.parametrize("field", ["vendor", "model"])
def test_hostile_vendor_and_model_are_escaped_and_reported(bed: Bed, field: str,
                                                           raw: bytes) -> None:
    if field == "vendor":
        bed.add_tape("2:0:3:0", vendor=raw)
    else:
        bed.add_tape("2:0:3:0", model=raw)
    device = only(bed)
    shown = getattr(device, field)
    assert PRINTABLE.match(shown), shown
    for char in set(raw.decode("latin-1")) - set(string.ascii_letters + string.digits + "["):
        assert char not in shown, (char, shown)
    assert shown.startswith("HP")
    assert any(p.startswith(field + ":") for p in device.problems), device.problems
    # The identity is unaffected by a hostile vendor/model.
    assert device.identity == "serial:HU1234ABCD"


HOSTILE_SERIALS = [
    pytest.param(b"AB\nCD", id="newline"),
    pytest.param(b"AB#CD", id="hash"),
    pytest.param(b"AB,CD", id="comma"),
    pytest.param(b"AB=CD", id="equals"),
    pytest.param(b"AB CD", id="space-inside"),
    pytest.param(b"AB\x07\x1bCD", id="control"),
    pytest.param(b"AB\xe9CD", id="non-ascii"),
]


@pytest.mark.parametrize("raw", HOSTILE_SERIALS)
def test_hostile_vpd_serial_is_rejected_not_returned(bed: Bed, raw: bytes) -> None:
    # Only the VPD page carries the serial (no udev properties): the unit serial
    # page must be read, found hostile, rejected, and the WWN used instead.
    bed.add_tape("2:0:3:0", serial=raw, wwn=WWN_A, udev_props=False)
    device = only(bed)
    assert device.serial is None
    assert device.identity == "wwn:" + WWN_A
    assert any("VPD 0x80" in p for p in device.problems), device.problems


@pytest.mark.parametrize("raw", ["AB#CD", "AB,CD", "AB=CD", "AB CD", "AB\tCD"])
def test_hostile_id_scsi_serial_is_rejected_not_returned(bed: Bed, raw: str) -> None:
    bed.add_tape("2:0:3:0", serial="X", wwn=None, vpd=False,
                 props={"ID_SCSI_SERIAL": raw, "ID_SERIAL": "SAFE1"})
    device = only(bed)
    assert device.serial is None
    assert device.identity is None
    assert any("ID_SCSI_SERIAL rejected" in p for p in device.problems), device.problems


@pytest.mark.parametrize("raw", HOSTILE_SERIALS)
def test_hostile_serial_never_reaches_identity_with_udev_props(bed: Bed, raw: bytes) -> None:
    # With udev's own (sanitised) ID_SCSI_SERIAL present, whatever is chosen is safe.
    bed.add_tape("2:0:3:0", serial=raw, wwn=None)
    device = only(bed)
    assert device.serial is None or SAFE_IDENTITY.match(device.serial), device.serial
    assert device.serial != raw.decode("latin-1")


def test_disk_and_other_types_are_ignored(bed: Bed) -> None:
    bed.add_tape("0:0:0:0", type=0, serial="DISK1", wwn=WWN_B, model="Virtual disk",
                 sg_index=0)
    bed.add_tape("0:0:1:0", type=5, serial="CDROM1", wwn=None, sg_index=1)
    bed.add_tape("12:0:6:0", sg_index=2)
    assert [str(d.hctl) for d in discovery.scan(bed.context())] == ["12:0:6:0"]


def test_binary_vpd_pages_are_read_whole(bed: Bed) -> None:
    # Real vpd_pg80/83 start [pdt, page, 0x00, len]: a libudev sysattr (a C
    # string) stops at that NUL. Without udev properties, only the pages hold
    # serial and WWN; the wwid attribute is removed so it cannot stand in.
    bed.add_tape("2:0:3:0", serial="HU1234ABCD", wwn=WWN_A, udev_props=False,
                 attrs={"wwid": None})
    device = only(bed)
    assert device.serial == "HU1234ABCD"
    assert device.wwn == WWN_A
    assert device.problems == ()


def test_serial_from_vpd80_preferred_over_id_scsi_serial(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", serial="VPDSERIAL1", props={"ID_SCSI_SERIAL": "UDEVSERIAL"})
    assert only(bed).serial == "VPDSERIAL1"


def test_id_scsi_serial_used_without_vpd80(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", serial="VPDSERIAL1", vpd=False,
                 props={"ID_SCSI_SERIAL": "UDEVSERIAL"})
    assert only(bed).serial == "UDEVSERIAL"


def test_wwn_from_vpd83_naa_first(bed: Bed) -> None:
    # The page also lists a target-port NAA (association 1) first: skipped.
    bed.add_tape("2:0:3:0", wwn=WWN_A, props={"ID_WWN": "0x" + WWN_B},
                 attrs={"wwid": "naa.%s\n" % WWN_C})
    assert only(bed).wwn == WWN_A


def test_wwn_from_id_wwn_without_vpd83(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", wwn=WWN_A, vpd=False,
                 props={"ID_WWN": "0x" + WWN_B.upper(), "ID_WWN_WITH_EXTENSION": None},
                 attrs={"wwid": "naa.%s\n" % WWN_C})
    assert only(bed).wwn == WWN_B


def test_wwn_from_wwid_last(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", wwn=WWN_A, vpd=False, udev_props=False,
                 attrs={"wwid": "naa.%s\n" % WWN_C})
    device = only(bed)
    assert device.wwn == WWN_C
    assert device.identity == "wwn:" + WWN_C


@pytest.mark.parametrize("source", ["vpd83", "udev", "wwid"])
def test_naa6_wwn_is_the_same_from_every_source(bed: Bed, source: str) -> None:
    # udev's ID_WWN holds only the first 16 digits of a 32-digit NAA 6 name;
    # ID_WWN_WITH_EXTENSION has it whole. The identity must not depend on which
    # source was readable, or a wwn-keyed export would lose its device.
    naa6 = "600508b1001c4d2e3f4a5b6c7d8e9f00"
    bed.add_tape("2:0:3:0", serial=None, wwn=naa6, vpd=(source == "vpd83"),
                 udev_props=(source != "wwid"))
    assert only(bed).wwn == naa6


def test_t10_wwid_is_not_a_wwn(bed: Bed) -> None:
    bed.add_tape("2:0:3:0", serial=None, wwn=None, vpd=False, udev_props=False,
                 attrs={"wwid": "t10.HP      Ultrium 5-SCSI  \n"})
    assert only(bed).wwn is None


def test_identity_is_stable_across_renumbering(bed: Bed) -> None:
    import pyudev
    bed.add_tape("2:0:3:0")
    before = only(bed)
    monitor = pyudev.Monitor.from_netlink(bed.context())
    monitor.filter_by("scsi")
    monitor.start()
    new_path = bed.renumber("2:0:3:0", "11:0:12:10")
    actions = [(e.action, e.sys_path.rsplit("/", 1)[-1]) for e in drain(monitor)]
    assert ("remove", "2:0:3:0") in actions and ("add", "11:0:12:10") in actions
    assert actions.index(("remove", "2:0:3:0")) < actions.index(("add", "11:0:12:10"))
    after = only(bed)
    assert str(after.hctl) == "11:0:12:10" and after.syspath == new_path
    assert after.identity == before.identity == "serial:HU1234ABCD"
    assert (after.serial, after.wwn) == (before.serial, before.wwn)
    assert after.by_id == before.by_id


def test_scan_results_sorted_numerically_by_hctl(bed: Bed) -> None:
    order = ["12:0:0:0", "2:0:10:0", "2:0:9:0", "10:0:0:1", "2:0:9:10", "2:0:9:2"]
    for index, hctl in enumerate(order):
        bed.add_tape(hctl, serial="SER%d" % index, wwn=None, st_index=index,
                     sg_index=index)
    assert [str(d.hctl) for d in discovery.scan(bed.context())] == [
        "2:0:9:0", "2:0:9:2", "2:0:9:10", "2:0:10:0", "10:0:0:1", "12:0:0:0"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(vendor=st.binary(min_size=1, max_size=8), model=st.binary(max_size=16),
       serial=st.binary(min_size=1, max_size=24), props=st.booleans())
def test_arbitrary_sysfs_bytes_never_leak(vendor: bytes, model: bytes, serial: bytes,
                                          props: bool) -> None:
    with Bed() as bed:
        bed.add_tape("2:0:3:0", vendor=vendor, model=model, serial=serial, wwn=None,
                     udev_props=props)
        device = only(bed)
    for text in (device.vendor, device.model, device.rev):
        assert PRINTABLE.match(text), text
    assert device.serial is None or SAFE_IDENTITY.match(device.serial), device.serial
    for problem in device.problems:
        assert "\n" not in problem


def run_cli(bed: Bed, *args: str) -> "subprocess.CompletedProcess[str]":
    env = bed.env()  # LD_PRELOAD and UMOCKDEV_DIR: the child sees the bed
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "tapeshared"] + list(args), cwd=str(ROOT),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def cli_bed(bed: Bed) -> None:
    bed.add_tape("12:0:6:0", serial="HU1111", wwn=WWN_A, st_index=0, sg_index=0)
    bed.add_changer("12:0:8:1", serial="CH3333", wwn=WWN_C, sg_index=1)
    bed.add_tape("3:0:0:0", serial="HU1111", wwn=WWN_A, iscsi=True, st_index=1, sg_index=2)
    bed.add_tape("2:0:1:0", serial=None, wwn=None, vendor=b"EV\x1bIL", st_index=2,
                 sg_index=3)


def test_cli_scan_json_in_a_real_subprocess(bed: Bed) -> None:
    cli_bed(bed)
    result = run_cli(bed, "scan", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == 1
    found = {d["hctl"]: d for d in data["devices"]}
    assert [d["hctl"] for d in data["devices"]] == ["2:0:1:0", "3:0:0:0", "12:0:6:0",
                                                    "12:0:8:1"]
    local, changer, remote = found["12:0:6:0"], found["12:0:8:1"], found["3:0:0:0"]
    assert (local["type"], local["location"], local["transport"]) == ("tape", "local", "mptspi")
    assert local["nodes"] == {"st": "/dev/st0", "nst": "/dev/nst0", "sg": "/dev/sg0",
                              "bsg": "/dev/bsg/12:0:6:0"}
    assert local["identity"] == "serial:HU1111" and local["wwn"] == WWN_A
    assert "/dev/tape/by-id/scsi-3%s-nst" % WWN_A in local["by_id"]
    assert (changer["type"], changer["nodes"]["ch"]) == ("changer", "/dev/sch0")
    assert (remote["location"], remote["transport"]) == ("remote", "iscsi_tcp")
    for entry, serial in ((local, "HU1111"), (changer, "CH3333"), (remote, "HU1111")):
        parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
        parser.read_string(entry["suggested_section"])
        (section,) = parser.sections()
        assert section.startswith("export ")
        assert parser[section]["serial"] == serial
        assert "serial = %s" % serial in entry["suggested_section"]
    assert "allow_remote" in configparser_section(remote)
    assert "allow_remote" not in configparser_section(local)
    evil = found["2:0:1:0"]
    assert evil["identity"] is None and evil["problems"]
    assert "\x1b" not in result.stdout and "EV\\x1bIL" == evil["vendor"]


def configparser_section(entry: Dict[str, Any]) -> Any:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(entry["suggested_section"])
    return parser[parser.sections()[0]]


def test_cli_scan_human_output_lists_each_device(bed: Bed) -> None:
    cli_bed(bed)
    result = run_cli(bed, "scan")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    for hctl, kind in (("12:0:6:0", "tape"), ("12:0:8:1", "changer"), ("3:0:0:0", "tape"),
                       ("2:0:1:0", "tape")):
        assert any(line.startswith(hctl + " ") and kind in line for line in lines), (hctl, out)
    assert "serial:HU1111" in out and "serial:CH3333" in out
    assert "remote via iscsi_tcp" in out and "local (mptspi)" in out
    assert "/dev/nst0" in out and "/dev/sch0" in out
    assert "NO IDENTITY" in out
    assert "\x1b" not in out
    assert all(PRINTABLE.match(line) for line in lines)


def test_cli_scan_with_no_devices(bed: Bed) -> None:
    result = run_cli(bed, "scan")
    assert result.returncode == 0, result.stderr
    assert "no SCSI tape drives or medium changers found" in result.stdout
    data = json.loads(run_cli(bed, "scan", "--json").stdout)
    assert data == {"schema": 1, "devices": []}
