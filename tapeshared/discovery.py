"""udev discovery adapter: every SCSI tape drive and medium changer, via pyudev."""

import logging
import os
import re
from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

from tapeshared.identity import (
    display_text,
    identity_text,
    normalize_wwn,
    serial_from_vpd80,
    wwn_from_vpd83,
)
from tapeshared.model import TYPE_CHANGER, TYPE_TAPE, Device, Hctl

log = logging.getLogger(__name__)

SUBSYSTEMS = ("scsi", "scsi_tape", "scsi_generic", "scsi_changer", "bsg")
_REMOTE_DRIVERS = ("iscsi_tcp", "ib_iser", "qla4xxx", "be2iscsi", "bnx2i", "cxgb3i",
                   "cxgb4i", "qedi")
_NODE = re.compile(r"\A(n?st|sg|sch)([0-9]+)\Z")
_LINK = re.compile(r"\A/dev/tape/by-id/[A-Za-z0-9._:+-]+\Z")
_SESSION = re.compile(r"\Asession[0-9]+\Z")


def _attr(device: Any, name: str) -> Optional[bytes]:
    try:
        value = device.attributes.get(name)
    except (KeyError, OSError, UnicodeDecodeError):
        return None
    if isinstance(value, str):
        return value.encode("latin-1", "replace")
    return value


def _binary_attr(device: Any, name: str) -> Optional[bytes]:
    """A binary sysfs attribute read whole: libudev returns a C string, cut at the
    first NUL, and every VPD page has one in its header."""
    try:
        with open(os.path.join(device.sys_path, name), "rb") as handle:
            return handle.read(65536)
    except OSError:
        return None


def _prop(device: Any, name: str) -> Optional[str]:
    try:
        return device.properties.get(name)
    except (KeyError, UnicodeDecodeError):
        return None


def _host(device: Any) -> Tuple[str, bool]:
    """The host adapter's driver name, and whether it is an iSCSI session."""
    remote = False
    node = device.parent
    while node is not None:
        if _SESSION.match(node.sys_name or ""):
            remote = True
        if node.device_type == "scsi_host":
            driver = _attr(node, "proc_name")
            if driver is None:
                try:
                    import pyudev
                    cls = pyudev.Devices.from_path(
                        device.context, node.sys_path + "/scsi_host/" + node.sys_name)
                    driver = _attr(cls, "proc_name")
                except Exception:  # noqa: BLE001 - no class device: driver unknown
                    driver = None
            name, _problem = identity_text(driver)
            name = name or "unknown"
            return name, remote or name in _REMOTE_DRIVERS
        node = node.parent
    return "unknown", remote


def _nodes(device: Any) -> Dict[str, Any]:
    """Children by role: st, nst, sg, sch (char nodes) and bsg."""
    found: Dict[str, Any] = {}
    for child in device.children:
        subsystem = child.subsystem
        name = child.sys_name or ""
        if subsystem == "bsg" and name == device.sys_name:
            found["bsg"] = child
            continue
        match = _NODE.match(name)
        if match and subsystem in ("scsi_tape", "scsi_generic", "scsi_changer"):
            found[match.group(1)] = child
    return found


def _devnode(child: Any, role: str) -> Optional[str]:
    if child is None:
        return None
    node = child.device_node
    if node and re.match(r"\A/dev/[A-Za-z0-9/:._-]+\Z", node):
        return node
    name = child.sys_name
    return "/dev/bsg/" + name if role == "bsg" else "/dev/" + name


def device_from_udev(device: Any) -> Optional[Device]:
    """A Device from a pyudev scsi_device, or None if not a tape or changer."""
    if device.device_type != "scsi_device":
        return None
    raw_type = _attr(device, "type")
    try:
        kind = int((raw_type or b"").strip() or b"-1")
    except ValueError:
        return None
    if kind not in (TYPE_TAPE, TYPE_CHANGER):
        return None
    try:
        hctl = Hctl.parse(device.sys_name)
    except ValueError:
        return None
    problems: List[str] = []
    vendor, model, rev = (display_text(_attr(device, a)) for a in ("vendor", "model", "rev"))
    for what, (_text, problem) in (("vendor", vendor), ("model", model), ("rev", rev)):
        if problem:
            problems.append("%s: %s (escaped)" % (what, problem))
    nodes = _nodes(device)
    # pyudev devices are mappings: test for None, never for truth
    tagged = next((nodes[r] for r in ("nst", "st", "sg", "sch") if nodes.get(r) is not None),
                  None)
    serial, problem = identity_text(serial_from_vpd80(_binary_attr(device, "vpd_pg80")))
    if problem:
        problems.append("unit serial (VPD 0x80) rejected: %s" % problem)
    if serial is None and tagged is not None:
        serial, problem = identity_text(_prop(tagged, "ID_SCSI_SERIAL"))
        if problem:
            problems.append("ID_SCSI_SERIAL rejected: %s" % problem)
    wwn = (wwn_from_vpd83(_binary_attr(device, "vpd_pg83"))
           or normalize_wwn(_prop(tagged, "ID_WWN_WITH_EXTENSION") if tagged is not None
                            else None)
           or normalize_wwn(_prop(tagged, "ID_WWN") if tagged is not None else None)
           or normalize_wwn(_attr(device, "wwid")))
    links: List[str] = []
    for child in nodes.values():
        for link in (_prop(child, "DEVLINKS") or "").split():
            if _LINK.match(link):
                links.append(link)
    transport, remote = _host(device)
    result = Device(
        hctl=hctl, type=kind, vendor=vendor[0], model=model[0], rev=rev[0],
        serial=serial, wwn=wwn,
        st=_devnode(nodes.get("st"), "st"), nst=_devnode(nodes.get("nst"), "nst"),
        sg=_devnode(nodes.get("sg"), "sg"), bsg=_devnode(nodes.get("bsg"), "bsg"),
        ch=_devnode(nodes.get("sch"), "sch"), by_id=tuple(sorted(set(links))),
        transport=transport, remote=remote, syspath=device.sys_path,
        problems=tuple(problems))
    if result.identity is None:
        problems.append("no usable unit serial or WWN: cannot be matched by identity")
        result = replace(result, problems=tuple(problems))
    for problem in problems:
        log.debug("device %s: %s", hctl, problem)
    return result


def scan(context: Any = None) -> List[Device]:
    """Every tape drive and changer the kernel knows now, sorted by H:C:T:L."""
    import pyudev
    context = context or pyudev.Context()
    found = []
    for device in context.list_devices(subsystem="scsi"):
        item = device_from_udev(device)
        if item is not None:
            found.append(item)
    return sorted(found, key=lambda d: d.hctl)
