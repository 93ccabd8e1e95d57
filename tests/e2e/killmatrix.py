"""Kill `tapeshared apply` before every step of a change, in one Python process.

Runs in the guest (PYTHONPATH=/mnt/src). tapeshared is imported once; each
apply is a forked child that runs the CLI's own entry function (what the
console script calls) in-process, so an apply costs its own work and not a
Python start (the read-only checkout is compiled afresh by every start).

    killmatrix.py --conf CONF --steps LOG --lib FILE... --objects FUNC
                  [--after-kill FUNC] --case NAME SETUP PREPARE VERIFY ...

SETUP, PREPARE, VERIFY, FUNC are bash commands (usually functions of the
--lib files, which are sourced first; "-" for none). Per case: SETUP once
and an apply (the export the change starts from); PREPARE, then a clean
apply (the dry run: its step log gives the n steps), VERIFY, and the objects
FUNC prints are the expected set. Then for every k in
1..n: PREPARE; an apply with TAPESHARED_KILL_AT_STEP=k that must die by
SIGKILL with a step log ending in "k<TAB>label<TAB>KILL"; FUNC --after-kill
(KM_K, KM_DRY: the dry run's step log); one apply (the restart's first pass)
and one more (the resync, whose step log must stay empty: every change is a
step, so the first pass left what it found); then the objects must equal the
expected set exactly. The children's output goes to
LOG.children.

The step counter of tapeshared.host.faults is a module global that fork
copies: this process never calls step(), and each child checks it starts
from zero.
"""

import argparse
import cProfile
import difflib
import logging
import os
import pstats
import signal
import subprocess
import sys
import time
import traceback

from tapeshared import cli
from tapeshared.host import faults


def warm_up():
    """Import here what an apply imports on first use, so no child compiles it."""
    cli.parser()  # imports the status and doctor modules for their epilogs
    # pyroute2 (the portal's addresses) loads its parts on first attribute use
    for name, attrs in (("pyudev", ()), ("tenacity", ()), ("ctypes", ()),
                        ("pyroute2", ("IPRoute", "NetlinkError"))):
        try:
            module = __import__(name)
            for attr in attrs:
                getattr(module, attr)
        except ImportError:
            pass


class Matrix:
    def __init__(self, args):
        self.conf = args.conf
        self.steps = args.steps
        self.children = args.steps + ".children"
        self.prefix = "set -eu\n" + "".join('. "%s"\n' % lib for lib in args.lib)
        self.objects_cmd = args.objects
        self.after_kill = args.after_kill
        self.profile = args.profile
        self.profile_next = False
        self.failed = 0

    def bash(self, command, env=None):
        """(rc, output) of a bash command after the --lib files."""
        full = dict(os.environ)
        full.update(env or {})
        proc = subprocess.run(["bash", "-c", self.prefix + command], env=full,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        return proc.returncode, proc.stdout

    def must(self, what, command, env=None):
        rc, out = self.bash(command, env)
        if rc != 0:
            raise Failed("%s (%s, exit %d)" % (what, command, rc), out)
        return out

    def objects(self):
        return self.must("objects", self.objects_cmd)

    def apply(self, what, kill_at=None):
        """Fork a child running `tapeshared -c CONF apply`; its wait status.

        Its steps are logged to the step log (emptied first)."""
        if os.path.exists(self.steps):
            os.unlink(self.steps)
        with open(self.children, "a") as log:
            log.write("--- %s\n" % what)
        sys.stdout.flush()
        sys.stderr.flush()
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
            # the children's log lines carry the time (cli.main's own
            # basicConfig then does nothing)
            logging.basicConfig(level=logging.INFO, format="%(asctime)s.%(msecs)03d %(name)s "
                                "%(levelname)s: %(message)s", datefmt="%H:%M:%S")
            argv = ["-c", self.conf, "apply"]
            if faults.steps_taken() != 0:
                sys.stderr.write("the child starts with %d steps counted\n"
                                 % faults.steps_taken())
            elif self.profile and self.profile_next:
                profile = cProfile.Profile()
                rc = profile.runcall(cli.main, argv)
                with open(self.profile, "a") as out:
                    out.write("--- one apply that changes nothing (a resync)\n")
                    stats = pstats.Stats(profile, stream=out)
                    stats.sort_stats("cumulative").print_stats(35)
            else:
                rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 70
        except BaseException:  # noqa: B902 - the child must never return
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(rc)

    def step_lines(self):
        try:
            with open(self.steps) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def clean_apply(self, what):
        status = self.apply(what)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            raise Failed("%s: apply ended with %s" % (what, describe(status)),
                         self.tail_children())
        return self.step_lines()

    def tail_children(self, n=15):
        with open(self.children) as f:
            return "".join(f.readlines()[-n:])

    def compare(self, expected, when):
        got = self.objects()
        if got != expected:
            diff = "".join(difflib.unified_diff(expected.splitlines(True), got.splitlines(True),
                                                "expected", "got"))
            raise Failed("%s: the objects differ from a whole apply's" % when, diff)

    def case(self, name, setup, prepare, verify):
        begin = time.monotonic()
        if setup != "-":  # and the export the change starts from
            self.must("%s: setup" % name, setup)
            self.clean_apply("%s: the export before the change" % name)
        if prepare != "-":
            self.must("%s: prepare" % name, prepare)
        dry = self.clean_apply("%s: dry run" % name)
        if not dry:
            raise Failed("%s: the dry run logged no step" % name, "")
        dry_log = self.steps + ".dry"
        with open(dry_log, "w") as f:
            f.write("\n".join(dry) + "\n")
        if verify != "-":
            self.must("%s: the dry run's export" % name, verify)
        expected = self.objects()
        if not expected.strip():
            raise Failed("%s: no objects after the dry run" % name, "")
        self.profile_next = True
        resync = self.clean_apply("%s: dry run's resync" % name)
        self.profile_next = False
        if resync:
            raise Failed("%s: a resync after the dry run still changed something" % name,
                         "\n".join(self.step_lines()))
        n = len(dry)
        ok("%s: %d steps; expected objects:\n%s" % (name, n, indent(expected)))
        killed = []
        for k in range(1, n + 1):
            label = dry[k - 1].split("\t", 1)[-1][:70]
            try:
                self.kill_once(name, prepare, expected, k, n, dry_log)
                killed.append(k)
            except Failed as exc:
                self.failed += 1
                print("FAIL: %s: killed before step %d/%d (%s): %s" % (name, k, n, label, exc.what))
                if exc.output.strip():
                    print(indent(exc.output))
        ok("%s: killed before each of its %d steps: %d of %d converged (%.1f s)" % (
            name, n, len(killed), n, time.monotonic() - begin))

    def kill_once(self, name, prepare, expected, k, n, dry_log):
        times = []
        t0 = time.monotonic()
        if prepare != "-":
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
        times.append(time.monotonic())
        note = ""
        if self.after_kill:
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
        self.compare(expected, "after the first pass and the resync")
        times.append(time.monotonic())
        spans = [b - a for a, b in zip([t0] + times[:-1], times)]
        ok("%s: killed before step %d/%d (%s)%s; pass and resync converged "
           "(prepare %.1f s, killed apply %.1f s, after-kill %.1f s, pass %.1f s, resync %.1f s)"
           % ((name, k, n, label[:60], ": " + note if note else "") + tuple(spans)))


class Failed(Exception):
    def __init__(self, what, output):
        Exception.__init__(self, what)
        self.what = what
        self.output = output or ""


def describe(status):
    if os.WIFSIGNALED(status):
        return "signal %d" % os.WTERMSIG(status)
    return "exit %d" % os.WEXITSTATUS(status)


def indent(text):
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


def ok(text):
    print("PASS: " + text)
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conf", required=True)
    parser.add_argument("--steps", required=True)
    parser.add_argument("--lib", action="append", default=[])
    parser.add_argument("--objects", required=True)
    parser.add_argument("--after-kill")
    parser.add_argument("--profile", help="append a profile of one resync per case here")
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
            print("FAIL: %s" % exc.what)
            if exc.output.strip():
                print(indent(exc.output))
            break
    print("RESULT kill matrix: %d case(s), %d failure(s), %.1f s" % (
        len(args.case), matrix.failed, time.monotonic() - begin))
    return 1 if matrix.failed else 0


if __name__ == "__main__":
    sys.exit(main())
