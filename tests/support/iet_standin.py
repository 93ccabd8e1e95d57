#!/usr/bin/env python3
"""A stand-in for IET (ietd + ietadm), whose kernel module cannot run here.

It follows IET's documented grammar and behaviour (see the README's testing
section): ietd.conf is read with case-insensitive keys, `#` comments and unknown
keys ignored; `Target` starts a stanza; `Lun N H=,C=,I=,L=,Type=rawio` needs the
SCSI device to exist, else it logs "Can't create a logical unit" and the target
runs on without that LUN (IET's silent failure); Lun args over 2048 characters
or a LUN above 0x3fff are refused the same way. A restart ends every session.
rawio passes each command to the drive and adds no unit attention of its own
(a restart or a new LUN tells initiators nothing; only the drive's own sense
reaches them): the stand-in, which carries no SCSI commands, has none either.
ietadm --op new/delete changes one LUN live and keeps sessions.
/proc/net/iet/volume shows each LUN as IET's volume.c prints it, with the
rawio LUN's `path:` the H:C:I:L it opened. `already-running` is an init
script's restart that does nothing (exit 0, "already running").

Layout under --root: etc/ietd.conf, proc/net/iet/volume, proc/net/iet/session,
standin/restarts (a counter), standin/ietadm (a counter), standin/log,
standin/running.conf (the ietd.conf text the last restart loaded),
standin/fail_restarts (optional: how many restarts fail), standin/sysfs
(optional: a directory holding H:C:T:L entries; default: search /sys/devices).
"""

import argparse
import os
import re
import sys

LUN_ARGS = re.compile(r"\AH=(\d+),C=(\d+),I=(\d+),L=(\d+),Type=rawio\Z", re.IGNORECASE)


def path(root, *parts):
    return os.path.join(root, *parts)


def log(root, text):
    with open(path(root, "standin", "log"), "a") as handle:
        handle.write(text + "\n")


def bump(root, name):
    counter = path(root, "standin", name)
    count = int(open(counter).read() or 0) if os.path.exists(counter) else 0
    with open(counter, "w") as handle:
        handle.write(str(count + 1))


def device_exists(root, hctl):
    sysfs = path(root, "standin", "sysfs")
    if os.path.isdir(sysfs):
        return os.path.exists(path(sysfs, hctl))
    for _dirpath, dirnames, _files in os.walk("/sys/devices"):
        if hctl in dirnames:
            return True
    return False


def parse_conf(root, text):
    """[(name, {lun: args})] as ietd would build them."""
    targets = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 1)
        key = words[0].lower()
        value = words[1].strip() if len(words) > 1 else ""
        if key == "target":
            targets.append((value.split()[0], {}))
        elif key == "lun" and targets:
            number, _sep, args = value.partition(" ")
            args = args.strip()
            name = targets[-1][0]
            if not number.isdigit() or int(number) > 0x3FFF or len(args) > 2048:
                log(root, "%s: Can't create a logical unit %s" % (name, number))
                continue
            found = LUN_ARGS.match(args)
            if not found or not device_exists(root, ":".join(found.groups())):
                log(root, "%s: Can't create a logical unit %s (%s)" % (name, number, args))
                continue
            targets[-1][1][int(number)] = args
        # IncomingUser, OutgoingUser, Type, session keys: accepted; unknown: ignored
    return targets


def volume_line(lun, args):
    """One LUN as IET's /proc/net/iet/volume prints it (volume.c: lun, state,
    iotype, iomode, blocks, blocksize, then the iotype's own `path:`); the
    rawio iotype's path is the SCSI address it opened, H:C:I:L."""
    address = ":".join(LUN_ARGS.match(args).groups())
    return "\tlun:%d state:0 iotype:rawio iomode:wt blocks:0 blocksize:512 path:%s" % (
        lun, address)


def args_of(path_field):
    return "H=%s,C=%s,I=%s,L=%s,Type=rawio" % tuple(path_field.split(":"))


def write_volume(root, targets):
    lines = []
    for tid, (name, luns) in enumerate(targets, 1):
        lines.append("tid:%d name:%s" % (tid, name))
        for lun in sorted(luns):
            lines.append(volume_line(lun, luns[lun]))
    os.makedirs(path(root, "proc", "net", "iet"), exist_ok=True)
    tmp = path(root, "proc", "net", "iet", ".volume")
    with open(tmp, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path(root, "proc", "net", "iet", "volume"))


def read_volume(root):
    targets = []
    try:
        text = open(path(root, "proc", "net", "iet", "volume")).read()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith("tid:"):
            fields = dict(f.split(":", 1) for f in line.split())
            targets.append((fields["name"], {}))
        elif line.startswith("\tlun:"):
            fields = dict(f.split(":", 1) for f in line.split())
            targets[-1][1][int(fields["lun"])] = args_of(fields["path"])
    return targets


def write_listener(root, portal):
    """/proc/net/tcp as the kernel shows ietd's listening socket (ietd -a ADDR)."""
    address = bytes(int(part) for part in (portal or "0.0.0.0").split("."))[::-1].hex()
    with open(path(root, "proc", "net", "tcp"), "w") as handle:
        handle.write("  sl  local_address rem_address   st tx_queue rx_queue tr "
                     "tm->when retrnsmt   uid  timeout inode\n")
        handle.write("   0: %s:0CBC 00000000:0000 0A 00000000:00000000 00:00000000 "
                     "00000000     0        0 4242 1 0 100 0 0 10 0\n" % address.upper())


def restart(root, portal=None):
    fail = path(root, "standin", "fail_restarts")
    if os.path.exists(fail):
        left = int(open(fail).read() or 0)
        if left > 0:
            open(fail, "w").write(str(left - 1))
            bump(root, "failed_restarts")
            sys.stderr.write("Starting iSCSI Target: ietd failed\n")
            return 1
    conf = path(root, "etc", "ietd.conf")
    text = open(conf, encoding="latin-1").read() if os.path.exists(conf) else ""
    write_volume(root, parse_conf(root, text))
    # what ietd loaded (accounts, session keys: nothing in /proc shows them)
    with open(path(root, "standin", "running.conf"), "w", encoding="latin-1") as handle:
        handle.write(text)
    if portal is not None:
        write_listener(root, portal)
    # a restart drops every connected session
    open(path(root, "proc", "net", "iet", "session"), "w").close()
    bump(root, "restarts")
    log(root, "restarted")
    return 0


def ietadm(root, argv):
    parser = argparse.ArgumentParser(prog="ietadm")
    parser.add_argument("--op", required=True)
    parser.add_argument("--tid", type=int)
    parser.add_argument("--lun", type=int)
    parser.add_argument("--params", default="")
    args = parser.parse_args(argv)
    targets = read_volume(root)
    if targets is None:
        sys.stderr.write("-111\n")  # ietd not running: numeric errors only
        return 1
    bump(root, "ietadm")
    if args.op == "show":
        for tid, (name, luns) in enumerate(targets, 1):
            sys.stdout.write("tid:%d name:%s luns:%s\n" % (tid, name, sorted(luns)))
        return 0
    if args.tid is None or not 1 <= args.tid <= len(targets):
        sys.stderr.write("-2\n")
        return 1
    name, luns = targets[args.tid - 1]
    if args.op == "delete" and args.lun is not None:
        if args.lun not in luns:
            sys.stderr.write("-2\n")
            return 1
        del luns[args.lun]
    elif args.op == "new" and args.lun is not None:
        found = LUN_ARGS.match(args.params)
        if args.lun in luns or not found or not device_exists(root, ":".join(found.groups())):
            sys.stderr.write("-22\n")
            return 1
        luns[args.lun] = args.params
    else:
        sys.stderr.write("-22\n")
        return 1
    write_volume(root, targets)
    log(root, "ietadm %s tid=%s lun=%s" % (args.op, args.tid, args.lun))
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("action", choices=("restart", "stop", "ietadm", "already-running"))
    args, rest = parser.parse_known_args()
    os.makedirs(path(args.root, "standin"), exist_ok=True)
    if args.action == "already-running":
        # an init script whose restart does nothing while ietd runs: it exits 0
        bump(args.root, "noop_restarts")
        sys.stdout.write("Starting iSCSI Target: ietd already running\n")
        return 0
    if args.action == "restart":
        return restart(args.root, rest[0] if rest else None)
    if args.action == "stop":
        for name in ("volume", "session"):
            try:
                os.unlink(path(args.root, "proc", "net", "iet", name))
            except FileNotFoundError:
                pass
        return 0
    return ietadm(args.root, rest)


if __name__ == "__main__":
    sys.exit(main())
