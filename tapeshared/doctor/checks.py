"""doctor's checks: pure functions from gathered facts to ok/warn/fail lines.

Each check takes the Facts and returns Checks; the gathering (files, commands,
udev) is in facts.py, so a unit test can make every check fail.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from tapeshared.core.model import Config, Device

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the verdict, what to do."""

    name: str
    level: str
    detail: str
    fix: str = ""


@dataclass
class Facts:
    """Everything the checks look at, gathered once."""

    python: Tuple[int, int, int] = (3, 6, 0)
    modules: Dict[str, Optional[str]] = field(default_factory=dict)  # name -> version|None
    config: Optional[Config] = None
    config_error: str = ""
    udev_error: str = ""
    devices: List[Device] = field(default_factory=list)
    lio_parts: List[Tuple[str, bool, str, str]] = field(default_factory=list)
    tools: Dict[str, Optional[str]] = field(default_factory=dict)  # name -> path|None
    paths: Dict[str, bool] = field(default_factory=dict)  # path -> exists
    answers: Dict[str, str] = field(default_factory=dict)  # probe -> "" ok | why not
    wait_flag: Optional[bool] = None  # iptables-restore -w; None: not asked
    conflicts: List[Tuple[str, str, str]] = field(default_factory=list)  # (file, claim, level)
    portal_addresses: Optional[List[str]] = None
    portal_error: str = ""
    state_dir_problem: str = ""
    unit: Dict[str, str] = field(default_factory=dict)  # "installed"/"enabled" -> answer


def python_version(facts: Facts) -> List[Check]:
    shown = "%d.%d.%d" % facts.python
    if facts.python < (3, 6):
        return [Check("python", FAIL, shown, "install Python 3.6 or later")]
    return [Check("python", OK, shown)]


REQUIRED = ("pyudev", "pyroute2")
OPTIONAL = {"tenacity": "", "systemd": "journal logging falls back to syslog"}


def dependencies(facts: Facts) -> List[Check]:
    out = []
    for name in REQUIRED + tuple(OPTIONAL):
        version = facts.modules.get(name)
        if version is not None:
            out.append(Check("module " + name, OK, version or "present"))
        elif name in REQUIRED:
            out.append(Check("module " + name, FAIL, "cannot be imported",
                             "install python3-%s (or the package's vendored copy)" % name))
        elif OPTIONAL[name]:
            out.append(Check("module " + name, WARN, "cannot be imported", OPTIONAL[name]))
    return out


def configuration(facts: Facts) -> List[Check]:
    if facts.config is None:
        return [Check("configuration", FAIL, facts.config_error or "not read",
                      "fix the file and line named; `tapeshared check-config`")]
    cfg = facts.config
    return [Check("configuration", OK, "%d export(s), backend %s" % (
        len(cfg.exports), cfg.globals.backend))]


def udev(facts: Facts) -> List[Check]:
    if facts.udev_error:
        return [Check("udev", FAIL, "cannot enumerate: %s" % facts.udev_error,
                      "is /sys mounted and udev running? (`udevadm info -e`)")]
    return [Check("udev", OK, "%d SCSI device(s) seen" % len(facts.devices))]


def devices(facts: Facts) -> List[Check]:
    if facts.config is None or facts.udev_error:
        return []
    out = []
    for export in facts.config.exports:
        for lun in export.luns:
            name = "device %s LUN %d" % (export.name, lun.lun)
            found = [d for d in facts.devices if lun.match.matches(d)]
            if not found:
                out.append(Check(name, WARN, "%s not present now" % lun.match,
                                 "connect or power it; `tapeshared scan` lists what is seen"))
            elif found[0].problems:
                out.append(Check(name, WARN, "%s at %s: %s" % (
                    lun.match, found[0].hctl, "; ".join(found[0].problems)),
                    "see `tapeshared scan`"))
            else:
                out.append(Check(name, OK, "%s at %s" % (lun.match, found[0].hctl)))
    return out


def _tool(facts: Facts, name: str, fix: str) -> Check:
    where = facts.tools.get(name)
    return Check("tool " + name, OK, where) if where else Check(
        "tool " + name, FAIL, "not found", fix)


def backend(facts: Facts) -> List[Check]:
    if facts.config is None:
        return []
    kind = facts.config.globals.backend
    if kind == "lio":
        return [Check("lio " + name, OK if ok else FAIL, detail, hint)
                for name, ok, detail, hint in facts.lio_parts]
    if kind == "iet":
        out = [_tool(facts, "ietadm", "install IET (iscsitarget) or set ietadm =")]
        volume = facts.config.globals.iet_volume
        out.append(Check("iet " + volume, OK, "present") if facts.paths.get(volume)
                   else Check("iet " + volume, FAIL, "absent", "load the iscsi_trgt "
                              "module and start ietd"))
        return out
    out = [_tool(facts, "tgtadm", "install tgt (scsi-target-utils on EL) or set tgtadm =")]
    why = facts.answers.get("tgtd")
    if why is not None:
        out.append(Check("tgtd answers", FAIL, why, "systemctl start tgtd (tgt.service "
                         "on Debian)") if why else Check("tgtd answers", OK, "yes"))
    return out


def firewall(facts: Facts) -> List[Check]:
    if facts.config is None or facts.config.globals.firewall == "none":
        return [Check("firewall", OK, "not managed (firewall = none)")]
    g = facts.config.globals
    if g.firewall == "nftables":
        return [_tool(facts, "nft", "install nftables")]
    out = [_tool(facts, name, "install iptables") for name in (
        "iptables", "iptables-restore", "ip6tables", "ip6tables-restore")]
    why = facts.answers.get("parent")
    if why is not None:
        out.append(Check("firewall parent chain", OK, "%s exists" % g.firewall_parent)
                   if not why else Check("firewall parent chain", FAIL, why,
                                         "create chain %s or set firewall_parent ="
                                         % g.firewall_parent))
    if facts.wait_flag is not None:
        out.append(Check("iptables-restore -w", OK, "supported") if facts.wait_flag else
                   Check("iptables-restore -w", WARN, "not supported by this build",
                         "works without it; a concurrent iptables run may make one "
                         "apply fail and be retried"))
    return out


def conflicts(facts: Facts) -> List[Check]:
    if not facts.conflicts:
        return [Check("other target configuration", OK, "none claims our targets")]
    return [Check("other target configuration", level, "%s: %s" % (path, claim),
                  "remove it there (`tapeshared import` prints what to remove)"
                  if level == FAIL else "make sure it is not restored at boot")
            for path, claim, level in facts.conflicts]


def portal(facts: Facts) -> List[Check]:
    if facts.config is None or not facts.config.globals.portal:
        return [Check("portal", OK, "all local addresses")]
    name = facts.config.globals.portal
    if facts.portal_error:
        return [Check("portal", FAIL, "%s: %s" % (name, facts.portal_error),
                      "fix portal = in [global]")]
    if not facts.portal_addresses:
        return [Check("portal", WARN, "%s has no address now" % name,
                      "the export waits for it; `ip addr` shows what is assigned")]
    return [Check("portal", OK, "%s: %s" % (name, ", ".join(facts.portal_addresses)))]


def state_dir(facts: Facts) -> List[Check]:
    if facts.config is None:
        return []
    where = facts.config.globals.state_dir
    if facts.state_dir_problem:
        return [Check("state_dir", FAIL, "%s: %s" % (where, facts.state_dir_problem),
                      "run as root; make it writable or set state_dir =")]
    return [Check("state_dir", OK, "%s writable" % where)]


def unit(facts: Facts) -> List[Check]:
    installed, enabled = facts.unit.get("installed", ""), facts.unit.get("enabled", "")
    if not installed:
        return [Check("service", WARN, "no tapeshared unit or init script installed",
                      "install the package (it ships tapeshared.service)")]
    if enabled not in ("enabled", "static", "enabled-runtime", "on"):
        return [Check("service", WARN, "%s is %s" % (installed, enabled or "not enabled"),
                      "systemctl enable --now tapeshared (chkconfig tapeshared on)")]
    return [Check("service", OK, "%s %s" % (installed, enabled))]


ALL = (python_version, dependencies, configuration, udev, devices, backend, firewall,
       conflicts, portal, state_dir, unit)


def run_all(facts: Facts) -> List[Check]:
    """Every check, in the order a person fixes things."""
    found: List[Check] = []
    for check in ALL:
        found += check(facts)
    return found


def exit_code(found: List[Check]) -> int:
    """0 everything ok, 1 a warning, 2 a failure."""
    levels = set(c.level for c in found)
    return 2 if FAIL in levels else 1 if WARN in levels else 0
