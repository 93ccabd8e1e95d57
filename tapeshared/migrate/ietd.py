"""IET's ietd.conf and initiators.allow, parsed (pure) for the import."""

import ipaddress
import re
from typing import Dict, List, Optional

from tapeshared.core.model import Hctl
from tapeshared.core.names import iqn_problem
from tapeshared.migrate.model import OldLun, OldSetup, OldTarget, error, masked, shown

_RAWIO = re.compile(r"\AH=([0-9]{1,5}),C=([0-9]{1,5}),I=([0-9]{1,5}),L=([0-9]{1,5}),"
                    r"Type=rawio\Z", re.IGNORECASE)
_PATH = re.compile(r"(?:\A|,)Path=([^,]*)", re.IGNORECASE)
_TYPE = re.compile(r"(?:\A|,)Type=([^,]*)", re.IGNORECASE)
# the session keys the tapeshared config carries (config/exports.py)
_SESSION = ("maxconnections", "maxrecvdatasegmentlength", "maxxmitdatasegmentlength",
            "maxburstlength", "firstburstlength", "defaulttime2wait", "defaulttime2retain",
            "maxoutstandingr2t", "errorrecoverylevel", "wthreads", "queuedcommands",
            "nopinterval", "noptimeout", "initialr2t", "immediatedata", "datapduinorder",
            "datasequenceinorder", "headerdigest", "datadigest")
_PRINTABLE = re.compile(r"\A[\x20-\x7e\t]*\Z")


def _text_lines(text: str, path: str) -> List[str]:
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not _PRINTABLE.match(line.rstrip("\r")):
            raise error(path, number, "a control or non-ASCII character; ietd.conf "
                        "is plain ASCII: fix the line first")
    return lines


def _lun(target: OldTarget, words: List[str], path: str, number: int) -> None:
    where = "%s:%d" % (path, number)
    if len(words) != 3 or not words[1].isdigit() or int(words[1]) > 0x3FFF:
        raise error(path, number, "expected `Lun N ARGS` (N 0..16383), got %s"
                    % shown(" ".join(words)))
    lun = int(words[1])
    if any(old.lun == lun for old in target.luns):
        raise error(path, number, "LUN %d given twice in target %s" % (lun, target.iqn))
    raw = _RAWIO.match(words[2])
    if raw:
        target.luns.append(OldLun(lun, where, hctl=Hctl(*(int(g) for g in raw.groups()))))
        return
    kind = _TYPE.search(words[2])
    disk = _PATH.search(words[2])
    target.luns.append(OldLun(lun, where, path=disk.group(1) if disk else None,
                              passthrough=False, what="Type=%s" % (
                                  kind.group(1) if kind else "fileio")))


def parse(text: str, path: str) -> OldSetup:
    """Target stanzas with their Luns, CHAP users and session keys."""
    setup = OldSetup("ietd")
    target: Optional[OldTarget] = None
    for number, raw in enumerate(_text_lines(text, path), 1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        key = words[0].lower()
        if key == "target":
            if len(words) != 2:
                raise error(path, number, "expected `Target IQN`, got %s" % shown(raw.strip()))
            iqn = words[1].lower()
            problem = iqn_problem(iqn)
            if problem:
                raise error(path, number, "target %s: %s" % (shown(words[1]), problem))
            if any(t.iqn == iqn for t in setup.targets):
                raise error(path, number, "target %s defined twice" % iqn)
            target = OldTarget(iqn, "%s:%d" % (path, number))
            setup.targets.append(target)
        elif target is None:
            if key in ("incominguser", "outgoinguser"):
                setup.notes.append("%s:%d: discovery CHAP (%s before any Target) is "
                                   "not carried over" % (path, number, words[0]))
            continue
        elif key == "lun":
            _lun(target, words, path, number)
        elif key in ("incominguser", "outgoinguser"):
            if len(words) != 3:
                raise error(path, number, "expected `%s USER SECRET`" % words[0])
            if key == "incominguser":
                target.incoming.append((words[1], words[2]))
            elif target.outgoing is not None:
                raise error(path, number, "a second OutgoingUser in target %s" % target.iqn)
            else:
                target.outgoing = (words[1], words[2])
        elif key == "type":
            if words[1:] != ["1"]:
                setup.notes.append("%s:%d: `%s` is not the tape type (Type 1); "
                                   "tapeshared sets Type 1" % (path, number, raw.strip()))
        elif key in _SESSION and len(words) == 2:
            target.params.append((key, words[1]))
        else:
            setup.notes.append("%s:%d: %s is not carried over" % (
                path, number, shown(raw.strip())))
        if target is not None:
            target.removal.append("%s:%d: %s" % (path, number, masked(raw.strip())))
            target.span = (target.span[0] or number, number)
    return setup


def _network(item: str) -> Optional[str]:
    text = item.strip()
    if text.startswith("["):
        text = text[1:].replace("]", "", 1)
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return None


def parse_allow(text: str, path: str, setup: OldSetup) -> None:
    """initiators.allow: `IQN|ALL addr, addr`; fills each target's initiators."""
    per: Dict[str, List[str]] = {}
    for number, raw in enumerate(_text_lines(text, path), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _sep, rest = line.partition(" ")
        items = [i for i in re.split(r"[\s,]+", rest.strip()) if i]
        if not items:
            raise error(path, number, "expected `TARGET ADDRESS, ...`, got %s" % shown(line))
        key = name.lower()
        found = []
        for item in items:
            net = "ALL" if item.upper() == "ALL" else _network(item)
            if net is None:
                setup.notes.append("%s:%d: %s is not an address or network (a host "
                                   "name or pattern): not carried over" % (
                                       path, number, shown(item)))
                continue
            found.append(net)
        if key in per:
            continue  # IET reads the first line per target only
        per[key] = found
        for target in setup.targets:
            if target.iqn == key:
                target.removal.append("%s:%d: %s" % (path, number, line))
    for target in setup.targets:
        target.initiators = per.get(target.iqn, per.get("all", []))
