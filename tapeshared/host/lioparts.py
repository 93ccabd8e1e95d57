"""LIO's kernel parts: which are there, and (for the daemon) bringing them up.

A cold boot can start tapeshared before anyone loaded the target modules,
mounted configfs or registered the iSCSI fabric. `check` only reads; it is what
`status` and `doctor` report. `ensure` is the daemon's: it brings up what is
missing on every pass. Each part names what to do when it is missing.
"""

import logging
import os
from typing import Any, Callable, List, NamedTuple, Sequence, Tuple

from tapeshared.core.errors import TapesharedError, TransientError

log = logging.getLogger(__name__)

# target_core_pscsi: the pass-through backstore; iscsi_target_mod: the fabric
MODULES = ("target_core_mod", "target_core_pscsi", "iscsi_target_mod")


class Part(NamedTuple):
    name: str      # "module target_core_pscsi", "configfs", "<lio_root>", "<lio_root>/iscsi"
    ok: bool
    detail: str    # what was seen
    hint: str      # what to do when not ok ("" when ok)


def module_loaded(name: str, sys_module: str = "/sys/module") -> bool:
    """Loaded or built in: both show a /sys/module/NAME directory."""
    return os.path.isdir(os.path.join(sys_module, name))


def configfs_mounted(lio_root: str, proc_mounts: str = "/proc/mounts") -> bool:
    """A configfs mount that contains lio_root."""
    try:
        with open(proc_mounts) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return False
    root = os.path.abspath(lio_root)
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "configfs":
            mountpoint = fields[1].replace("\\040", " ")
            if root == mountpoint or root.startswith(mountpoint.rstrip("/") + "/"):
                return True
    return False


def check(lio_root: str, sys_module: str = "/sys/module",
          proc_mounts: str = "/proc/mounts") -> List[Part]:
    """Every part LIO needs, in the order they must come up."""
    parts = []
    for module in MODULES:
        ok = module_loaded(module, sys_module)
        parts.append(Part("module " + module, ok, "loaded" if ok else "not loaded",
                          "" if ok else "modprobe %s (tapeshared ships a modules-load.d "
                          "file that loads it at boot)" % module))
    mounted = configfs_mounted(lio_root, proc_mounts)
    parts.append(Part("configfs", mounted, "mounted" if mounted else "not mounted",
                      "" if mounted else "mount -t configfs none /sys/kernel/config"))
    exists = os.path.isdir(lio_root)
    parts.append(Part(lio_root, exists, "present" if exists else "absent",
                      "" if exists else "load target_core_mod (it creates %s)" % lio_root))
    fabric = os.path.join(lio_root, "iscsi")
    registered = os.path.isdir(fabric)
    parts.append(Part(fabric, registered, "present" if registered else "absent",
                      "" if registered else "mkdir %s (registers the iSCSI fabric; "
                      "needs iscsi_target_mod)" % fabric))
    return parts


def missing(lio_root: str, sys_module: str = "/sys/module",
            proc_mounts: str = "/proc/mounts") -> List[Part]:
    """The parts that are not there, in the order they must come up."""
    return [part for part in check(lio_root, sys_module, proc_mounts) if not part.ok]


def problem(parts: List[Part]) -> str:
    """One line for `status` and the daemon's error: each missing part and what to do."""
    return "LIO kernel part%s missing: %s" % ("" if len(parts) == 1 else "s", "; ".join(
        "%s %s (%s)" % (part.name, part.detail, part.hint) for part in parts))


def ensure(lio_root: str, run: Callable[[Sequence[str]], object],
           sys_module: str = "/sys/module", proc_mounts: str = "/proc/mounts",
           mkdir: Callable[[str], None] = os.mkdir) -> Tuple[List[str], List[Part]]:
    """Bring up what is missing: modprobe each module, mount configfs, register
    the fabric. Returns (what was done, what is still missing).

    A cold boot may start the daemon before the modules load; each pass calls
    this so a part that cannot come up now is retried, and one that appears
    (loaded by hand, late udev) is used at once. `run` takes an argv list and
    raises on failure (the command runner); a step that fails is left for the
    check that follows, which names it.
    """
    done = []  # type: List[str]
    parts = missing(lio_root, sys_module, proc_mounts)
    for part in parts:
        if part.name.startswith("module "):
            module = part.name.split(" ", 1)[1]
            if _tried(run, ["modprobe", module], part.name):
                done.append("loaded module %s" % module)
    if parts and not configfs_mounted(lio_root, proc_mounts):
        point = _config_mountpoint(lio_root)
        if _tried(run, ["mount", "-t", "configfs", "configfs", point], "configfs"):
            done.append("mounted configfs on %s" % point)
    fabric = os.path.join(lio_root, "iscsi")
    if os.path.isdir(lio_root) and not os.path.isdir(fabric):
        if _tried(mkdir, fabric, fabric):
            done.append("registered the iSCSI fabric (%s)" % fabric)
    for action in done:
        log.info("LIO kernel parts: %s", action)
    return done, (missing(lio_root, sys_module, proc_mounts) if parts else [])


def _config_mountpoint(lio_root: str) -> str:
    """configfs is mounted on the parent of the target directory (/sys/kernel/config)."""
    return os.path.dirname(os.path.abspath(lio_root).rstrip("/")) or "/"


def _tried(step: Callable[[Any], object], arg: Any, what: str) -> bool:
    """Run one bring-up step; a failure is logged at DEBUG (the check names it)."""
    try:
        step(arg)
    except (OSError, TapesharedError) as exc:
        log.debug("LIO kernel parts: bringing up %s failed: %s", what, exc)
        return False
    return True


class PartsMissing(TransientError):
    """A LIO kernel part is still missing after the bring-up: retried by the daemon."""


class LioParts:
    """LIO's parts for the reconciler: `ensure` on each apply, `missing` read-only."""

    def __init__(self, lio_root: str, run: Callable[[Sequence[str]], object],
                 sys_module: str = "/sys/module", proc_mounts: str = "/proc/mounts") -> None:
        self.lio_root = lio_root
        self.run = run
        self.sys_module = sys_module
        self.proc_mounts = proc_mounts

    def missing(self) -> List[Part]:
        return missing(self.lio_root, self.sys_module, self.proc_mounts)

    def ensure(self) -> List[str]:
        """What was brought up; raises PartsMissing naming what is still missing."""
        done, still = ensure(self.lio_root, self.run, self.sys_module, self.proc_mounts)
        if still:
            raise PartsMissing(problem(still))
        return done
