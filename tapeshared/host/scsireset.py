"""Reset one SCSI logical unit from the host, so that its next command reports it.

A tape that comes back as a new kernel object (renumbered, or rescanned at the
same address) was reset, power-cycled or lost its HBA: its position is no longer
the one the initiator keeps. The drive's own power-on unit attention is consumed
on the host (the scan, the target's own configuration of the device) before any
initiator command gets through, so tapeshared resets the logical unit again
after binding it and before mapping it to any initiator: the drive then answers
the first pass-through command with CHECK CONDITION / UNIT ATTENTION 29h, and
the initiator's st marks its position unknown.

The reset is SG_SCSI_RESET with SG_SCSI_RESET_DEVICE | SG_SCSI_RESET_NO_ESCALATE
on the device's own sg node (what `sg_reset -N -d` does): a logical-unit reset
of that device only, never escalated to its target, bus or host. Which device is
reset is decided by sysfs alone: the sg node sysfs names under the address, and
the opened file must be that character device (a /dev name is not trusted).
"""

import errno
import fcntl
import os
import stat
import struct
from typing import Optional, Tuple

from tapeshared.core.errors import TransientError
from tapeshared.core.model import Hctl

SG_SCSI_RESET = 0x2284
SG_SCSI_RESET_DEVICE = 1
SG_SCSI_RESET_NO_ESCALATE = 0x100


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def instance(hctl: Hctl, sysfs_devices: str = "/sys/bus/scsi/devices") -> Optional[str]:
    """Which kernel object holds the address now: its sysfs directory's inode
    (kernfs numbers every new node afresh), None when the address is empty."""
    try:
        return str(os.stat(os.path.join(sysfs_devices, str(hctl))).st_ino)
    except OSError:
        return None


def _open_sg(hctl: Hctl, expect: Optional[str], sysfs_devices: str, dev_dir: str,
             where: str) -> Tuple[int, str]:
    """An fd on the sg node sysfs names for the device at hctl, checked to be that
    character device and (with expect) that device instance."""
    base = os.path.join(sysfs_devices, str(hctl))
    now = instance(hctl, sysfs_devices)
    if now is None:
        raise TransientError("%s: the address holds no device now" % where)
    if expect is not None and now != expect:
        raise TransientError("%s: the address holds another device than the one "
                             "bound; not reset" % where)
    try:
        names = [n for n in os.listdir(os.path.join(base, "scsi_generic"))
                 if n.startswith("sg") and n[2:].isdigit()]
    except OSError:
        names = []
    if len(names) != 1:
        raise TransientError("%s: it has no sg node (is the sg module loaded?)" % where)
    name = names[0]
    try:
        major, minor = (int(x) for x in _read(os.path.join(
            base, "scsi_generic", name, "dev")).split(":"))
    except (OSError, ValueError):
        raise TransientError("%s: sysfs does not give %s's device number" % (where, name))
    node = os.path.join(dev_dir, name)
    try:
        fd = os.open(node, os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TransientError("%s: cannot open %s: %s" % (where, node,
                                                         os.strerror(exc.errno or 0)))
    info = os.fstat(fd)
    if not stat.S_ISCHR(info.st_mode) or info.st_rdev != os.makedev(major, minor):
        os.close(fd)
        raise TransientError("%s: %s is not the sg device sysfs names (%d:%d); "
                             "not reset" % (where, node, major, minor))
    if instance(hctl, sysfs_devices) != now:
        os.close(fd)
        raise TransientError("%s: the device changed while it was opened; "
                             "not reset" % where)
    return fd, node


def sg_ready(hctl: Hctl, sysfs_devices: str = "/sys/bus/scsi/devices",
             dev_dir: str = "/dev") -> str:
    """The device's sg node, once it can be opened as the node sysfs names
    (opening an sg node sends nothing to the device); TransientError before."""
    fd, node = _open_sg(hctl, None, sysfs_devices, dev_dir, "the sg node of %s" % hctl)
    os.close(fd)
    return node


def reset_lu(hctl: Hctl, expect: Optional[str] = None,
             sysfs_devices: str = "/sys/bus/scsi/devices", dev_dir: str = "/dev") -> str:
    """Reset the logical unit at hctl (no escalation); returns the sg node used.

    expect: the device instance (see `instance`) that must still hold the
    address; a different or missing one is refused (TransientError), as is a
    device without an sg node (the sg module is needed) or a reset the host
    adapter refuses.
    """
    where = "reset of the device at %s" % hctl
    fd, node = _open_sg(hctl, expect, sysfs_devices, dev_dir, where)
    try:
        try:
            fcntl.ioctl(fd, SG_SCSI_RESET, struct.pack(
                "i", SG_SCSI_RESET_DEVICE | SG_SCSI_RESET_NO_ESCALATE))
        except OSError as exc:
            why = os.strerror(exc.errno or 0)
            if exc.errno == errno.EIO:
                why = "the host adapter could not reset the logical unit"
            raise TransientError("%s (%s): %s" % (where, node, why))
    finally:
        os.close(fd)
    return node


# struct sg_io_hdr (scsi/sg.h), native layout
_SG_IO = 0x2285
_SG_IO_HDR = "iiBBHIPPPIIiPBBBBHHiII"


def test_unit_ready(hctl: Hctl, expect: Optional[str] = None,
                    sysfs_devices: str = "/sys/bus/scsi/devices",
                    dev_dir: str = "/dev") -> bool:
    """One TEST UNIT READY from the host (no retries): True if GOOD.

    Used once, after a LUN reset inside LIO has told every initiator: it takes
    the drive's own pending unit attention, so the initiator that would have
    got it does not get the news twice.
    """
    import ctypes
    where = "TEST UNIT READY of the device at %s" % hctl
    fd, _node = _open_sg(hctl, expect, sysfs_devices, dev_dir, where)
    try:
        cdb = ctypes.create_string_buffer(6)
        sense = ctypes.create_string_buffer(32)
        hdr = bytearray(struct.pack(_SG_IO_HDR, ord("S"), -1, 6, 32, 0, 0, 0,
                                    ctypes.addressof(cdb), ctypes.addressof(sense),
                                    5000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + bytes(8))
        try:
            fcntl.ioctl(fd, _SG_IO, hdr)
        except OSError as exc:
            raise TransientError("%s: %s" % (where, os.strerror(exc.errno or 0)))
        fields = struct.unpack(_SG_IO_HDR, bytes(hdr[:struct.calcsize(_SG_IO_HDR)]))
        status, host, driver = int(fields[13]), int(fields[17]), int(fields[18])
        return status == 0 and host == 0 and (driver & 0xF) == 0
    finally:
        os.close(fd)
