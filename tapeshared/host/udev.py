"""udev adapter, the only importer of pyudev: discovery of SCSI devices, the watch."""

import logging
import os
import re
import stat
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tapeshared.core.identity import (
    display_text,
    identity_text,
    normalize_wwn,
    serial_from_vpd80,
    wwn_from_vpd83,
)
from tapeshared.core.model import EXPORTABLE, Device, Hctl
from tapeshared.host.tally import Tally

log = logging.getLogger(__name__)

# The subsystems whose uevents can change what discovery sees (also the watch's filter).
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
    return value if isinstance(value, bytes) else None


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
        value = device.properties.get(name)
    except (KeyError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) else None


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
    if isinstance(node, str) and re.match(r"\A/dev/[A-Za-z0-9/:._-]+\Z", node):
        return node
    name = str(child.sys_name)
    return "/dev/bsg/" + name if role == "bsg" else "/dev/" + name


def _is_node(path: str) -> bool:
    """Whether udev has made path as a device node (char or block) yet."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def device_from_udev(device: Any, every: bool = False) -> Optional[Device]:
    """A Device from a pyudev scsi_device, or None if not a tape or changer.

    With `every`, any SCSI device (a disk, an enclosure, one whose type cannot
    be read: type -1): what sits at an address matters to `absent = keep`.
    """
    if device.device_type != "scsi_device":
        return None
    raw_type = _attr(device, "type")
    try:
        kind = int((raw_type or b"").strip() or b"-1")
    except ValueError:
        kind = -1
    if kind not in EXPORTABLE and not every:
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
    result = replace(result, unready=tuple(n for n in result.nodes.values()
                                           if n and not _is_node(n)))
    if result.identity is None:
        problems.append("no usable unit serial or WWN: cannot be matched by identity")
        result = replace(result, problems=tuple(problems))
    for problem in problems:
        log.debug("device %s: %s", hctl, problem)
    return result


def observe(context: Any = None) -> List[Device]:
    """Every SCSI device the kernel knows now, of any type, sorted by H:C:T:L.

    What a pass reads: tapes and changers are exported, every other device is
    seen so that a kept LUN's address held by a disk is never exported.
    """
    import pyudev
    context = context or pyudev.Context()
    found = []
    for device in context.list_devices(subsystem="scsi"):
        item = device_from_udev(device, every=True)
        # LIO's loopback fabric shows a backstore of this host again (tapeshared's
        # own LUN reset makes one for a moment): never a device of its own
        if item is not None and item.transport != "tcm_loopback":
            found.append(item)
    return sorted(found, key=lambda d: d.hctl)


def device_at(context: Any, name: str) -> Any:
    """The scsi bus device at address name (H:C:T:L), None if it is gone."""
    import pyudev
    try:
        return pyudev.Devices.from_name(context or pyudev.Context(), "scsi", name)
    except (pyudev.DeviceNotFoundError, OSError, ValueError):
        return None


def scan(context: Any = None) -> List[Device]:
    """Every tape drive and changer the kernel knows now, sorted by H:C:T:L."""
    return [device for device in observe(context) if device.exportable]


# A tape brings st/nst plus six mode nodes (stNl, stNm, stNa, ...) and driver
# bind events: only the events that can change what a pass sees restart the
# debounce, so it does not stretch the outage of a renumbering.
MODE_NODE = re.compile(r"\An?st[0-9]+[lma]\Z")
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
                 receive_buffer: Optional[int] = None, context: Any = None,
                 clock: Callable[[], float] = time.monotonic, discovery: Any = None) -> None:
        self.subsystems = tuple(subsystems)
        self.discovery = discovery  # shared with the passes, it knows the tapes
        self.classify = relevant if discovery is None else discovery.classify
        self.source = source
        self.receive_buffer = receive_buffer
        self._context = context
        self.clock = clock
        self.events = 0
        self.errors = 0
        self.undecodable = Tally("uevents with strings that are not UTF-8 (re-reading "
                                 "every device instead)", every=60, clock=clock, logger=log)
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
        seen, debug = False, log.isEnabledFor(logging.DEBUG)
        for _ in range(_MAX_EVENTS):
            try:
                device = self._monitor.poll(timeout=0)
            except UnicodeDecodeError as exc:  # one unreadable message, not a dead monitor
                self.undecodable.add(str(exc))
                seen = True
                continue
            except (OSError, ValueError) as exc:  # ENOBUFS, a dead socket, a bad message
                self.errors += 1
                log.warning("udev monitor failed (%s): events may be lost; re-opening it "
                            "and re-reading every device", exc)
                self._reopen()
                return True
            if device is None:
                break
            self.events += 1
            try:
                wanted = self.classify(device)
                if debug:  # its arguments cost as much as the classification
                    log.debug("uevent %s %s%s", device.action, device.sys_path,
                              "" if wanted else " (ignored)")
            except UnicodeDecodeError as exc:
                # Device strings are untrusted: an event we cannot read may still
                # mean a change, and the pass re-reads everything anyway.
                self.undecodable.add(str(exc))
                wanted = True
            seen = seen or wanted
        self.undecodable.flush()
        return seen

    def _reopen(self) -> None:
        # pyudev has no close(): dropping the last reference unrefs the libudev
        # monitor, which closes its socket.
        self._monitor = None
        if self.discovery is not None:
            self.discovery.reset()
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
        return bool(device.device_type == "scsi_device")
    if device.subsystem == "scsi_tape":
        return not MODE_NODE.match(device.sys_name or "")
    return True
