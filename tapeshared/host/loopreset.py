"""A LUN reset inside LIO, so that every initiator nexus of a LUN learns of it.

The drive's own unit attention (see tapeshared.host.scsireset) reaches one
nexus: the first initiator command that gets through. With several initiator
ACLs on one export, the others must be told by LIO itself. LIO queues
UNIT ATTENTION 29h/03h on every nexus of every LUN of a device when it executes
a LOGICAL UNIT RESET task management function; tapeshared issues one from a
short-lived local nexus of LIO's loopback fabric (tcm_loop): a loopback target
with one LUN on the backstore, SG_SCSI_RESET on the SCSI device it creates on
this host, then the loopback target is removed again. pscsi does not pass the
reset on to the drive. Discovery never counts a device on a tcm_loop host.

Objects are ours by name: loopback WWNs `naa.5001405e` + 8 hex digits of the
backstore name's hash. A leftover of a killed daemon is removed before use.
"""

import errno
import hashlib
import os
import time
from typing import Callable, List

from tapeshared.core.errors import TransientError
from tapeshared.core.model import Hctl
from tapeshared.host import scsireset

PREFIX = "naa.5001405e"
_LUN = "tpgt_1/lun/lun_0"


class Unavailable(TransientError):
    """LIO's loopback fabric (the tcm_loop module) is not there."""


def wwn_for(store_name: str, salt: str = "") -> str:
    return PREFIX + hashlib.sha1((salt + store_name).encode("utf-8")).hexdigest()[:8]


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def teardown(root: str, wwn: str) -> None:
    """Remove one loopback target of ours, leaves first; missing parts are fine."""
    base = os.path.join(root, "loopback", wwn)
    lun = os.path.join(base, _LUN)
    try:
        for name in os.listdir(lun):
            if os.path.islink(os.path.join(lun, name)):
                os.unlink(os.path.join(lun, name))
    except OSError:
        pass
    for path in (lun, os.path.join(base, "tpgt_1"), base):
        try:
            os.rmdir(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise


def leftovers(root: str) -> List[str]:
    """Loopback targets of ours that a killed daemon left behind."""
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "loopback"))
                      if n.startswith(PREFIX))
    except OSError:
        return []


def prepare(root: str, store_path: str, sysfs_devices: str = "/sys/bus/scsi/devices",
            dev_dir: str = "/dev", wait: float = 3.0,
            sleep: Callable[[float], object] = time.sleep) -> Hctl:
    """Bring up the loopback nexus for one backstore and wait for its sg node.

    Done before the initiators' ACLs are mapped, so that the LUN reset after
    the mapping costs one ioctl (the loopback device is probed meanwhile).
    Returns the loopback device's address; Unavailable without tcm_loop.
    """
    loop = os.path.join(root, "loopback")
    if not os.path.isdir(loop):
        try:
            os.mkdir(loop)  # configfs loads the fabric module (tcm_loop)
        except OSError as exc:
            raise Unavailable("LIO's loopback fabric is not available (tcm_loop): %s" %
                              os.strerror(exc.errno or 0))
    name = store_path.rsplit("/", 1)[-1]
    wwn = wwn_for(name)
    teardown(root, wwn)
    base = os.path.join(loop, wwn)
    try:
        os.mkdir(base)
        os.mkdir(os.path.join(base, "tpgt_1"))
        with open(os.path.join(base, "tpgt_1", "nexus"), "w") as handle:
            handle.write(wwn_for(name, "nexus"))
        os.mkdir(os.path.join(base, _LUN))
        os.symlink(os.path.join(root, store_path), os.path.join(base, _LUN, name))
        hctl = _device(base, sysfs_devices)
        deadline = time.monotonic() + wait
        while True:  # the sg node is made by udev, a moment after the device
            try:
                scsireset.sg_ready(hctl, sysfs_devices=sysfs_devices, dev_dir=dev_dir)
                return hctl
            except TransientError:
                if time.monotonic() > deadline:
                    raise
                sleep(0.02)
    except OSError as exc:
        teardown(root, wwn)
        raise TransientError("the loopback nexus for %s: %s" % (
            store_path, os.strerror(exc.errno or 0)))
    except TransientError:
        teardown(root, wwn)
        raise


def lun_reset(root: str, store_path: str, reset: Callable[..., object],
              sysfs_devices: str = "/sys/bus/scsi/devices", dev_dir: str = "/dev",
              wait: float = 3.0, sleep: Callable[[float], object] = time.sleep) -> Hctl:
    """LOGICAL UNIT RESET of one backstore through its loopback nexus (brought
    up here unless `prepare` did), which is removed afterwards."""
    wwn = wwn_for(store_path.rsplit("/", 1)[-1])
    base = os.path.join(root, "loopback", wwn)
    try:
        hctl = None
        if os.path.isdir(base):
            try:
                hctl = _device(base, sysfs_devices)
            except TransientError:
                hctl = None
        if hctl is None:
            hctl = prepare(root, store_path, sysfs_devices, dev_dir, wait, sleep)
        reset(hctl, None, sysfs_devices=sysfs_devices, dev_dir=dev_dir)
        return hctl
    finally:
        teardown(root, wwn)


def _device(base: str, sysfs_devices: str) -> Hctl:
    """The SCSI device the loopback LUN made on this host (tpg `address` H:0:T)."""
    address = _read(os.path.join(base, "tpgt_1", "address"))
    parts = address.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise TransientError("the loopback target shows no address (%r)" % address)
    hctl = Hctl(int(parts[0]), int(parts[1]), int(parts[2]), 0)
    host = "host%d" % hctl.host
    driver = _read(os.path.join(sysfs_devices, host, "scsi_host", host, "proc_name"))
    if driver != "tcm_loopback" or not os.path.isdir(os.path.join(sysfs_devices,
                                                                  str(hctl))):
        raise TransientError("the loopback LUN made no device at %s" % hctl)
    return hctl

