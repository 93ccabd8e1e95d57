"""Discovery that scales with tapes: disk uevents ask for no pass, tape uevents always
do, and the remembered passes see what a one-shot read sees (umockdev).

Run: umockdev-wrapper .venv/bin/python -m pytest tests/integration/test_discovery_scale.py
"""

import gc
import os
from typing import Any, List

import pytest
from support.diskfarm import DiskFarm
from support.udevbed import Bed, bed_fixture, needs_umockdev  # noqa: F401 - bed_fixture is `bed`

from tapeshared.host import udev
from tapeshared.host.discovery import Discovery

pytestmark = [pytest.mark.umockdev, needs_umockdev]

ACTIONS = ("add", "change", "bind", "unbind", "remove")


def watched(bed: Bed, farm_size: int = 0) -> Any:
    """A tape, a changer and farm_size disks, a Discovery after one pass, its watch."""
    tape = bed.add_tape("1:0:6:0", st_index=0, sg_index=0)
    changer = bed.add_changer("1:0:7:0", sg_index=1, ch_index=0)
    farm = DiskFarm(bed)
    farm.add_disks(farm_size)
    discovery = Discovery(bed.context())
    discovery.observe()
    watch = udev.UdevWatch(discovery=discovery, context=bed.context())
    assert watch.drain() is False  # nothing queued before the test's events
    return tape, changer, farm, discovery, watch


def close(watch: Any) -> None:
    """Close the watch's socket now, not at a later collection: an open socket
    fills with later uevents, and umockdev aborts the process when one is full."""
    watch.close()
    gc.collect()


def asked(bed: Bed, watch: Any, path: str, action: str) -> bool:
    before = watch.events
    bed.uevent(path, action)
    wanted = watch.drain()
    assert watch.events == before + 1, "the uevent %s %s never arrived" % (action, path)
    return wanted


def tape_paths(bed: Bed, tape: str, changer: str) -> List[str]:
    host = os.path.dirname(os.path.dirname(tape))
    return [tape, tape + "/scsi_tape/st0", tape + "/scsi_tape/nst0",
            tape + "/scsi_generic/sg0", tape + "/bsg/1:0:6:0",
            changer, changer + "/scsi_changer/sch0", changer + "/scsi_generic/sg1",
            changer + "/bsg/1:0:7:0", host]


def test_remembered_passes_see_what_a_fresh_read_sees(bed: Bed) -> None:
    bed.add_tape("1:0:6:0")
    bed.add_disk("1:0:2:0", sg_index=3)
    replaced = bed.add_disk("1:0:3:0", sg_index=4, block_index=1)
    farm = DiskFarm(bed)
    farm.add_disks(5)
    discovery = Discovery(bed.context())
    assert discovery.observe() == udev.observe(bed.context())
    reads = discovery.reads
    assert discovery.observe() == udev.observe(bed.context())
    assert discovery.reads == reads + 1  # the tape only
    # a tape is read afresh on every pass, even when no address changed
    bed.tb.set_attribute(bed.syspath("1:0:6:0"), "vendor", "IBM     \n")
    assert [d.vendor for d in discovery.observe() if d.exportable] == ["IBM"]
    # no watch: events missed; the address's sysfs entry is a new one. sysfs
    # numbers its inodes cyclically; the testbed's disk file system reuses a
    # freed number at once, so the old entries are held open meanwhile.
    held = [os.open("/sys/bus/scsi/devices/" + name, os.O_PATH | os.O_NOFOLLOW)
            for name in ("1:0:3:0", os.path.basename(farm.devices[0]))]
    try:
        bed.remove(replaced)
        bed.add_tape("1:0:3:0", serial="HU9999ZZZZ", wwn="5000e11156304999", st_index=1,
                     sg_index=6)
        bed.remove(farm.devices[0])
        seen = discovery.observe()
    finally:
        for fd in held:
            os.close(fd)
    assert seen == udev.observe(bed.context())
    assert [str(d.hctl) for d in seen if d.exportable] == ["1:0:3:0", "1:0:6:0"]


def test_a_disk_at_a_tapes_old_address_asks_for_a_pass(bed: Bed) -> None:
    tape = bed.add_tape("1:0:6:0")
    discovery = Discovery(bed.context())
    assert [d.type for d in discovery.observe()] == [1]
    # umockdev's uevent socket holds a few datagrams only (a full one aborts the
    # process): the tape's dozen remove events go before the watch listens
    bed.remove(tape)
    assert "1:0:6:0" not in [str(d.hctl) for d in discovery.observe()]
    watch = udev.UdevWatch(discovery=discovery, context=bed.context())
    try:
        squatter = bed.add_disk("1:0:6:0", sg_index=5)
        assert watch.drain() is True  # a disk, but where a tape was: a kept LUN's address
        for action in ("change", "remove"):
            assert asked(bed, watch, squatter, action) is True
    finally:
        close(watch)


def test_disk_storm_asks_for_no_pass(bed: Bed) -> None:
    _tape, _changer, farm, discovery, watch = watched(bed, farm_size=60)
    passes = 0
    for action in ("add", "change", "bind", "remove"):
        for index, device in enumerate(farm.devices):
            for path in [device] + farm.children[index]:
                bed.uevent(path, action)
            passes += watch.drain()
    # the block children are filtered by subsystem; the rest is read and classified
    assert watch.events == 4 * 60 * 3
    assert passes == 0
    assert discovery.reads == 62  # the storm read no device in full
    try:
        assert watch.drain() is False
    finally:
        close(watch)


@pytest.mark.parametrize("action", ACTIONS)
def test_every_tape_changer_sg_bsg_host_event_asks_for_a_pass(bed: Bed, action: str) -> None:
    tape, changer, _farm, _discovery, watch = watched(bed, farm_size=3)
    try:
        missed = [p for p in tape_paths(bed, tape, changer) if not asked(bed, watch, p, action)]
    finally:
        close(watch)
    assert missed == []


@pytest.mark.parametrize("action", ACTIONS)
def test_tape_events_count_before_any_pass(bed: Bed, action: str) -> None:
    # a daemon's first events can come before its first pass: nothing is known yet
    tape = bed.add_tape("1:0:6:0")
    changer = bed.add_changer("1:0:7:0", sg_index=1)
    watch = udev.UdevWatch(discovery=Discovery(bed.context()), context=bed.context())
    try:
        missed = [p for p in tape_paths(bed, tape, changer) if not asked(bed, watch, p, action)]
    finally:
        close(watch)
    assert missed == []


def test_a_disk_that_becomes_a_tape_is_seen(bed: Bed) -> None:
    _tape, _changer, farm, discovery, watch = watched(bed, farm_size=3)
    disk = farm.devices[1]
    try:
        bed.tb.set_attribute(disk, "type", "1\n")
        assert asked(bed, watch, disk, "change") is True
    finally:
        close(watch)
    kinds = {str(d.hctl): d.type for d in discovery.observe()}
    assert kinds[os.path.basename(disk)] == 1
    assert sorted(kinds.values()) == [0, 0, 1, 1, 8]
