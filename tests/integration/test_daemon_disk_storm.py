"""The daemon (a real process on a umockdev testbed) under a storm of disk uevents:
no pass, or one at most; a tape's uevent after it still makes one."""

import time

from support.daemonrun import SERIAL, hctl_line, needs_daemon, wait_for
from support.diskfarm import DiskFarm

DISKS = 100


@needs_daemon
def test_a_disk_storm_makes_no_pass_and_a_tape_event_after_it_does(daemon_run, ietroot):
    d = daemon_run()
    tape = d.bed.add_tape("1:0:6:0", serial=SERIAL)
    farm = DiskFarm(d.bed)
    farm.add_disks(DISKS)
    d.start()
    wait_for(lambda: hctl_line("1:0:6:0") in d.ietd(), what="the first export")
    last = d.settle()
    restarts = ietroot.restarts
    sent = 0
    for action in ("add", "change", "remove"):
        for index, device in enumerate(farm.devices):
            for path in [device] + farm.children[index]:
                d.bed.uevent(path, action)
                sent += 1
            time.sleep(0.005)  # umockdev's uevent socket holds a few datagrams only
    # the block children are filtered by subsystem; the daemon logs the rest
    wait_for(lambda: d.text().count("(ignored)") >= DISKS * 3 * 3, what="the storm read")
    passes = d.settle() - last
    assert passes <= 1, "a storm of %d disk uevents made %d passes" % (sent, passes)
    assert ietroot.restarts == restarts
    last = d.settle()
    d.bed.uevent(tape + "/scsi_generic/sg0", "remove")  # no attributes: known by its path
    d.wait_pass(last)
    assert "DEBUG: uevent remove %s/scsi_generic/sg0\n" % tape in d.text()
