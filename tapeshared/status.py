"""`tapeshared status`: the daemon's health and each export as the target shows it."""

import errno
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from tapeshared import app
from tapeshared import config as config_module
from tapeshared.core.errors import ConfigError, TapesharedError
from tapeshared.core.model import Config, GlobalConfig, device_record
from tapeshared.daemon.statefile import (
    StateError,
    exports_list,
    process_start,
    read_state,
    state_path,
)
from tapeshared.firewall.spec import spec_for
from tapeshared.host import addrwatch, lioparts
from tapeshared.reconcile import LunView

# LSB init script status codes, plus one from LSB's application range (150-199).
OK = 0
DEAD = 1
NOT_RUNNING = 3
UNKNOWN = 4
BROKEN = 150
# The shape of `status --json` (README, "tapeshared status"). 2: backend (with
# LIO's kernel parts), portals, daemon.last_pass_time.
SCHEMA = 2
EPILOG = """status exit codes (LSB):
  0   the daemon runs, its state is fresh and every export is live and verified
  1   the daemon is dead: its state file says running, but its process is gone
      (or the pid now belongs to another process)
  3   the daemon is not running (what the target exports is still shown)
  4   status unknown: the configuration or the state file is unreadable, the
      daemon stopped updating its state, or the exports cannot be observed
  150 the daemon runs but an export is broken (not live, not verified, or the
      last apply failed), or a firewall family is not in step; a target that
      is down (tgtd stopped) counts here, and so does a missing LIO kernel
      part (module, configfs, fabric) or a configured portal with no address
"""


def pid_alive(pid: int, start: Optional[int]) -> bool:
    """True if pid runs and is the process that wrote the state: same start time,
    so a pid reused by another process is not taken for the daemon."""
    if pid <= 0:
        return False
    actual = process_start(pid)
    if actual is None:
        if os.path.isdir("/proc/self"):
            return False  # /proc works and has no such process
        try:  # no /proc at all: the pid is all there is to go by
            os.kill(pid, 0)
        except OSError as exc:
            return exc.errno == errno.EPERM
        return True
    return start is not None and actual == start


def daemon_health(state: Optional[Dict[str, Any]], now: float) -> Tuple[str, int]:
    """('running' | 'stale' | 'dead' | 'not running', LSB code) from the state file."""
    if state is None or not state.get("running"):
        return "not running", NOT_RUNNING
    if not pid_alive(state["pid"], state.get("pid_start")):
        return "dead (it did not stop cleanly; the state file is left over)", DEAD
    limit = 2 * float(state.get("resync_interval") or 60) + 10
    if now - float(state.get("mtime") or 0) > limit:
        return "stale", UNKNOWN
    return "running", OK


def _unknown_exports(cfg: Config, why: str) -> List[Dict[str, Any]]:
    """The configured exports, listed when nothing can be observed: all unknown."""
    return [{
        "name": export.name, "iqn": export.iqn, "initiators": list(export.initiators),
        "exported": None, "verified": None, "problems": [why], "sessions": [],
        "luns": [{"lun": lun.lun, "match": str(lun.match), "status": "unknown",
                  "hctl": None, "note": "", "nodes": {}, "device": None, "reset": None}
                 for lun in export.luns],
    } for export in cfg.exports]


def _target_view(cfg: Config) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Each export as discovery and the running target show it now (read-only)."""
    try:
        reconciler = app.reconciler(cfg)
        report = reconciler.observe()
    except ImportError as exc:
        why = "cannot observe the devices: %s is not installed" % (
            getattr(exc, "name", None) or exc)
        return _unknown_exports(cfg, why), [why]
    except Exception as exc:  # noqa: BLE001 - status answers with an LSB code, always
        why = "cannot observe the devices or the target: %s" % exc
        return _unknown_exports(cfg, why), [why]
    exports = exports_list(report.desired)
    for export, view in zip(exports, reconciler.views(report)):
        export["exported"] = view.exported
        export["verified"] = view.verified
        export["problems"] = list(view.problems)
        export["sessions"] = [{"initiator": s.initiator, "addresses": list(s.addresses)}
                              for s in view.sessions]
        live = {lun.lun: lun for lun in view.luns}
        for lun in export["luns"]:
            matched = [d for d in report.devices if str(d.hctl) == lun["hctl"]]
            lun["device"] = device_record(matched[0]) if matched else None
            lun["reset"] = _reset_record(live.get(lun["lun"]))
    return exports, []


# who learns of a reset, by LiveLun.reset_scope
TOLD = {"drive": "the first initiator command to reach the drive",
        "target": "every initiator of the LUN"}


def _reset_record(view: Optional[LunView]) -> Optional[Dict[str, Any]]:
    """The last re-point of a LUN's device (its reset before mapping), or None."""
    if view is None or view.reset_at is None:
        return None
    return {"time": view.reset_at, "scope": view.reset_scope,
            "told": TOLD.get(view.reset_scope, view.reset_scope or "unknown")}


def _firewall_view(cfg: Config) -> List[Dict[str, Any]]:
    """Per firewall family (iptables, ip6tables, nft): in step, out of step or
    failing, read now; [] when no firewall is configured."""
    reconciler = app.reconciler(cfg)
    fw = reconciler.firewall
    if fw is None:
        return []
    try:
        spec = spec_for(cfg, tuple(reconciler.portals()) if cfg.globals.portal else ())
        rows = fw.family_states(fw.observe(spec), spec)
    except (TapesharedError, OSError, ValueError) as exc:
        return [{"family": fw.name, "state": "failing", "detail": str(exc)}]
    return [{"family": label, "state": state, "detail": detail}
            for label, state, detail in rows]


def _backend_view(cfg: Config) -> Dict[str, Any]:
    """The backend, and for LIO its kernel parts (read-only): a missing one is
    named with what to do."""
    view: Dict[str, Any] = {"name": cfg.globals.backend}
    if cfg.globals.backend == "lio":
        view["parts"] = [{"name": part.name, "ok": part.ok, "detail": part.detail,
                          "hint": part.hint} for part in lioparts.check(cfg.globals.lio_root)]
    return view


def _portal_view(cfg: Config) -> Dict[str, Any]:
    """The configured portal and the addresses it has now ("" = all addresses)."""
    portal = cfg.globals.portal
    if not portal:
        return {"configured": "", "addresses": [], "problem": None}
    try:
        addresses = addrwatch.resolve_portal(portal)
    except (OSError, ValueError) as exc:
        return {"configured": portal, "addresses": [], "problem": "cannot resolve: %s" % exc}
    return {"configured": portal, "addresses": addresses, "problem": None if addresses else
            "%s has no address now (the export listens once it gets one)" % portal}


def _runtime_problems(doc: Dict[str, Any]) -> List[str]:
    """What keeps the daemon from exporting, found outside the exports."""
    problems = []
    missing = [p for p in doc.get("backend", {}).get("parts", []) if not p["ok"]]
    if missing:
        problems.append(lioparts.problem([lioparts.Part(**p) for p in missing]))
    if (doc.get("portals") or {}).get("problem"):
        problems.append("portal: %s" % doc["portals"]["problem"])
    return problems


def collect(config_path: str) -> Tuple[int, Dict[str, Any]]:
    """Exit code and the status document (also printed by --json)."""
    doc: Dict[str, Any] = {"schema": SCHEMA, "config": config_path, "problems": []}
    cfg = None
    try:
        cfg = config_module.load(config_path)
        settings = cfg.globals
    except ConfigError as exc:
        doc["problems"].append("configuration: %s" % exc)
        settings = GlobalConfig()
    path = state_path(settings.state_dir)
    try:
        state = read_state(path)
    except StateError as exc:
        doc["problems"].append("state: %s" % exc)
        doc["daemon"] = {"health": "unknown", "state_file": path}
        return UNKNOWN, doc
    health, code = daemon_health(state, time.time())
    doc["daemon"] = {"health": health, "state_file": path}
    if state is not None:
        for key in ("pid", "started", "last_change", "last_error", "last_pass"):
            doc["daemon"][key] = state.get(key)
        doc["daemon"]["state_age"] = round(time.time() - state["mtime"], 1)
        doc["daemon"]["last_pass_time"] = state.get("pass_time")
    exports: List[Dict[str, Any]] = []
    runtime: List[str] = []
    if cfg is not None:
        exports, problems = _target_view(cfg)
        doc["problems"].extend(problems)
        doc["firewall"] = _firewall_view(cfg)
        doc["backend"], doc["portals"] = _backend_view(cfg), _portal_view(cfg)
        runtime = _runtime_problems(doc)
        doc["problems"].extend(runtime)
    doc["exports"] = exports
    if cfg is None:
        code = UNKNOWN  # without the configuration the state file may be elsewhere
    elif code == OK:
        failed = (state or {}).get("last_pass") or {}
        if any(e["verified"] is None for e in exports):
            code = UNKNOWN
        elif failed.get("error") or runtime or any(not e["verified"] for e in exports) \
                or any(f["state"] != "in step" for f in doc.get("firewall", [])):
            code = BROKEN
    doc["exit_code"] = code
    return code, doc


def _when(stamp: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "never"


def render(doc: Dict[str, Any]) -> str:
    """The status document as text a person can read."""
    daemon = doc["daemon"]
    lines = ["daemon: %s" % daemon["health"]]
    if daemon.get("pid"):
        lines[0] += " (pid %s, started %s, state written %ss ago)" % (
            daemon["pid"], _when(daemon.get("started")), daemon.get("state_age"))
    change = daemon.get("last_change") or {}
    error = daemon.get("last_error") or {}
    lines.append("last change: %s%s" % (_when(change.get("time")), (": " + "; ".join(
        change.get("actions", []))) if change else ""))
    lines.append("last error: %s%s" % (_when(error.get("time")),
                                       (": " + error.get("error", "")) if error else ""))
    for export in doc.get("exports", []):
        state = ("unknown" if export["exported"] is None else
                 "exported, verified" if export["verified"] else
                 "exported, NOT verified" if export["exported"] else "NOT exported")
        lines.append("export %s (%s): %s; %d initiator%s connected" % (
            export["name"], export["iqn"], state, len(export["sessions"]),
            "" if len(export["sessions"]) == 1 else "s"))
        for lun in export["luns"]:
            nodes = " ".join(sorted((lun["device"] or {}).get("nodes", {}).values()))
            lines.append("  LUN %d %s: %s at %s %s" % (lun["lun"], lun["match"], lun["status"],
                                                      lun["hctl"] or "-", nodes))
            reset = lun.get("reset")
            lines.append("    last re-point: %s" % (
                "reset at %s, told: %s" % (_when(reset["time"]), reset["told"]) if reset
                else "no reset on record"))
        for session in export["sessions"]:
            lines.append("  initiator %s from %s" % (session["initiator"],
                                                     ", ".join(session["addresses"]) or "?"))
        for problem in export["problems"]:
            lines.append("  problem: %s" % problem)
    if doc.get("backend"):
        lines.append("backend: %s" % doc["backend"]["name"])
    portals = doc.get("portals") or {}
    if portals.get("configured"):
        lines.append("portal %s: %s" % (portals["configured"],
                                         ", ".join(portals["addresses"]) or "no address"))
    lines.append("last pass: %s" % _when(daemon.get("last_pass_time")))
    for family in doc.get("firewall", []):
        lines.append("firewall %s: %s%s" % (family["family"], family["state"], (
            ": " + family["detail"]) if family["detail"] else ""))
    for problem in doc["problems"]:
        lines.append("problem: %s" % problem)
    return "\n".join(lines) + "\n"
