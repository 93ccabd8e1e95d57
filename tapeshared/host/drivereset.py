"""Reset the drive behind a pass-through node before a target exports it (adapter).

A target whose pass-through LUs bypass its own unit-attention logic (tgt's
bs_sg) can only tell an initiator that the drive behind its LUN is a new
device instance through the drive's own unit attention: a no-escalation
logical-unit reset on the host, after the old LUN is gone and before the
target opens the node. Which device is reset is decided by sysfs alone: the
node about to be opened must name the address the device was found at, and
the kernel object there must be the same before and after the reset.
"""

import os
from typing import Callable, Optional

from tapeshared.core.errors import TransientError
from tapeshared.core.model import Hctl
from tapeshared.host import scsireset

ResetLu = Callable[..., str]


def node_address(path: str, sysfs: str = "/sys") -> Optional[Hctl]:
    """The SCSI address sysfs gives for an sg or bsg node's name, None if none."""
    base = os.path.basename(path)
    for link in ("class/scsi_generic/%s/device" % base, "class/bsg/%s/device" % base):
        try:
            return Hctl.parse(os.path.basename(os.readlink(os.path.join(sysfs, link))))
        except (OSError, ValueError):
            continue
    return None


class DriveReset:
    """Resets the device behind a pass-through node; tells whether it still is there."""

    def __init__(self, sysfs: str = "/sys", reset_lu: ResetLu = scsireset.reset_lu,
                 dev_dir: str = "/dev") -> None:
        self.sysfs = sysfs
        self.devices = os.path.join(sysfs, "bus", "scsi", "devices")
        self.reset_lu = reset_lu
        self.dev_dir = dev_dir

    def instance(self, hctl: Hctl) -> Optional[str]:
        """Which kernel object holds the address now (see scsireset.instance)."""
        return scsireset.instance(hctl, self.devices)

    def reset(self, hctl: Hctl, path: str) -> str:
        """Reset the device at hctl, which path must name; returns its instance.

        TransientError (naming the device and why) when the node names another
        address or none, the address is empty, the reset fails or the device
        changed meanwhile: nothing is exported then.
        """
        where = "reset of %s (%s) before it is exported" % (hctl, path)
        named = node_address(path, self.sysfs)
        if named != hctl:
            raise TransientError("%s: %s names %s, not the device found at %s; not reset"
                                 % (where, path, named or "no SCSI device", hctl))
        before = self.instance(hctl)
        if before is None:
            raise TransientError("%s: the address holds no device now" % where)
        try:
            self.reset_lu(hctl, expect=before, sysfs_devices=self.devices,
                          dev_dir=self.dev_dir)
        except TransientError as exc:
            raise TransientError("%s: %s" % (where, exc))
        if self.instance(hctl) != before or node_address(path, self.sysfs) != hctl:
            raise TransientError("%s: the device changed during the reset" % where)
        return before

    def holds(self, path: str, hctl: Hctl, instance: str) -> bool:
        """Whether path still names the device instance that was reset at hctl."""
        return node_address(path, self.sysfs) == hctl and self.instance(hctl) == instance
