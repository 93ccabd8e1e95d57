#!/usr/bin/env python3
"""Daemon benchmark (prints figures, asserts nothing); run under umockdev-wrapper:

    umockdev-wrapper .venv/bin/python tests/benchmark.py [--idle-seconds 60]
    umockdev-wrapper .venv/bin/python tests/benchmark.py --disks 2000 10000
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from support import builders, tgtd
from support.daemonrun import (
    SERIAL,
    TAPE0,
    DaemonRun,
    hctl_line,
    in_netns,
    netns_wrapper,
    wait_for,
)
from support.ietroot import IetRoot
from support.scalebench import measure_one, report
from support.tgtd import CountingRunner
from support.udevbed import UMOCKDEV_PROBLEM, Bed

from tapeshared import app, config
from tapeshared.backends.iet.backend import IetBackend
from tapeshared.backends.tgt.backend import TgtBackend
from tapeshared.backends.tgt.plan import TgtSettings
from tapeshared.reconcile import Reconciler

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--renumberings", type=int, default=10)
    parser.add_argument("--portal-changes", type=int, default=5)
    parser.add_argument("--reads-only", action="store_true",
                        help="only the per-backend reads of an idle pass")
    parser.add_argument("--disks", type=int, nargs="+", metavar="N",
                        help="only discovery: pass time with 0 and N disk paths, "
                        "and a storm of disk uevents")
    parser.add_argument("--disks-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.disks:
        if UMOCKDEV_PROBLEM:
            sys.exit("benchmark: %s" % UMOCKDEV_PROBLEM)
        measure_disks(args.disks)
        return
    if args.disks_one is not None:
        print(json.dumps(measure_one(args.disks_one)))
        return
    if args.reads_only:
        with tempfile.TemporaryDirectory() as base:
            reads_per_idle_pass(base)
        return
    if UMOCKDEV_PROBLEM:
        sys.exit("benchmark: %s" % UMOCKDEV_PROBLEM)
    with tempfile.TemporaryDirectory() as base:
        root = IetRoot(base)
        fake_reset(root)
        bed = Bed()
        run = DaemonRun(bed, root)
        try:
            measure(run, root, bed, args)
            run.close()
            if netns_wrapper() is not None and shutil.which("iptables"):
                os.makedirs(os.path.join(base, "portal"))
                portal_root = IetRoot(os.path.join(base, "portal"))
                fake_reset(portal_root)
                run = DaemonRun(bed, portal_root, portal="lo", firewall="iptables")
                measure_portal(run, args)
            reads_per_idle_pass(base)
        finally:
            run.close()
            bed.close()


class Counted:
    """A backend whose observe() calls are counted."""

    def __init__(self, backend):
        self.backend = backend
        self.name = backend.name
        self.observes = 0

    def observe(self, managed):
        self.observes += 1
        return self.backend.observe(managed)

    def __getattr__(self, name):
        return getattr(self.backend, name)


def idle_pass(backend, runner, cfg, devices):
    """Apply once (converge), then count what one more (idle) apply reads and runs."""
    counted = Counted(backend)
    rec = Reconciler(cfg, counted, lambda: list(devices), contextlib.nullcontext)
    rec.apply()
    counted.observes, runner.seen[:] = 0, []
    report = rec.apply()
    return counted.observes, len(runner.seen), report.actions


def reads_per_idle_pass(base):
    """Target reads and commands of one idle pass, per backend (the one-read rule)."""
    root = IetRoot(os.path.join(base, "reads-iet"))
    root.write_config(TAPE0)
    root.present("1:0:6:0")
    cfg = config.load(root.conf)
    runner = CountingRunner()
    tape = builders.tape("1:0:6:0", serial=SERIAL)
    observes, commands, actions = idle_pass(
        IetBackend(app.iet_settings(cfg.globals), runner, reset=root.fake_reset,
                   instance=root.instance), runner, cfg, [tape])
    print("iet idle pass: %d target read(s), %d command(s), %d action(s)"
          % (observes, commands, len(actions)))
    try:
        with tgtd.running(base) as adm:
            image = os.path.join(base, "tape.img")
            with open(image, "wb") as handle:
                handle.truncate(1 << 20)
            runner = CountingRunner()
            settings = TgtSettings(tgtadm=adm, state_dir=os.path.join(base, "tgt-state"),
                                   bstype="rdwr", device_type="disk")
            cfg = builders.config(builders.export(lun=1, serial=SERIAL), backend="tgt")
            observes, commands, actions = idle_pass(
                TgtBackend(settings, runner, drive=tgtd.FakeDrive()), runner, cfg,
                [builders.tape("1:0:6:0", serial=SERIAL, sg=image)])
            print("tgt idle pass: %d target read(s), %d tgtadm run(s), %d action(s)"
                  % (observes, commands, len(actions)))
    except tgtd.Unavailable as exc:
        print("tgt idle pass: not measured (%s)" % exc)


def measure_disks(counts):
    """Each count of disk paths in a process of its own (see measure_one)."""
    results = []
    for count in [0] + [c for c in counts if c]:
        out = subprocess.run([sys.executable, __file__, "--disks-one", str(count)],
                             stdout=subprocess.PIPE, check=True, universal_newlines=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    report(results)


def measure_portal(run, args):
    """Portal address appears/goes (netlink) -> firewall rule follows."""
    run.start()
    pid = run.proc.pid
    rules = lambda: in_netns(pid, "iptables", "-w", "-S", "TAPESHARED")  # noqa: E731
    appear, vanish = [], []
    for _ in range(args.portal_changes):
        run.settle(quiet=0.3)
        sent = time.monotonic()
        in_netns(pid, "ip", "addr", "add", "192.0.2.1/32", "dev", "lo")
        wait_for(lambda: "-d 192.0.2.1/32" in rules(), interval=0.001, what="rule")
        appear.append(time.monotonic() - sent)
        run.settle(quiet=0.3)
        sent = time.monotonic()
        in_netns(pid, "ip", "addr", "del", "192.0.2.1/32", "dev", "lo")
        wait_for(lambda: "ACCEPT" not in rules(), interval=0.001, what="no rule")
        vanish.append(time.monotonic() - sent)
    print("portal address added -> firewall rule to it, %d runs: median %.3f s, max %.3f s"
          % (len(appear), statistics.median(appear), max(appear)))
    print("portal address removed -> rule gone, %d runs: median %.3f s, max %.3f s"
          % (len(vanish), statistics.median(vanish), max(vanish)))


def _resets(root):
    """How many logical-unit resets the daemon made (the fake logs each one)."""
    return (root.read(root.path("standin/log")) or "").count("reset ")


def fake_reset(root):
    """The daemon's drive reset faked and logged (see tests/support/hostfake)."""
    os.environ["TAPESHARED_TEST_RESET_LOG"] = root.path("standin/log")


def measure(run, root, bed, args):
    hctls = ["1:0:6:0", "2:0:6:0"]
    bed.add_tape(hctls[0], serial=SERIAL)
    started = time.monotonic()
    run.start()
    wait_for(lambda: hctl_line(hctls[0]) in run.ietd(), what="first export")
    print("python: %s" % os.environ.get("TAPESHARED_DAEMON_PYTHON", sys.executable))
    print("start to READY=1 and first export: %.3f s" % (time.monotonic() - started))
    run.settle()

    latencies, restarts, resets = [], [], []
    for i in range(args.renumberings):
        old, new = hctls[i % 2], hctls[(i + 1) % 2]
        before, reset_before = root.restarts, _resets(root)
        bed.renumber(old, new)
        sent = time.monotonic()  # the last uevent of the renumbering has been sent
        wait_for(lambda new=new, before=before: hctl_line(new) in run.ietd()
                 and root.restarts > before, interval=0.001, what="convergence")
        latencies.append(time.monotonic() - sent)
        run.settle(quiet=0.4)
        restarts.append(root.restarts - before)
        resets.append(_resets(root) - reset_before)
    print("renumbering -> converged (ietd.conf + stand-in restarted), %d runs: "
          "median %.3f s, min %.3f s, max %.3f s (debounce 0.15 s included)"
          % (len(latencies), statistics.median(latencies), min(latencies), max(latencies)))
    print("restarts per renumbering: %s" % restarts)
    print("drive resets per renumbering (the host's LU reset, faked: umockdev has no "
          "SCSI device): %s" % resets)

    path = bed.syspath(hctls[args.renumberings % 2])
    for count in (300, 1000):
        last, before = run.settle(quiet=0.4), root.restarts
        sent = time.monotonic()
        for _ in range(count):
            bed.uevent(path, "change")
        sent = time.monotonic() - sent
        run.wait_pass(last)
        passes = run.settle(quiet=0.5) - last
        print("no-op burst of %d change uevents (sent in %.3f s): %d apply pass(es), "
              "%d restart(s)" % (count, sent, passes, root.restarts - before))

    pid = run.proc.pid
    run.settle(quiet=0.3)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(args.idle_seconds)
    used, spent = cpu_seconds(pid) - cpu0, time.monotonic() - t0
    print("idle: %.2f CPU s over %.1f s (%.3f%%)" % (used, spent, 100 * used / spent))
    print("resident memory (VmRSS): %d KiB" % rss_kib(pid))


if __name__ == "__main__":
    main()
