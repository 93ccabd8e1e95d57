#!/usr/bin/env python3
"""Run e2e scenarios in a nested Debian VM (QEMU, direct kernel boot).

    python3 tests/e2e/run.py smoke            # build the image if needed, run
    python3 tests/e2e/run.py --build-only     # just build (or reuse) the image
    python3 tests/e2e/run.py --list           # scenarios available

Each scenario is tests/e2e/scenarios/NAME.sh, run as root in the guest by
tests/e2e/guest-run.sh from a read-only 9p share of the checkout (/mnt/src).
The exit status is the scenario's (several: the first failure's); 124 means
the VM timed out, 125 that the guest could not start the scenario.

Environment: TAPESHARED_E2E_CACHE (image cache, default
/var/cache/tapeshared-e2e), TAPESHARED_E2E_ACCEL (auto, tcg or kvm; auto uses
KVM only when a probe boots the guest kernel under it).

Standard library only; runs on Python 3.6+.
"""

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
SCENARIO_DIR = os.path.join(HERE, "scenarios")
BUILD_SCRIPT = os.path.join(HERE, "build-image.sh")
# Everything that goes into the image: a change to any of these rebuilds it.
IMAGE_INPUTS = (BUILD_SCRIPT, os.path.join(HERE, "guest-packages.txt"))
IMAGE_FILES = ("rootfs.img", "vmlinuz", "initrd.img")
# The older-kernel guest (--kernel old): the same root file system with an older
# suite's kernel added, kept in a subdirectory of the image it derives from.
ADD_KERNEL_SCRIPT = os.path.join(HERE, "add-kernel.sh")
KERNELS = ("default", "old")
# deb-* scenarios install the .deb built here (dist/ is not tracked).
DEB_DIR = os.path.join(CHECKOUT, "dist", "e2e")

DEFAULT_CACHE = "/var/cache/tapeshared-e2e"
BUILD_TIMEOUT = 1200
RUN_TIMEOUT = 600
KVM_PROBE_TIMEOUT = 20
POWEROFF_GRACE = 30

RC_TIMEOUT = 124
RC_GUEST_SETUP = 125
RC_NO_RESULT = 126

RC_MARKER = re.compile(r"TAPESHARED-E2E-RC=(\d+)")
START_MARKER = "TAPESHARED-E2E: uptime"
SCENARIO_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class Unavailable(Exception):
    """The VM tier cannot run here (missing tool, not root, image build failed)."""


class Result:
    """Outcome of one VM run."""

    def __init__(self, rc, console_log, results_dir, timings):
        self.rc = rc
        self.console_log = console_log
        self.results_dir = results_dir
        self.timings = timings

    def console_tail(self, lines=60):
        try:
            with open(self.console_log, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def log(msg):
    print("e2e: " + msg, file=sys.stderr, flush=True)


def cache_dir():
    return os.environ.get("TAPESHARED_E2E_CACHE") or DEFAULT_CACHE


def scenarios():
    """Names of the scenarios in tests/e2e/scenarios, sorted."""
    return sorted(
        name[:-3] for name in os.listdir(SCENARIO_DIR)
        if name.endswith(".sh") and SCENARIO_NAME.match(name[:-3])
    )


def image_key():
    """Hash of what goes into the image, including build-image.sh's overrides."""
    digest = hashlib.sha256()
    inputs = list(IMAGE_INPUTS)
    if os.environ.get("TAPESHARED_E2E_SOURCES"):
        inputs.append(os.environ["TAPESHARED_E2E_SOURCES"])
    for path in inputs:
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    digest.update(os.environ.get("TAPESHARED_E2E_SUITE", "").encode())
    return digest.hexdigest()[:16]


def require_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise Unavailable(
            "missing host tools: %s (install tests/e2e/host-packages.txt)" % ", ".join(missing))


# --- image -----------------------------------------------------------------

def ensure_image(rebuild=False, quiet=False):
    """Return the directory of a built image, building it first if needed."""
    images = os.path.join(cache_dir(), "images")
    image = os.path.join(images, image_key())
    if not rebuild and all(os.path.exists(os.path.join(image, f)) for f in IMAGE_FILES):
        return image
    if os.geteuid() != 0:
        raise Unavailable("building the guest image needs root (mmdebstrap --mode=root)")
    require_tools("mmdebstrap", "mke2fs", "apt-get")
    try:
        os.makedirs(images, exist_ok=True)
    except OSError as exc:
        raise Unavailable("cannot create the image cache %s: %s" % (images, exc))
    with open(os.path.join(cache_dir(), "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; others wait and reuse
        if not rebuild and all(os.path.exists(os.path.join(image, f)) for f in IMAGE_FILES):
            return image
        _build(image, quiet)
        _prune(images, keep=os.path.basename(image))
    return image


def ensure_kernel_image(image, kernel, quiet=False):
    """Return the image directory to boot for kernel ('default' or 'old').

    'old' is derived from image by add-kernel.sh once and cached beside it,
    keyed by that script and its suite, so the base image is not rebuilt.
    """
    if kernel == "default":
        return image
    if kernel not in KERNELS:
        raise ValueError("kernel must be one of %s, not %r" % (", ".join(KERNELS), kernel))
    digest = hashlib.sha256()
    with open(ADD_KERNEL_SCRIPT, "rb") as f:
        digest.update(f.read())
    digest.update(os.environ.get("TAPESHARED_E2E_OLD_SUITE", "").encode())
    derived = os.path.join(image, "old-" + digest.hexdigest()[:12])
    if all(os.path.exists(os.path.join(derived, f)) for f in IMAGE_FILES):
        return derived
    if os.geteuid() != 0:
        raise Unavailable("adding the older kernel needs root (loop mount, chroot)")
    with open(os.path.join(cache_dir(), "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.path.exists(os.path.join(derived, f)) for f in IMAGE_FILES):
            return derived
        for name in os.listdir(image):  # an older add-kernel.sh's result
            if name.startswith("old-"):
                _remove_tree(os.path.join(image, name))
        started = time.monotonic()
        log("adding the older kernel to %s" % os.path.basename(image))
        proc = subprocess.run([ADD_KERNEL_SCRIPT, image, derived], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=BUILD_TIMEOUT)
        text = proc.stdout.decode("utf-8", "replace")
        if not quiet:
            sys.stderr.write(text)
        if proc.returncode != 0:
            raise Unavailable("add-kernel.sh failed (exit %d):\n%s" % (
                proc.returncode, "\n".join(text.splitlines()[-20:])))
        log("older kernel added in %.0f s" % (time.monotonic() - started))
    return derived


def _mounts_under(path):
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if (line.split()[4] + "/").startswith(prefix)]


def _remove_tree(path):
    """rmtree, but never into a file system still mounted below path."""
    if os.path.exists(path):
        mounts = _mounts_under(path)
        if mounts:
            raise Unavailable("%s still has mounts (%s): unmount them first"
                              % (path, ", ".join(mounts)))
        shutil.rmtree(path)


def _build(image, quiet):
    tmp = image + ".tmp"
    _remove_tree(tmp)
    build_log = os.path.join(cache_dir(), "build.log")
    log("building guest image %s (log: %s)" % (os.path.basename(image), build_log))
    started = time.monotonic()
    with open(build_log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([BUILD_SCRIPT, tmp, cache_dir()], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        # SIGTERM lets mmdebstrap unmount what it mounted in the chroot.
        deadline = threading.Timer(BUILD_TIMEOUT, os.killpg, (proc.pid, signal.SIGTERM))
        deadline.start()
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                out.write(line)
                if not quiet:
                    sys.stderr.write(line)
        finally:
            deadline.cancel()
            proc.wait()
    if proc.returncode != 0:
        with open(build_log, encoding="utf-8", errors="replace") as f:
            tail = "".join(f.readlines()[-25:])
        raise Unavailable("image build failed (exit %d; log %s)\n%s"
                          % (proc.returncode, build_log, tail))
    _remove_tree(image)
    os.rename(tmp, image)
    log("image built in %.0f s" % (time.monotonic() - started))


def _prune(images, keep):
    for name in os.listdir(images):
        if name != keep:
            _remove_tree(os.path.join(images, name))


# --- QEMU ------------------------------------------------------------------

def qemu_command(image, accel, append, shares, memory=1024, cpus=2):
    cmd = [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-no-reboot",
        "-machine", "q35", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
        "-smp", str(cpus), "-m", str(memory),
        "-display", "none", "-serial", "stdio",
        "-kernel", os.path.join(image, "vmlinuz"),
        "-append", append,
        "-device", "virtio-rng-pci",
    ]
    if shares is not None:
        cmd += ["-initrd", os.path.join(image, "initrd.img"),
                "-drive", "file=%s,format=raw,if=virtio,snapshot=on"
                % os.path.join(image, "rootfs.img")]
        for tag, path, readonly in shares:
            cmd += ["-virtfs", "local,path=%s,mount_tag=%s,security_model=none,"
                    "multidevs=remap%s" % (path, tag, ",readonly=on" if readonly else "")]
    return cmd


def choose_accel(image):
    """'kvm' only if asked for, or if a probe boots the guest kernel under KVM."""
    wanted = os.environ.get("TAPESHARED_E2E_ACCEL", "auto")
    if wanted in ("tcg", "kvm"):
        return wanted
    if wanted != "auto":
        raise Unavailable("TAPESHARED_E2E_ACCEL must be auto, tcg or kvm, not %r" % wanted)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    # Cache the verdict per host boot and kernel.
    state = os.path.join(cache_dir(), "kvm-probe.json")
    key = "%s %s" % (_boot_id(), image_key())
    try:
        with open(state) as f:
            cached = json.load(f)
        if cached.get("key") == key:
            return cached["accel"]
    except (OSError, ValueError, KeyError):
        pass
    accel = "kvm" if _kvm_probe(image) else "tcg"
    try:
        with open(state, "w") as f:
            json.dump({"key": key, "accel": accel}, f)
    except OSError:
        pass
    return accel


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _kvm_probe(image):
    """Boot the guest kernel without a root fs under KVM: it must panic quickly.

    A paravirtual /dev/kvm that the kernel cannot run under hangs or crawls
    instead; that, or any QEMU error, means TCG.
    """
    cmd = qemu_command(image, "kvm", "console=ttyS0 panic=-1 root=/dev/nonexistent", None)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=KVM_PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        log("KVM probe: no kernel panic within %d s, using TCG" % KVM_PROBE_TIMEOUT)
        return False
    ok = b"Kernel panic" in proc.stdout
    log("KVM probe: %s" % ("KVM works" if ok else "KVM unusable, using TCG"))
    return ok


def check_scenarios(names):
    for name in names:
        if not SCENARIO_NAME.match(name) or not os.path.exists(
                os.path.join(SCENARIO_DIR, name + ".sh")):
            raise ValueError("no such scenario: %r (have: %s)" % (name, ", ".join(scenarios())))


def ensure_deb():
    """Build the .deb (packaging/build.sh) into dist/e2e/ of the checkout, which
    the guest sees read-only at /mnt/src/dist/e2e; built afresh for every run
    that names a deb-* scenario, so it is the checkout's code."""
    os.makedirs(DEB_DIR, exist_ok=True)
    with open(os.path.join(DEB_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runs: one build at a time
        out = tempfile.mkdtemp(prefix="tapeshared-deb-")
        try:
            started = time.monotonic()
            proc = subprocess.run(["bash", os.path.join(CHECKOUT, "packaging", "build.sh"), out],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=BUILD_TIMEOUT)
            text = proc.stdout.decode("utf-8", "replace")
            if proc.returncode != 0:
                raise Unavailable("packaging/build.sh failed (exit %d):\n%s" % (
                    proc.returncode, "\n".join(text.splitlines()[-20:])))
            debs = [f for f in os.listdir(out) if f.endswith("_all.deb")]
            if len(debs) != 1:
                raise Unavailable("packaging/build.sh built %r, not one .deb" % debs)
            for old in os.listdir(DEB_DIR):
                if old.endswith(".deb"):
                    os.unlink(os.path.join(DEB_DIR, old))
            shutil.copy(os.path.join(out, debs[0]), DEB_DIR)
            log("built %s (%.1f s)" % (os.path.join(DEB_DIR, debs[0]),
                                       time.monotonic() - started))
        finally:
            shutil.rmtree(out, ignore_errors=True)


def run_scenarios(names, image=None, results_dir=None, timeout=RUN_TIMEOUT,
                  echo=True, extra_append="", cpus=2):
    """Boot the guest once, run the named scenarios in it, return a Result."""
    check_scenarios(names)
    if any(name.startswith("deb-") for name in names):
        ensure_deb()
    require_tools("qemu-system-x86_64")
    if image is None:
        image = ensure_image()
    if results_dir is None:
        results_dir = tempfile.mkdtemp(prefix="tapeshared-e2e-")
    os.makedirs(results_dir, exist_ok=True)
    for stale in ("rc",):
        if os.path.exists(os.path.join(results_dir, stale)):
            os.unlink(os.path.join(results_dir, stale))
    accel = choose_accel(image)
    append = ("console=ttyS0,115200 root=/dev/vda rw quiet panic=-1 "
              "systemd.show_status=false tapeshared.scenario=%s %s"
              % (",".join(names), extra_append)).strip()
    shares = [("src", CHECKOUT, True), ("results", results_dir, False)]
    cmd = qemu_command(image, accel, append, shares, cpus=cpus)
    console_log = os.path.join(results_dir, "console.log")
    log("booting (%s) for %s; console: %s" % (accel, ",".join(names), console_log))

    timings = {}
    started = time.monotonic()
    marker_rc = []
    with open(console_log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

        def pump():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").replace("\r", "")
                out.write(line)
                out.flush()
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                if START_MARKER in line and "boot" not in timings:
                    timings["boot"] = time.monotonic() - started
                found = RC_MARKER.search(line)
                if found:
                    marker_rc.append(int(found.group(1)))
                    timings.setdefault("scenarios", time.monotonic() - started
                                       - timings.get("boot", 0.0))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = not _wait_for_exit(proc, started + timeout, marker_rc)
        reader.join(5)
    timings["total"] = time.monotonic() - started

    rc = _read_rc(results_dir)
    if rc is None and marker_rc:
        rc = marker_rc[-1]
    if timed_out:
        log("timed out after %d s; QEMU killed" % timeout)
        rc = RC_TIMEOUT if rc is None else rc
    elif rc is None:
        log("no result from the guest (QEMU exit %d)" % proc.returncode)
        rc = RC_NO_RESULT
    log("exit %d; %s" % (rc, ", ".join("%s %.1f s" % kv for kv in sorted(timings.items()))))
    return Result(rc, console_log, results_dir, timings)


def _wait_for_exit(proc, deadline, marker_rc):
    """Wait for QEMU to exit by deadline; once the guest has printed its result,
    allow it POWEROFF_GRACE seconds to power off. Kill it otherwise; False if
    the deadline passed without a result."""
    while proc.poll() is None:
        now = time.monotonic()
        if marker_rc and not hasattr(proc, "grace_until"):
            proc.grace_until = now + POWEROFF_GRACE
        limit = getattr(proc, "grace_until", deadline)
        if now >= min(limit, deadline):
            if marker_rc:
                log("guest did not power off within %d s of its result; QEMU killed"
                    % POWEROFF_GRACE)
            proc.kill()
            proc.wait()
            return bool(marker_rc)
        time.sleep(0.2)
    return True


def _read_rc(results_dir):
    try:
        with open(os.path.join(results_dir, "rc")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (one VM boot for all)")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    parser.add_argument("--build-only", action="store_true", help="build the image and exit")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the image first")
    parser.add_argument("--timeout", type=int, default=RUN_TIMEOUT,
                        help="seconds before QEMU is killed (default %(default)s)")
    parser.add_argument("--results", help="directory for console.log and rc files "
                        "(default: a new temporary directory)")
    parser.add_argument("--append", default="",
                        help="extra kernel command line (e.g. 'loglevel=7 "
                        "systemd.show_status=true' to debug the boot)")
    parser.add_argument("--kernel", choices=KERNELS, default="default",
                        help="guest kernel: the image's own, or 'old' (an older "
                        "suite's kernel, see add-kernel.sh)")
    parser.add_argument("--cpus", type=int, default=2,
                        help="virtual CPUs of the guest (default %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="do not echo the console (it is still logged)")
    args = parser.parse_args(argv)

    if args.list:
        print("\n".join(scenarios()))
        return 0
    if not args.scenarios and not args.build_only:
        parser.error("name at least one scenario (see --list), or --build-only")
    try:
        check_scenarios(args.scenarios)
        started = time.monotonic()
        image = ensure_image(rebuild=args.rebuild, quiet=args.quiet)
        image = ensure_kernel_image(image, args.kernel, quiet=args.quiet)
        log("image %s ready (%.1f s)" % (image, time.monotonic() - started))
        if args.build_only:
            return 0
        result = run_scenarios(args.scenarios, image=image, results_dir=args.results,
                               timeout=args.timeout, echo=not args.quiet,
                               extra_append=args.append, cpus=args.cpus)
    except (Unavailable, ValueError) as exc:
        log(str(exc))
        return 2
    return result.rc


if __name__ == "__main__":
    sys.exit(main())
