"""Command line: scan, check-config, plan, apply (thin; the daemon shares the code)."""

import argparse
import json
import logging
import re
import sys
from typing import Any, Dict, List, Optional

from tapeshared import __version__, app, config
from tapeshared.core.errors import ConfigError, ManagedFileError, TapesharedError
from tapeshared.core.model import Device, device_record

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PENDING = 2
EXIT_USAGE = 64
EXIT_DATA = 65
EXIT_CONFIG = 78

EPILOG = """exit codes:
  0   success (plan: nothing to do)
  1   the apply or a command failed, or the apply lock is held
  2   plan: changes are pending
  64  bad command line
  65  a managed file cannot be parsed safely and was left untouched
  78  configuration error (the message names file, section and key)
run: 0 after SIGTERM/SIGINT; 78 if the configuration is unusable at start;
  1 if another daemon runs on the same state_dir or it cannot be created.
status: LSB codes: 0 running and every export verified, 1 dead (stale state),
  3 not running, 4 status unknown (unreadable or stale state), 150 running but
  an export is broken (see `tapeshared status --help`).
import: 0 everything carried over, 1 something was not (or a file to write
  exists), 78 the old file cannot be read safely (file:line).
doctor: 0 every check ok, 1 a warning, 2 a failure.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(EXIT_USAGE)


def suggested_name(device: Device) -> str:
    """An export name derived from identity (never from H:C:T:L)."""
    key = (device.serial or device.wwn or "unknown").lower()
    return "%s-%s" % (device.kind, re.sub(r"[^a-z0-9.-]+", "-", key).strip("-")[:40])


def suggested_section(device: Device) -> str:
    """A ready-to-paste [export] section for a device."""
    if device.identity is None:
        return "# %s has no usable serial or WWN; it cannot be exported by identity\n" % (
            device.hctl)
    kind, _sep, value = device.identity.partition(":")
    lines = ["[export %s]" % suggested_name(device), "%s = %s" % (kind, value),
             "initiators = 192.0.2.10    ; the initiator addresses allowed"]
    if device.remote:
        lines.insert(1, "; arrived through an iSCSI session (%s): usually our own "
                        "export seen back" % device.transport)
        lines.append("allow_remote = yes")
    return "\n".join(lines) + "\n"


def device_dict(device: Device) -> Dict[str, Any]:
    """A device for --json output: its record plus a ready-to-paste section."""
    record = device_record(device)
    record["suggested_section"] = suggested_section(device)
    return record


def cmd_scan(args: argparse.Namespace) -> int:
    from tapeshared.host import udev
    devices = udev.scan()
    if args.json:
        json.dump({"schema": 1, "devices": [device_dict(d) for d in devices]},
                  sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return EXIT_OK
    if not devices:
        print("no SCSI tape drives or medium changers found")
        return EXIT_OK
    for device in devices:
        nodes = " ".join(n for n in (device.nst, device.st, device.ch, device.sg,
                                     device.bsg) if n)
        print("%s  %-7s %s %s (%s)  %s  %s" % (
            device.hctl, device.kind, device.vendor, device.model, device.rev,
            device.identity or "NO IDENTITY",
            "remote via %s" % device.transport if device.remote
            else "local (%s)" % device.transport))
        if device.wwn and device.serial:
            print("    wwn: %s" % device.wwn)
        print("    nodes: %s" % (nodes or "-"))
        for link in device.by_id:
            print("    by-id: %s" % link)
        for problem in device.problems:
            print("    warning: %s" % problem)
        print("\n" + suggested_section(device))
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    print("%s: OK (%d export%s, backend %s; read %s)" % (
        args.config, len(cfg.exports), "" if len(cfg.exports) == 1 else "s",
        cfg.globals.backend, ", ".join(cfg.sources)))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    reconciler = app.reconciler(cfg)
    report = reconciler.plan()
    for problem in report.desired.problems:
        print("# warning: %s" % problem)
    if report.firewall is not None:
        print("# firewall (%s): %d initiator network(s) to port %d on %s" % (
            cfg.globals.firewall, len(report.firewall.sources), report.firewall.port,
            ", ".join(report.firewall.portals) or "any local address"))
        for action in report.firewall_plan.actions:
            print("firewall: %s" % action)
        for label, why in report.firewall_plan.errors:
            print("# firewall %s: cannot be brought in step now: %s" % (label, why))
    if not reconciler.pending(report):
        print("nothing to do: the target and firewall match the configuration")
        return EXIT_OK
    sys.stdout.write(report.plan.describe(cfg.globals.restart_command))
    return EXIT_PENDING


def cmd_apply(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    report = app.reconciler(cfg).apply()
    for problem in report.desired.problems:
        print("warning: %s" % problem)
    if not report.actions:
        print("nothing to do: the target matches the configuration")
    for action in report.actions:
        print(action)
    # a refused LUN (a squatter, a clone, one drive named twice) is not exported:
    # the rest was applied, but the configuration is not what runs
    if any(target.refused for target in report.desired.targets):
        return EXIT_FAILED
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from tapeshared.daemon import logsetup, sysv
    from tapeshared.host.lock import RunLock
    cfg = config.load(args.config)  # a bad config fails here, before detaching
    run_lock = RunLock(cfg.globals.state_dir).acquire()  # and so does a second daemon
    ready_fd = sysv.detach() if args.detach else -1
    run_lock.record()  # the daemon's own pid, after detaching
    logsetup.configure(args.log_target, (logging.INFO, logging.INFO, logging.DEBUG)[
        min(args.verbose, 2)])
    if args.pidfile:
        sysv.write_pidfile(args.pidfile)
    try:
        return app.daemon(args.config, ready_fd=ready_fd, run_lock=run_lock).run()
    finally:
        run_lock.release()
        if args.pidfile:
            sysv.remove_pidfile(args.pidfile)


def cmd_status(args: argparse.Namespace) -> int:
    from tapeshared import status
    code, doc = status.collect(args.config)
    if args.json:
        json.dump(doc, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(status.render(doc))
    return code


def cmd_import(args: argparse.Namespace) -> int:
    from tapeshared.host import udev
    from tapeshared.migrate import command
    kind, path = next((k, getattr(args, "from_" + k)) for k in ("ietd", "targetcli", "tgt")
                      if getattr(args, "from_" + k))
    return command.run(kind, path, args.config, args.write, args.initiators_allow,
                       udev.observe())


def cmd_doctor(args: argparse.Namespace) -> int:
    from tapeshared import doctor
    return doctor.main(args.config, args.json)


def parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render --help in the README)."""
    top = _Parser(prog="tapeshared", epilog=EPILOG,
                  formatter_class=argparse.RawDescriptionHelpFormatter,
                  description="Keep SCSI tape drives and changers exported over iSCSI, "
                              "found by serial/WWN whatever their SCSI address.")
    top.add_argument("--version", action="version", version="tapeshared " + __version__)
    top.add_argument("-c", "--config", default=config.DEFAULT_PATH,
                     help="main config file; conf.d/*.conf beside it are read too "
                          "(default %(default)s)")
    top.add_argument("-v", "--verbose", action="count", default=0,
                     help="more log output (repeat for debug)")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    scan = sub.add_parser("scan", help="list tapes and changers with their identity")
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    scan.set_defaults(func=cmd_scan)
    sub.add_parser("check-config", help="validate the configuration and exit"
                   ).set_defaults(func=cmd_check_config)
    sub.add_parser("plan", help="show the diff and commands apply would run "
                                "(exit 2 if changes are pending)").set_defaults(func=cmd_plan)
    sub.add_parser("apply", help="make the target match the configuration once"
                   ).set_defaults(func=cmd_apply)
    run = sub.add_parser("run", help="run the daemon: follow udev events, keep the "
                                     "exports converged (systemd Type=notify)")
    run.add_argument("--log-target", choices=("auto", "journal", "syslog", "stderr"),
                     default="auto", help="where to log (default %(default)s: the journal "
                     "under systemd, stderr on a terminal, else syslog)")
    run.add_argument("--pidfile", help="write the daemon's pid here (SysV init)")
    run.add_argument("--detach", action="store_true",
                     help="fork into the background; return once the first reconcile "
                          "is done (SysV init)")
    run.set_defaults(func=cmd_run)
    from tapeshared.status import EPILOG as STATUS_EPILOG
    status = sub.add_parser("status", epilog=STATUS_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            help="show the daemon's health and each export (LSB exit "
                                 "codes); works read-only and without the daemon")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)
    imp = sub.add_parser("import", help="print (or --write) the tapeshared configuration "
                         "equivalent to an IET, targetcli or tgt setup, each device "
                         "named by serial/WWN (exit 1 if something was not carried over)")
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-ietd", metavar="FILE", help="an ietd.conf")
    source.add_argument("--from-targetcli", metavar="FILE", help="a saveconfig.json")
    source.add_argument("--from-tgt", metavar="FILE",
                        help="a targets.conf, or saved `tgtadm --op show` output")
    imp.add_argument("--initiators-allow", metavar="FILE",
                     help="IET's initiators.allow (with --from-ietd)")
    imp.add_argument("--write", action="store_true",
                     help="write conf.d/imported-SOURCE.conf and the secret files "
                          "(mode 0600) beside the config; never replaces a file")
    imp.set_defaults(func=cmd_import)
    from tapeshared.doctor import EPILOG as DOCTOR_EPILOG
    doc = sub.add_parser("doctor", epilog=DOCTOR_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         help="check whether tapeshared can work on this host "
                              "(exit 0 ok, 1 a warning, 2 a failure)")
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    doc.set_defaults(func=cmd_doctor)
    return top


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the tapeshared command."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[
        min(args.verbose, 2)], format="tapeshared: %(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except ConfigError as exc:
        sys.stderr.write("tapeshared: configuration error: %s\n" % exc)
        return EXIT_CONFIG
    except ManagedFileError as exc:
        sys.stderr.write("tapeshared: refused: %s\n" % exc)
        return EXIT_DATA
    except TapesharedError as exc:
        sys.stderr.write("tapeshared: failed: %s\n" % exc)
        return EXIT_FAILED
