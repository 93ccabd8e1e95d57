"""umockdev testbed of SCSI tapes and changers: real libudev/pyudev over a fake sysfs.

Run tests that use it under the wrapper, which redirects /sys, /dev and the udev
netlink socket of the process and its children to a temporary tree:

    umockdev-wrapper .venv/bin/python -m pytest tests/test_discovery.py

Outside the wrapper, or without gi/UMockdev (e.g. Python 3.6), tests marked
``needs_umockdev`` skip with the reason. Mark such tests ``pytest.mark.umockdev``.

API (everything else is private):

- ``Bed()``: a fresh testbed; ``close()`` it (or use the ``bed`` fixture:
  ``from support.udevbed import bed_fixture  # noqa: F401`` registers fixture ``bed``).
- ``add_host(host, driver="mptspi", iscsi_session=False) -> syspath`` of the
  scsi_host bus device (``proc_name`` lives on its scsi_host class child, as on
  a real kernel). Local hosts hang off a PCI function; iSCSI hosts are
  ``/sys/devices/platform/hostN`` and, with ``iscsi_session``, targets go under a
  ``sessionM`` parent with no subsystem (the real layout).
- ``add_tape(hctl, serial=..., wwn=..., ...) -> syspath`` of the scsi_device,
  creating host and target on demand; ``add_changer(...)`` is the same with
  type 8. See ``add_tape`` for the nodes, attributes and udev properties made.
- ``add_disk(hctl, serial=..., wwn=..., type=0)``: any other SCSI device (a disk
  by default, with a block sdX child; ``type=`` 3, 13, ... for a processor or an
  enclosure), e.g. one that takes a tape's old address while it is away.
- ``remove(syspath)``: "remove" uevents children first (and the target when it
  empties, as the kernel reaps it), then the tree is deleted.
- ``uevent(syspath, action)``: one real uevent ("add", "change", "remove").
- ``renumber(old_hctl, new_hctl) -> syspath``: remove, then add the same identity
  (same options) at the new address.
- ``context()``: a new pyudev.Context (sees only the testbed).
- ``env()``: os.environ plus UMOCKDEV_DIR, for child processes (the preload is
  inherited, but Testbed.new() sets UMOCKDEV_DIR behind os.environ's back).
- Module helpers ``vpd80(serial)``, ``vpd83(wwn, t10)`` build real-format pages.

Uevents reach a ``pyudev.Monitor.from_netlink`` in the same process (checked in
tests/test_discovery.py); child processes given ``env()`` see the same sysfs.
Only ``add_*``, ``remove``, ``renumber`` and ``uevent`` send uevents.
"""

import gc
import os
import re
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest

Text = Union[str, bytes]
_DEFAULT = object()
TAPE = 1
CHANGER = 8


def _umockdev_problem() -> Optional[str]:
    """Why umockdev tests cannot run here, or None."""
    if "libumockdev-preload" not in os.environ.get("LD_PRELOAD", ""):
        return ("not running under umockdev-wrapper (run: umockdev-wrapper "
                ".venv/bin/python -m pytest ...)")
    try:
        import gi
        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev  # noqa: F401
    except (ImportError, ValueError) as exc:
        return "gi/UMockdev 1.0 unavailable: %s" % exc
    try:
        import pyudev  # noqa: F401
    except ImportError as exc:
        return "pyudev unavailable: %s" % exc
    return None


UMOCKDEV_PROBLEM = _umockdev_problem()
needs_umockdev = pytest.mark.skipif(UMOCKDEV_PROBLEM is not None,
                                    reason=UMOCKDEV_PROBLEM or "")


def _bytes(value: Text) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def vpd80(serial: Text, pdt: int = TAPE) -> bytes:
    """VPD page 0x80 (unit serial number) as the kernel's vpd_pg80 shows it."""
    body = _bytes(serial)
    return bytes([pdt, 0x80, len(body) >> 8, len(body) & 0xFF]) + body


def _designator(code_set: int, association: int, dtype: int, body: bytes) -> bytes:
    return bytes([code_set, (association << 4) | dtype, 0, len(body)]) + body


def vpd83(wwn: Optional[str] = None, t10: Optional[bytes] = None, pdt: int = TAPE,
          port_wwn: Optional[str] = None) -> bytes:
    """VPD page 0x83: T10 vendor id (ASCII), a target-port NAA (association 1,
    listed first so a parser must skip it), and the LU's NAA (code set 1,
    association 0, type 3) if wwn is given."""
    body = b""
    if t10 is not None:
        body += _designator(2, 0, 1, t10)
    if port_wwn is not None:
        body += _designator(1, 1, 3, bytes.fromhex(port_wwn))
    if wwn is not None:
        body += _designator(1, 0, 3, bytes.fromhex(wwn))
    return bytes([pdt, 0x83, len(body) >> 8, len(body) & 0xFF]) + body


def udev_safe(text: Text) -> str:
    """What scsi_id/udev make of a string: whitespace runs -> '_', others -> '_'."""
    raw = _bytes(text).decode("latin-1").strip()
    raw = re.sub(r"\s+", "_", raw)
    return re.sub(r"[^0-9A-Za-z#+\-.:=@_]", "_", raw)


class Bed:
    """A umockdev testbed with helpers to build SCSI hosts, tapes and changers."""

    def __init__(self) -> None:
        if UMOCKDEV_PROBLEM is not None:
            raise RuntimeError(UMOCKDEV_PROBLEM)
        import gi
        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev
        self.tb = UMockdev.Testbed.new()
        self._hosts: Dict[int, Tuple[str, Optional[str]]] = {}
        self._specs: Dict[str, Dict[str, Any]] = {}
        self._sessions = 0
        self._bsg = 0

    def close(self) -> None:
        """Delete the fake sysfs (one testbed at a time per process)."""
        self.tb.clear()
        del self.tb
        gc.collect()

    def __enter__(self) -> "Bed":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def context(self) -> Any:
        """A new pyudev.Context (it sees only the testbed)."""
        import pyudev
        return pyudev.Context()

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """Environment for a child process that must see this testbed.

        Testbed.new() sets UMOCKDEV_DIR with g_setenv, which os.environ (a copy
        taken at start-up) does not show: pass this to subprocess explicitly.
        """
        env = dict(os.environ if base is None else base)
        env["UMOCKDEV_DIR"] = self.tb.get_root_dir()
        return env

    def uevent(self, syspath: str, action: str) -> None:
        self.tb.uevent(syspath, action)

    def _add(self, subsystem: str, name: str, parent: Optional[str],
             attrs: Dict[str, Optional[Text]], props: Dict[str, Optional[str]]) -> str:
        flat: List[str] = []
        for key in sorted(props):
            if props[key] is not None:
                flat += [key, str(props[key])]
        path = self.tb.add_device(subsystem, name, parent, [], flat)
        for key in sorted(attrs):
            value = attrs[key]
            if value is not None:
                self.tb.set_attribute_binary(path, key, _bytes(value))
        return path

    def add_host(self, host: int, driver: str = "mptspi", iscsi_session: bool = False) -> str:
        """A SCSI host; returns the scsi_host bus device's syspath."""
        if host in self._hosts:
            return self._hosts[host][0]
        if iscsi_session or driver == "iscsi_tcp":
            parent = None
            name = "platform/host%d" % host
        else:
            slot = "0000:%02x:00.0" % (host % 256)
            parent = self._add("pci", "pci0000:00/" + slot, None,
                               {"vendor": "0x1000\n", "device": "0x0030\n"},
                               {"DRIVER": driver, "PCI_SLOT_NAME": slot})
            name = "host%d" % host
        path = self._add("scsi", name, parent, {}, {"DEVTYPE": "scsi_host"})
        self.uevent(path, "add")
        cls = self._add("scsi_host", "scsi_host/host%d" % host, path,
                        {"proc_name": driver + "\n", "unique_id": "%d\n" % host}, {})
        self.uevent(cls, "add")
        session = None
        if iscsi_session:
            self._sessions += 1
            session = "session%d" % self._sessions
            # A session device has no bus and no class: only a uevent file.
            os.makedirs(self.tb.get_root_dir() + path + "/" + session)
            with open(self.tb.get_root_dir() + path + "/" + session + "/uevent", "w"):
                pass
            sess = self._add("iscsi_session", session + "/iscsi_session/" + session, path,
                             {"targetname": "iqn.2007-04.com.example:test\n"}, {})
            self.uevent(sess, "add")
        self._hosts[host] = (path, session)
        return path

    def _target(self, host: int, channel: int, target: int) -> str:
        path, session = self._hosts[host]
        name = "target%d:%d:%d" % (host, channel, target)
        full = "%s/%s%s" % (path, session + "/" if session else "", name)
        if os.path.isdir(self.tb.get_root_dir() + full + "/subsystem"):
            return full
        made = self._add("scsi", (session + "/" if session else "") + name, path, {},
                         {"DEVTYPE": "scsi_target"})
        self.uevent(made, "add")
        return made

    def add_tape(self, hctl: str, serial: Optional[Text] = "HU1234ABCD",
                 wwn: Optional[str] = "5000e11156304001", vendor: Text = "HP",
                 model: Text = "Ultrium 5-SCSI", rev: Text = "Z6ED", type: int = TAPE,
                 st_index: int = 0, sg_index: int = 0, ch_index: int = 0,
                 driver: Optional[str] = None, iscsi: bool = False,
                 udev_props: bool = True, vpd: bool = True,
                 attrs: Optional[Dict[str, Optional[Text]]] = None,
                 props: Optional[Dict[str, Optional[str]]] = None) -> str:
        """A scsi_device at hctl ("H:C:T:L"), with the children the kernel makes.

        Attributes: type, vendor/model/rev (space padded to 8/16/4 + newline),
        binary vpd_pg80 (if serial) and vpd_pg83 (T10 id, a port NAA, the LU NAA
        if wwn) unless vpd=False, wwid ("naa.<wwn>" else "t10.<...>"); ``attrs``
        overrides any of them (None deletes). Children: tapes get scsi_tape
        stN/nstN (plus the mode nodes stNl/m/a, nstNl/m/a), changers scsi_changer
        schN; both get scsi_generic sgN and bsg H:C:T:L. udev properties (unless
        udev_props=False) as 60-persistent-storage-tape.rules sets them: ID_SERIAL
        ("3<wwn>" or "S<vendor><model><serial>"), ID_SCSI_SERIAL, ID_WWN=0x..,
        DEVLINKS /dev/tape/by-id/scsi-<ID_SERIAL>[-nst] on stN/nstN of a tape,
        [-changer] on sgN of a changer; ``props`` overrides them (None deletes).
        iscsi=True makes the host an iscsi_tcp host under a sessionN parent.
        """
        spec = dict(serial=serial, wwn=wwn, vendor=vendor, model=model, rev=rev,
                    type=type, st_index=st_index, sg_index=sg_index, ch_index=ch_index,
                    driver=driver, iscsi=iscsi, udev_props=udev_props, vpd=vpd,
                    attrs=attrs, props=props)
        h, c, t, _lun = (int(p) for p in hctl.split(":"))
        if h not in self._hosts:
            self.add_host(h, driver or ("iscsi_tcp" if iscsi else "mptspi"), iscsi_session=iscsi)
        target = self._target(h, c, t)
        vendor_b, model_b, rev_b = _bytes(vendor), _bytes(model), _bytes(rev)
        t10 = vendor_b.ljust(8) + model_b.ljust(16) + (_bytes(serial) if serial else b"")
        sysattrs: Dict[str, Optional[Text]] = {
            "type": "%d\n" % type, "vendor": vendor_b.ljust(8) + b"\n",
            "model": model_b.ljust(16) + b"\n", "rev": rev_b.ljust(4) + b"\n",
            "state": "running\n", "scsi_level": "7\n",
            "wwid": ("naa.%s\n" % wwn).encode() if wwn else b"t10." + t10 + b"\n",
        }
        if vpd:
            if serial is not None:
                sysattrs["vpd_pg80"] = vpd80(serial, type)
            sysattrs["vpd_pg83"] = vpd83(wwn, t10, type, port_wwn="5000e11156304f01")
        sysattrs.update(attrs or {})
        device = self._add("scsi", hctl, target, sysattrs, {"DEVTYPE": "scsi_device"})
        self.uevent(device, "add")

        ids: Dict[str, Optional[str]] = {}
        if udev_props:
            if wwn:
                id_serial: Optional[str] = "3" + wwn
            elif serial:
                id_serial = "S" + udev_safe(vendor_b.ljust(8) + model_b.ljust(16) + _bytes(serial))
            else:
                id_serial = None
            ids = {"ID_SCSI": "1", "ID_VENDOR": udev_safe(vendor), "ID_MODEL": udev_safe(model),
                   "ID_REVISION": udev_safe(rev), "ID_SERIAL": id_serial,
                   "ID_SERIAL_SHORT": wwn or (udev_safe(serial) if serial else None),
                   "ID_SCSI_SERIAL": udev_safe(serial) if serial else None,
                   "ID_WWN": "0x" + wwn[:16] if wwn else None,
                   "ID_WWN_WITH_EXTENSION": "0x" + wwn if wwn else None}
            ids.update(props or {})

        def link(suffix: str) -> Dict[str, Optional[str]]:
            if not ids.get("ID_SERIAL"):
                return dict(ids)
            extra = {"DEVLINKS": "/dev/tape/by-id/scsi-%s%s" % (ids["ID_SERIAL"], suffix)}
            merged = dict(ids)
            merged.update(extra)
            if props and "DEVLINKS" in props:
                merged["DEVLINKS"] = props["DEVLINKS"]
            return merged

        children: List[Tuple[str, str, str, str, Dict[str, Optional[str]]]] = []
        self._bsg += 1
        children.append(("bsg", "bsg/" + hctl, "250:%d" % self._bsg, "/dev/bsg/" + hctl, {}))
        sg_props = link("-changer") if type == CHANGER else {}
        children.append(("scsi_generic", "scsi_generic/sg%d" % sg_index, "21:%d" % sg_index,
                         "/dev/sg%d" % sg_index, sg_props))
        if type == TAPE:
            for mode, offset in (("", 0), ("l", 32), ("m", 64), ("a", 96)):
                for prefix, rewind in (("st", 0), ("nst", 128)):
                    name = "%s%d%s" % (prefix, st_index, mode)
                    extra = (link("-nst" if rewind else "") if not mode else {})
                    children.append(("scsi_tape", "scsi_tape/" + name,
                                     "9:%d" % (st_index + offset + rewind), "/dev/" + name,
                                     extra))
        elif type == CHANGER:
            children.append(("scsi_changer", "scsi_changer/sch%d" % ch_index,
                             "86:%d" % ch_index, "/dev/sch%d" % ch_index, {}))
        for subsystem, name, dev, devname, extra in children:
            major, minor = dev.split(":")
            node_props: Dict[str, Optional[str]] = {
                "DEVNAME": devname, "MAJOR": major, "MINOR": minor}
            node_props.update(extra)
            path = self._add(subsystem, name, device, {"dev": dev + "\n"}, node_props)
            self.uevent(path, "add")
        self._specs[hctl] = spec
        return device

    def add_changer(self, hctl: str, serial: Optional[Text] = "CH00001234",
                    wwn: Optional[str] = "5000e11156304100", vendor: Text = "HP",
                    model: Text = "MSL G3 Series", rev: Text = "E.00", **kw: Any) -> str:
        """A medium changer (type 8): add_tape with changer defaults."""
        return self.add_tape(hctl, serial=serial, wwn=wwn, vendor=vendor, model=model,
                             rev=rev, type=CHANGER, **kw)

    def add_disk(self, hctl: str, serial: Optional[Text] = "DISK000001",
                 wwn: Optional[str] = "5000c50000d15c01", vendor: Text = "ATA",
                 model: Text = "Virtual disk", rev: Text = "1.0", type: int = 0,
                 block_index: int = 0, **kw: Any) -> str:
        """A SCSI device that is not a tape or changer (default: a disk, type 0)."""
        device = self.add_tape(hctl, serial=serial, wwn=wwn, vendor=vendor, model=model,
                               rev=rev, type=type, **kw)
        if type == 0:
            name = "sd" + chr(ord("a") + block_index)
            path = self._add("block", "block/" + name, device, {"dev": "8:%d\n" % (
                16 * block_index), "size": "2097152\n"},
                {"DEVNAME": "/dev/" + name, "DEVTYPE": "disk", "MAJOR": "8",
                 "MINOR": str(16 * block_index)})
            self.uevent(path, "add")
        return device

    def _descendants(self, syspath: str) -> List[str]:
        """Device directories under syspath (those with a uevent file), deepest first."""
        root = self.tb.get_root_dir()
        found = []
        for top, dirs, files in os.walk(root + syspath):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
            if "uevent" in files and top != root + syspath:
                found.append(top[len(root):])
        return sorted(found, key=lambda p: (-p.count("/"), p))

    def remove(self, syspath: str) -> None:
        """Remove a device (children first), as `echo 1 > .../delete` does."""
        # umockdev's remove_device drops only the device's own class/bus links.
        for child in self._descendants(syspath):
            self.uevent(child, "remove")
            self.tb.remove_device(child)
        self.uevent(syspath, "remove")
        parent = os.path.dirname(syspath)
        self.tb.remove_device(syspath)
        self._specs.pop(os.path.basename(syspath), None)
        # The kernel reaps a target once its last device is gone.
        if os.path.basename(parent).startswith("target") and not self._descendants(parent):
            self.uevent(parent, "remove")
            self.tb.remove_device(parent)

    def renumber(self, old_hctl: str, new_hctl: str) -> str:
        """The same device (identity and options) moved from old_hctl to new_hctl."""
        spec = self._specs[old_hctl]
        self.remove(self.syspath(old_hctl))
        return self.add_tape(new_hctl, **spec)

    def syspath(self, hctl: str) -> str:
        """The scsi_device syspath currently at hctl."""
        link = self.tb.get_root_dir() + "/sys/bus/scsi/devices/" + hctl
        return "/sys/" + os.path.relpath(os.path.realpath(link),
                                         os.path.realpath(self.tb.get_sys_dir()))


@pytest.fixture(name="bed")
def bed_fixture() -> Any:
    """A fresh Bed per test (skips outside umockdev-wrapper)."""
    if UMOCKDEV_PROBLEM is not None:
        pytest.skip(UMOCKDEV_PROBLEM)
    bed = Bed()
    try:
        yield bed
    finally:
        bed.close()
