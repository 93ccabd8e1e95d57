"""LIO's kernel parts: which are there, and (for the daemon) bringing them up.

A cold boot can start tapeshared before anyone loaded the target modules,
mounted configfs or registered the iSCSI fabric. `check` only reads; it is what
`status` and `doctor` report. Each part names what to do when it is missing.
"""

import os
from typing import List, NamedTuple

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
