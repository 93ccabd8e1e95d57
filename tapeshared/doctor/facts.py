"""doctor's facts: read the host once (files, commands, udev), never change it."""

import glob
import importlib
import os
import shutil
import sys
import tempfile
from typing import List, Optional, Tuple

from tapeshared import config as config_module
from tapeshared.backends.iet import conf as ietconf
from tapeshared.core.errors import TapesharedError
from tapeshared.core.model import Config, Device
from tapeshared.doctor.checks import FAIL, WARN, Facts
from tapeshared.host.runner import Runner
from tapeshared.migrate import ietd, targetcli, tgt
from tapeshared.migrate.model import OldSetup
from tapeshared.migrate.render import find

# configurations another tool restores or reads at boot
SAVECONFIGS = ("target/saveconfig.json", "rtslib-fb-target/saveconfig.json")
TGT_FILES = ("tgt/targets.conf", "tgt/conf.d/*.conf")
IETD_FILES = ("ietd.conf", "iet/ietd.conf")
UNITS = ("/etc/systemd/system/tapeshared.service", "/lib/systemd/system/tapeshared.service",
         "/usr/lib/systemd/system/tapeshared.service", "/etc/init.d/tapeshared")


def _version(name: str) -> Optional[str]:
    try:
        module = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    return str(getattr(module, "__version__", "") or "present")


def claims(setup: OldSetup, cfg: Config, devices: List[Device]) -> List[str]:
    """What in another tool's configuration names our IQNs or our devices."""
    ours = set(e.iqn for e in cfg.exports)
    matches = [lun.match for e in cfg.exports for lun in e.luns]
    found = []
    for target in setup.targets:
        if target.iqn in ours:
            found.append("target %s is ours (%s)" % (target.iqn, target.where))
        for lun in target.luns:
            device = find(lun, devices, {})
            if device is not None and any(m.matches(device) for m in matches):
                found.append("LUN %d of %s is our device %s (%s)" % (
                    lun.lun, target.iqn, device.identity, lun.where))
    return found


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 22)
    except OSError:
        return None


def conflicts(cfg: Config, devices: List[Device], etc: str,
              restore_enabled: bool) -> List[Tuple[str, str, str]]:
    """(file, claim, level) for every other target configuration that matters."""
    found = []
    candidates = [(os.path.join(etc, rel), "targetcli") for rel in SAVECONFIGS]
    candidates += [(p, "tgt") for rel in TGT_FILES for p in sorted(glob.glob(
        os.path.join(etc, rel)))]
    if cfg.globals.backend == "iet":
        candidates.append((cfg.globals.ietd_conf, "ietd"))
    else:
        candidates += [(os.path.join(etc, rel), "ietd") for rel in IETD_FILES]
    for path, kind in candidates:
        text = _read(path)
        if text is None:
            continue
        if kind == "ietd":  # our own block in the managed file is not a conflict
            before, _block, after = ietconf.split(text, path)
            text = ietconf.outside(before, after)
        try:
            setup = (ietd.parse if kind == "ietd" else targetcli.parse if
                     kind == "targetcli" else tgt.parse_conf)(text, path)
        except TapesharedError as exc:
            found.append((path, "cannot be parsed: %s" % exc, WARN))
            continue
        found += [(path, claim, FAIL) for claim in claims(setup, cfg, devices)]
        if kind == "targetcli" and setup.targets and restore_enabled:
            found.append((path, "restored at boot by target.service (%d target(s))"
                          % len(setup.targets), WARN))
    return found


def _state_dir_problem(path: str) -> str:
    probe = path
    while not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return "no existing parent directory"
        probe = parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".doctor-"):
            pass
    except OSError as exc:
        return "cannot create a file in %s: %s" % (probe, exc.strerror)
    return ""


def _answer(runner: Runner, argv: List[str]) -> str:
    """"" if the command succeeds, else why not."""
    try:
        result = runner.run(argv, check=False, quiet=True)
    except TapesharedError as exc:
        return str(exc)
    if result.rc == 0:
        return ""
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
    return "%s: exit status %d%s" % (argv[0], result.rc, (": " + tail[0]) if tail else "")


def _systemctl(runner: Runner, verb: str, unit: str) -> str:
    try:
        return runner.run(["systemctl", verb, unit], check=False, quiet=True).stdout.strip()
    except TapesharedError:
        return ""


def gather(config_path: str, etc: str = "/etc", runner: Optional[Runner] = None) -> Facts:
    """Everything the checks need, from this host."""
    runner = runner or Runner(timeout=10)
    facts = Facts(python=tuple(sys.version_info[:3]))  # type: ignore[arg-type]
    for name in ("pyudev", "pyroute2", "tenacity", "systemd"):
        facts.modules[name] = _version(name)
    try:
        facts.config = config_module.load(config_path)
    except TapesharedError as exc:
        facts.config_error = str(exc)
    try:
        from tapeshared.host import udev
        facts.devices = udev.observe()
    except Exception as exc:  # noqa: BLE001 - any failure to enumerate is the finding
        facts.udev_error = str(exc) or type(exc).__name__
    for tool in ("ietadm", "ietd", "tgtadm", "iptables", "iptables-restore", "ip6tables",
                 "ip6tables-restore", "nft", "systemctl"):
        facts.tools[tool] = shutil.which(tool)
    cfg = facts.config
    if cfg is not None:
        _backend_facts(facts, cfg, runner)
        _firewall_facts(facts, cfg, runner)
        restore = _systemctl(runner, "is-enabled", "target.service") == "enabled"
        facts.conflicts = conflicts(cfg, facts.devices, etc, restore)
        if cfg.globals.portal:
            try:
                from tapeshared.host import addrwatch
                facts.portal_addresses = addrwatch.resolve_portal(cfg.globals.portal)
            except Exception as exc:  # noqa: BLE001 - netlink or a bad name
                facts.portal_error = str(exc)
        facts.state_dir_problem = _state_dir_problem(cfg.globals.state_dir)
    installed = next((u for u in UNITS if os.path.exists(u)), "")
    facts.unit["installed"] = installed
    if installed.endswith(".service"):
        facts.unit["enabled"] = _systemctl(runner, "is-enabled", "tapeshared.service")
    elif installed:
        rc_links = glob.glob("/etc/rc[2-5].d/S*tapeshared")
        facts.unit["enabled"] = "on" if rc_links else ""
    return facts


def _backend_facts(facts: Facts, cfg: Config, runner: Runner) -> None:
    g = cfg.globals
    if g.backend == "lio":
        from tapeshared.host import lioparts
        facts.lio_parts = [tuple(p) for p in lioparts.check(g.lio_root)]  # type: ignore
    elif g.backend == "iet":
        facts.paths[g.iet_volume] = os.path.exists(g.iet_volume)
        facts.tools["ietadm"] = shutil.which(g.ietadm[0]) if g.ietadm else None
    else:
        facts.tools["tgtadm"] = shutil.which(g.tgtadm[0]) if g.tgtadm else None
        if facts.tools["tgtadm"]:
            facts.answers["tgtd"] = _answer(runner, list(g.tgtadm) + [
                "--lld", "iscsi", "--mode", "target", "--op", "show"])


def _firewall_facts(facts: Facts, cfg: Config, runner: Runner) -> None:
    g = cfg.globals
    if g.firewall != "iptables" or not facts.tools.get("iptables"):
        return
    facts.answers["parent"] = _answer(runner, ["iptables", "-w", "-S", g.firewall_parent])
    if facts.tools.get("iptables-restore"):
        facts.wait_flag = _answer(runner, ["iptables-restore", "-w", "--test"]) == ""
