"""Discovery against a farm of disk paths: pass cost and a disk uevent storm
(figures for tests/benchmark.py --disks; asserts nothing)."""

import statistics
import time

from support.diskfarm import DiskFarm
from support.udevbed import Bed
from tapeshared.host import udev
from tapeshared.host.discovery import Discovery

STORM_DISKS = 2000


def _timed(call, runs=5):
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def _storm(bed, farm, discovery, children=True):
    """add, change, remove for the paths of STORM_DISKS disks, drained as the daemon
    does; returns (events sent, drains that asked for a pass, drain CPU seconds,
    events received, monitor errors)."""
    watch = udev.UdevWatch(discovery=discovery, receive_buffer=64 << 20)
    sent = asked = 0
    cpu = 0.0
    try:
        for action in ("add", "change", "remove"):
            for index, device in enumerate(farm.devices[:STORM_DISKS]):
                for path in [device] + (farm.children[index] if children else []):
                    bed.uevent(path, action)
                    sent += 1
                # umockdev's uevent socket queues a few datagrams only: drain
                # after each disk, as a daemon reading its fd in a loop would
                started = time.process_time()
                asked += watch.drain()
                cpu += time.process_time() - started
        for _ in range(3):
            started = time.process_time()
            asked += watch.drain()
            cpu += time.process_time() - started
        return sent, asked, cpu, watch.events, watch.errors
    finally:
        watch.close()


def measure_one(count, legacy_upto=2000):
    """Figures for one testbed of count disk paths (one testbed per process: a
    second one in the same process is several times slower to build and read)."""
    bed = Bed()
    try:
        bed.add_tape("1:0:6:0")
        bed.add_changer("1:0:7:0", st_index=0, sg_index=1, ch_index=0)
        farm = DiskFarm(bed)
        started = time.monotonic()
        farm.add_disks(count)
        out = {"disks": count, "built": time.monotonic() - started}
        discovery = Discovery(bed.context())
        started = time.perf_counter()
        devices = discovery.observe()
        out["cold"], out["cold_reads"] = time.perf_counter() - started, discovery.reads
        out["devices"] = len(devices)
        out["tapes"] = sum(1 for d in devices if d.exportable)
        out["warm"] = _timed(discovery.observe, runs=20)
        out["warm_reads"] = (discovery.reads - out["cold_reads"]) / 20.0
        if count <= legacy_upto:
            out["legacy"] = _timed(lambda: udev.observe(bed.context()), runs=1)
        if count >= STORM_DISKS:
            keys = ("sent", "asked", "cpu", "events", "errors")
            out["devices_only"] = dict(zip(keys, _storm(bed, farm, discovery, children=False)))
            out.update(zip(keys, _storm(bed, farm, discovery)))
            started = time.perf_counter()
            discovery.observe()
            out["after_storm"] = time.perf_counter() - started
        return out
    finally:
        bed.close()


def report(results):
    """Print the figures of measure_one results, the first with 0 disks."""
    base = results[0]["warm"]
    for out in results:
        print("disks %(disks)5d (testbed built in %(built).1f s): %(devices)d devices, "
              "%(tapes)d tapes/changers; first pass %(cold).3f s (%(cold_reads)d read), "
              "pass %(warm).4f s (median of 20, %(warm_reads).1f read)" % out
              + ", ratio to 0 disks %.1fx" % (out["warm"] / base))
        if "legacy" in out:
            print("           one-shot udev.observe() (CLI, doctor): %.3f s" % out["legacy"])
        if "sent" in out:
            print("           storm add/change/remove of %d disks' paths: %d uevents sent, "
                  "%d received, %d drain(s) asked for a pass, %d monitor error(s), "
                  "classification CPU %.3f s; next pass %.4f s"
                  % (STORM_DISKS, out["sent"], out["events"], out["asked"], out["errors"],
                     out["cpu"], out["after_storm"]))
            only = out["devices_only"]
            print("           the same storm of the %d scsi_devices alone: %d uevents sent, "
                  "%d received, %d drain(s) asked for a pass, classification CPU %.3f s"
                  % (STORM_DISKS, only["sent"], only["events"], only["asked"], only["cpu"]))
