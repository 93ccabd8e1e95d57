"""Many disk paths in a umockdev Bed, as a multipath SAN shows them to a Dom0.

Each disk is a scsi_device (type 0, vendor/model/rev, VPD pages, wwid) with a
block sdX child, an sgN child and a bsg child, under hosts of their own (from
host 20 up, 200 LUNs a target), so the tapes a test adds elsewhere keep their
names. ``add_disks`` sends no uevents (a farm that was there before the daemon
started); ``storm`` sends add, change and remove uevents for each disk path.
"""

from typing import Any, Iterator, List

from support.udevbed import vpd80, vpd83

FIRST_HOST = 20
PER_TARGET = 200
PER_HOST = 2000
FIRST_SG = 1000
FIRST_SD = 26 * 27  # sdaaa: clear of the sdX of disks a test adds itself


def _sd_name(index: int) -> str:
    """sda..sdz, sdaa..sdzz, sdaaa.. as the kernel names them."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return "sd" + letters


def _hctl(index: int) -> str:
    host, rest = divmod(index, PER_HOST)
    target, lun = divmod(rest, PER_TARGET)
    return "%d:0:%d:%d" % (FIRST_HOST + host, target, lun)


class DiskFarm:
    """Disk paths added to a Bed; ``paths`` lists every syspath of them (devices
    and their children), device first."""

    def __init__(self, bed: Any) -> None:
        self.bed = bed
        self.devices: List[str] = []
        self.children: List[List[str]] = []

    def add_disks(self, count: int) -> None:
        """Add count disk paths (no uevents)."""
        bed = self.bed
        for index in range(len(self.devices), len(self.devices) + count):
            hctl = _hctl(index)
            h, c, t, _lun = (int(p) for p in hctl.split(":"))
            if h not in bed._hosts:
                bed.add_host(h, "qla2xxx")
            target = bed._target(h, c, t)
            wwn = "6000c2%010x" % index
            t10 = b"LIO-ORG Virtual disk    " + b"D%08d" % index
            device = bed._add("scsi", hctl, target, {
                "type": "0\n", "vendor": "LIO-ORG \n", "model": "Virtual disk    \n",
                "rev": "4.0 \n", "state": "running\n", "wwid": "naa.%s\n" % wwn,
                "vpd_pg80": vpd80(b"D%08d" % index, 0),
                "vpd_pg83": vpd83(wwn, t10, 0)}, {"DEVTYPE": "scsi_device"})
            sd, sg = _sd_name(FIRST_SD + index), FIRST_SG + index
            kids = [
                bed._add("block", "block/" + sd, device, {"dev": "8:%d\n" % index,
                                                          "size": "2097152\n"},
                         {"DEVNAME": "/dev/" + sd, "DEVTYPE": "disk", "MAJOR": "8",
                          "MINOR": str(index), "ID_SERIAL": "3" + wwn}),
                bed._add("scsi_generic", "scsi_generic/sg%d" % sg, device,
                         {"dev": "21:%d\n" % sg}, {"DEVNAME": "/dev/sg%d" % sg,
                                                   "MAJOR": "21", "MINOR": str(sg)}),
                bed._add("bsg", "bsg/" + hctl, device, {"dev": "250:%d\n" % sg},
                         {"DEVNAME": "/dev/bsg/" + hctl, "MAJOR": "250",
                          "MINOR": str(sg)}),
            ]
            self.devices.append(device)
            self.children.append(kids)

    def paths(self) -> Iterator[str]:
        for device, kids in zip(self.devices, self.children):
            yield device
            for kid in kids:
                yield kid

    def storm(self, actions: Any = ("add", "change", "remove")) -> int:
        """Send each action for every disk path (sysfs stays); returns the count."""
        sent = 0
        for action in actions:
            for path in self.paths():
                self.bed.uevent(path, action)
                sent += 1
        return sent
