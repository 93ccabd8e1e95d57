"""Kill `tapeshared apply` before every step of a change, in one Python process.

In the guest (PYTHONPATH=/mnt/src): tapeshared is imported once; each apply
is a forked child running the CLI's entry function (the console script's), so
it costs its own work, not a Python start (which compiles the read-only
checkout afresh).

    killmatrix.py --conf CONF --steps LOG --lib FILE... --objects FUNC|lio
                  [--after-kill FUNC] --case NAME SETUP PREPARE VERIFY ...

SETUP, PREPARE, VERIFY, FUNC: bash commands run after sourcing the --lib
files ("-": none). Per case: SETUP and an apply (the export the change starts
from), once; PREPARE and a clean apply (the dry run: its step log gives n),
VERIFY; the objects then (FUNC's output) are the expected set. For each k in
1..n: PREPARE; an apply with TAPESHARED_KILL_AT_STEP=k must die by SIGKILL,
its step log ending in "k<TAB>label<TAB>KILL"; --after-kill (env KM_K, KM_CASE,
KM_DRY: the dry run's log); one apply (the restart's first pass) and one more
(the resync: its step log must stay empty; every change is a step, so the
first pass left what it found); the objects must equal the expected set.
Children's output: LOG.children. faults.step() counts in a module global that
fork copies: this process never calls it, each child checks it starts at 0.
"""

import argparse
import difflib
import glob
import importlib
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
import traceback

from tapeshared import cli
from tapeshared.host import faults


def warm_up():
    """Import here what an apply imports on first use, so no child compiles it."""
    cli.parser()  # imports the status and doctor modules for their epilogs
    for name in ("ctypes", "pyudev", "tenacity"):
        importlib.import_module(name)
    from pyroute2 import IPRoute, NetlinkError  # noqa: F401 - loaded on first use


LIO = "/sys/kernel/config/target"
# configfs_snapshot of lio-lib.sh: what is listed, what is left out (matched
# against "PATH LINK-TARGET"), and the numbers LIO leaves to tapeshared
_KEEP = re.compile(r"tapeshared|/acls/|/lun/|/np/")
_DROP = re.compile(r"/statistics|/alua|/pr$|/wwn$|/attrib$|/auth$|/param$|/fabric_statistics")
_NUMBERS = ((re.compile(r"pscsi_[0-9]+"), "pscsi_N"),
            (re.compile(r"/lun/lun_[0-9]+"), "/lun/lun_N"),
            (re.compile(r"-h[0-9]+c[0-9]+t[0-9]+l[0-9]+"), "-hHCTL"))
_HCTL = re.compile(r"-h([0-9]+)c([0-9]+)t([0-9]+)l([0-9]+)\Z")
_ALIAS = re.compile(r"\Atapeshared sysfs-ino=([0-9]+)")
_SCOPE = re.compile(r" scope=([a-z]+)")
_TPG_ATTRIBS = ("generate_node_acls", "demo_mode_write_protect", "cache_dynamic_acls",
                "authentication")


def lio_objects(root=LIO):
    """Every object under LIO's targets and backstores (directories and links,
    7 levels deep), numbers made uniform; each TPG's enable, alias and the
    attributes tapeshared writes; one line per backstore of ours:
    enabled, bound to the object now at its address (the alias's sysfs-ino
    against that address's inode: current, stale, none), the reset recorded."""
    lines = []
    for top in ("core", "iscsi"):
        start = os.path.join(root, top)
        for path, dirs, files in os.walk(start):  # find -maxdepth 7
            names = dirs + files
            if path[len(start):].count(os.sep) >= 6:
                dirs[:] = []
            for name in names:
                full = os.path.join(path, name)
                mode = os.lstat(full).st_mode
                if stat.S_ISLNK(mode):
                    line = "%s %s" % (full, os.readlink(full))
                elif stat.S_ISDIR(mode):
                    line = full + " "
                else:
                    continue
                if _KEEP.search(full) and not _DROP.search(line):
                    lines.append(line)
    for tpg in sorted(glob.glob(os.path.join(root, "iscsi", "*", "tpgt_*"))):
        lines.append("%s enable=%s alias=%s %s" % (tpg, _read(tpg + "/enable"), _read(
            tpg + "/param/TargetAlias"), " ".join("%s=%s" % (a, _read(tpg + "/attrib/" + a))
                                                  for a in _TPG_ATTRIBS)))
    core = os.path.join(root, "core")
    for hba in sorted(os.listdir(core)) if os.path.isdir(core) else []:
        for name in sorted(os.listdir(os.path.join(core, hba))):
            if hba.startswith("pscsi_") and name.startswith("tapeshared-"):
                lines.append(_backstore(os.path.join(core, hba, name)))
    for pattern, uniform in _NUMBERS:
        lines = [pattern.sub(uniform, line) for line in lines]
    return "".join(line + "\n" for line in sorted(lines))


def _backstore(path):
    alias, enable = _read(path + "/alias"), _read(path + "/enable")
    mark, scope = _ALIAS.search(alias), _SCOPE.search(alias)
    address = _HCTL.search(path)
    device = "/sys/bus/scsi/devices/%s:%s:%s:%s" % address.groups() if address else ""
    bound = "none"
    if mark:
        now = str(os.stat(device).st_ino) if os.path.exists(device) else None
        bound = "current" if now == mark.group(1) else "stale"
    return "backstore %s enable=%s bound=%s reset=%s" % (
        os.path.basename(path), enable, bound, scope.group(1) if scope else "none")


def _read(path):
    with open(path) as handle:
        return handle.read().strip()


class Matrix:
    def __init__(self, args):
        self.conf = args.conf
        self.steps = args.steps
        self.children = args.steps + ".children"
        self.prefix = "set -eu\n" + "".join('. "%s"\n' % lib for lib in args.lib)
        self.objects_cmd = args.objects
        self.after_kill = args.after_kill
        self.failed = self.differed = 0

    def must(self, what, command, env=None):
        """The output of a bash command run after the --lib files; it must succeed."""
        if command == "-":
            return ""
        full = dict(os.environ, **(env or {}))
        proc = subprocess.run(["bash", "-c", self.prefix + command], env=full,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if proc.returncode != 0:
            raise Failed("%s (%s, exit %d)" % (what, command, proc.returncode), proc.stdout)
        return proc.stdout

    def objects(self):
        if self.objects_cmd == "lio":  # in this process: no bash, find, sed, sort
            return lio_objects()
        return self.must("objects", self.objects_cmd)

    def apply(self, what, kill_at=None):
        """The wait status of a forked `tapeshared -c CONF apply` (steps: a new log)."""
        if os.path.exists(self.steps):
            os.unlink(self.steps)
        with open(self.children, "a") as log:
            log.write("--- %s\n" % what)
        sys.stdout.flush(), sys.stderr.flush()
        if faults.steps_taken() != 0:
            raise Failed("the driver counted steps itself", "")
        pid = os.fork()
        if pid == 0:
            self._child(kill_at)
        _pid, status = os.waitpid(pid, 0)
        return status

    def _child(self, kill_at):
        rc = 70
        try:
            os.environ[faults.LOG_ENV] = self.steps
            if kill_at is None:
                os.environ.pop(faults.KILL_ENV, None)
            else:
                os.environ[faults.KILL_ENV] = str(kill_at)
            fd = os.open(self.children, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            # log lines with the time (then cli.main's own basicConfig does nothing)
            logging.basicConfig(level=logging.INFO, format="%(asctime)s.%(msecs)03d %(name)s "
                                "%(levelname)s: %(message)s", datefmt="%H:%M:%S")
            if faults.steps_taken() != 0:
                sys.stderr.write("the child starts with %d steps counted\n" % faults.steps_taken())
            else:
                rc = cli.main(["-c", self.conf, "apply"])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 70
        except BaseException:  # noqa: B902 - the child must never return
            traceback.print_exc()
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(rc)

    def step_lines(self):
        with open(self.steps) if os.path.exists(self.steps) else open(os.devnull) as f:
            return f.read().splitlines()

    def clean_apply(self, what):
        status = self.apply(what)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            raise Failed("%s: apply ended with %s" % (what, describe(status)),
                         self.tail_children())
        return self.step_lines()

    def tail_children(self):
        with open(self.children) as f:
            return "".join(f.readlines()[-15:])

    def case(self, name, setup, prepare, verify):
        begin = time.monotonic()
        if setup != "-":  # and the export the change starts from
            self.must("%s: setup" % name, setup)
            self.clean_apply("%s: the export before the change" % name)
        self.must("%s: prepare" % name, prepare)
        dry = self.clean_apply("%s: dry run" % name)
        if not dry:
            raise Failed("%s: the dry run logged no step" % name, "")
        dry_log = self.steps + ".dry"
        with open(dry_log, "w") as f:
            f.write("\n".join(dry) + "\n")
        self.must("%s: the dry run's export" % name, verify)
        expected = self.objects()
        if not expected.strip():
            raise Failed("%s: no objects after the dry run" % name, "")
        resync = self.clean_apply("%s: dry run's resync" % name)
        if resync:
            raise Failed("%s: a resync after the dry run still changed something" % name,
                         "\n".join(self.step_lines()))
        n = len(dry)
        ok("%s: %d steps; expected objects:\n%s" % (name, n, indent(expected)))
        killed = self.differed = 0
        for k in range(1, n + 1):
            label = dry[k - 1].split("\t", 1)[-1][:70]
            try:
                self.kill_once(name, prepare, expected, k, n, dry_log)
                killed += 1
            except Failed as exc:
                self.failed += 1
                exc.report("%s: killed before step %d/%d (%s): " % (name, k, n, label))
        ok("%s: killed before each of its %d steps: %d of %d converged; %d kills had left "
           "other objects (%.1f s)" % (name, n, killed, n, self.differed,
                                       time.monotonic() - begin))

    def kill_once(self, name, prepare, expected, k, n, dry_log):
        times = []
        t0 = time.monotonic()
        self.must("prepare", prepare)
        times.append(time.monotonic())
        status = self.apply("%s: kill at %d" % (name, k), kill_at=k)
        if not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGKILL:
            raise Failed("the apply was not killed: %s" % describe(status), self.tail_children())
        lines = self.step_lines()
        last = lines[-1] if lines else ""
        if len(lines) != k or not (last.startswith("%d\t" % k) and last.endswith("\tKILL")):
            raise Failed("the step log does not end in step %d KILL" % k, "\n".join(lines[-3:]))
        label = lines[-1].split("\t")[1]
        self.differed += self.objects() != expected  # what the pass has to repair
        times.append(time.monotonic())
        note = self.must("after the kill", self.after_kill,
                         {"KM_K": str(k), "KM_DRY": dry_log, "KM_CASE": name}).strip()
        times.append(time.monotonic())
        self.clean_apply("%s: first pass after a kill at %d" % (name, k))
        times.append(time.monotonic())
        resync = self.clean_apply("%s: resync after a kill at %d" % (name, k))
        if resync:
            raise Failed("the resync still changed something", "\n".join(resync))
        # every change is a step, so an empty resync log means the first pass
        # left what is compared here
        got = self.objects()
        if got != expected:
            raise Failed("after the first pass and the resync: the objects differ from a "
                         "whole apply's", "".join(difflib.unified_diff(
                             expected.splitlines(True), got.splitlines(True), "expected", "got")))
        times.append(time.monotonic())
        spans = [b - a for a, b in zip([t0] + times[:-1], times)]
        ok("%s: killed before step %d/%d (%s)%s; pass and resync converged "
           "(prepare %.1f s, killed apply %.1f s, after-kill %.1f s, pass %.1f s, resync %.1f s)"
           % ((name, k, n, label[:60], ": " + note if note else "") + tuple(spans)))


class Failed(Exception):
    def __init__(self, what, output):
        Exception.__init__(self, what)
        self.what, self.output = what, output or ""

    def report(self, prefix=""):
        print("FAIL: %s%s" % (prefix, self.what))
        if self.output.strip():
            print(indent(self.output))


def describe(status):
    signalled = os.WIFSIGNALED(status)
    return ("signal %d" if signalled else "exit %d") % (
        os.WTERMSIG(status) if signalled else os.WEXITSTATUS(status))


def indent(text):
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


def ok(text):
    print("PASS: " + text)
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("--conf", "--steps"):
        parser.add_argument(name, required=True)
    parser.add_argument("--lib", action="append", default=[])
    parser.add_argument("--objects", required=True,
                        help='a bash command, or "lio" (configfs, listed here)')
    parser.add_argument("--after-kill", default="-")
    parser.add_argument("--case", action="append", nargs=4, required=True,
                        metavar=("NAME", "SETUP", "PREPARE", "VERIFY"))
    args = parser.parse_args()
    begin = time.monotonic()
    warm_up()
    matrix = Matrix(args)
    print("NOTE: warm-up imports %.1f s" % (time.monotonic() - begin))
    for name, setup, prepare, verify in args.case:
        try:
            matrix.case(name, setup, prepare, verify)
        except Failed as exc:
            matrix.failed += 1
            exc.report()
            break
    print("RESULT kill matrix: %d case(s), %d failure(s), %.1f s" % (
        len(args.case), matrix.failed, time.monotonic() - begin))
    return 1 if matrix.failed else 0


if __name__ == "__main__":
    sys.exit(main())
