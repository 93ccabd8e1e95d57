"""[export NAME] sections: devices and LUNs, initiators, CHAP, session parameters."""

import ipaddress
import os
import re
import stat
from typing import Dict, Optional, Tuple

from tapeshared.config.ini import Section, boolean, choice, number
from tapeshared.core.identity import identity_text, normalize_wwn
from tapeshared.core.model import Chap, ExportConfig, LunConfig, Match
from tapeshared.core.names import iqn_problem, network_problem

MAX_LUN = 0x3FFF
_CHAP_USER = re.compile(r"\A[A-Za-z0-9._@:-]{1,255}\Z")
_LUN_KEY = re.compile(r"\Alun([0-9]+)\Z")
_SESSION_INT = ("maxconnections", "maxrecvdatasegmentlength", "maxxmitdatasegmentlength",
                "maxburstlength", "firstburstlength", "defaulttime2wait",
                "defaulttime2retain", "maxoutstandingr2t", "errorrecoverylevel",
                "wthreads", "queuedcommands", "nopinterval", "noptimeout")
# RFC 3720 section 12 ranges; Wthreads and QueuedCommands as IET's kernel
# module clamps them (MIN/MAX_NR_WTHREADS, MIN/MAX_NR_QUEUED_CMNDS).
_SEGMENT = (512, 2 ** 24 - 1)
_SESSION_RANGE = {"maxconnections": (1, 65535), "maxrecvdatasegmentlength": _SEGMENT,
                  "maxxmitdatasegmentlength": _SEGMENT, "maxburstlength": _SEGMENT,
                  "firstburstlength": _SEGMENT, "defaulttime2wait": (0, 3600),
                  "defaulttime2retain": (0, 3600), "maxoutstandingr2t": (1, 65535),
                  "errorrecoverylevel": (0, 2), "wthreads": (1, 128),
                  "queuedcommands": (1, 256)}
_SESSION_BOOL = ("initialr2t", "immediatedata", "datapduinorder", "datasequenceinorder")
_SESSION_DIGEST = ("headerdigest", "datadigest")
_SESSION_NAMES = {k.lower(): k for k in (
    "MaxConnections", "MaxRecvDataSegmentLength", "MaxXmitDataSegmentLength",
    "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain",
    "MaxOutstandingR2T", "ErrorRecoveryLevel", "Wthreads", "QueuedCommands",
    "NOPInterval", "NOPTimeout", "InitialR2T", "ImmediateData", "DataPDUInOrder",
    "DataSequenceInOrder", "HeaderDigest", "DataDigest")}
_EXPORT_KEYS = ("iqn", "serial", "wwn", "lun", "initiators", "initiator_iqns",
                "incoming_user", "incoming_secret_file", "outgoing_user",
                "outgoing_secret_file", "absent", "allow_remote")




def _initiators(section: Section, key: str) -> Tuple[str, ...]:
    value = section.pop(key)
    if value is None or not value.strip():
        raise section.error(key, "required: the initiator addresses or networks "
                                 "allowed to connect (or ALL)")
    items = [item for item in re.split(r"[\s,]+", value.strip()) if item]
    if not items:
        raise section.error(key, "an empty list: give the initiator addresses or "
                                 "networks allowed to connect (or ALL)")
    found = set()
    for item in items:
        if item.upper() == "ALL":
            found.add("ALL")
            continue
        problem = network_problem(item)
        if problem:
            raise section.error(key, "%r: %s" % (item, problem))
        found.add(str(ipaddress.ip_network(item, strict=True)))
    if "ALL" in found and len(found) > 1:
        raise section.error(key, "ALL cannot be combined with addresses")
    return tuple(sorted(found, key=_net_order))


def _net_order(text: str) -> Tuple[int, str]:
    return (6 if ":" in text else 4, text)


def _match(section: Section, key: str, kind: str, value: str) -> Match:
    if kind == "wwn":
        wwn = normalize_wwn(value)
        if wwn is None:
            raise section.error(key, "not a NAA/EUI WWN (16 or 32 hex digits): %r" % value)
        return Match("wwn", wwn)
    serial, problem = identity_text(value)
    if serial is None:
        shown = value if len(value) <= 40 else value[:32] + "..."
        raise section.error(key, "bad serial %r: %s" % (shown, problem or "empty"))
    return Match("serial", serial)


def _luns(section: Section) -> Tuple[LunConfig, ...]:
    single = [k for k in ("serial", "wwn") if section.pop(k) is not None]
    numbered = sorted(k for k in section.values if _LUN_KEY.match(k))
    if len(single) > 1:
        raise section.error("wwn", "give serial or wwn, not both")
    if single and numbered:
        raise section.error(numbered[0], "use either %s = or lunN = lines, not both"
                            % single[0])
    if single:
        lun = int(number(section, "lun", 0, int, 0, MAX_LUN))
        return (LunConfig(lun, _match(section, single[0], single[0],
                                      section.pop(single[0]) or "")),)
    if section.pop("lun") is not None:
        raise section.error("lun", "lun = goes with serial = or wwn =")
    if not numbered:
        raise section.error(None, "no device: add serial = or wwn =, or lun0 = serial:X")
    luns: Dict[int, LunConfig] = {}
    for key in numbered:
        lun_number = int(_LUN_KEY.match(key).group(1))  # type: ignore[union-attr]
        if lun_number > MAX_LUN:
            raise section.error(key, "LUN %d is above %d" % (lun_number, MAX_LUN))
        if lun_number in luns:
            raise section.error(key, "LUN %d given twice" % lun_number)
        kind, sep, value = (section.pop(key) or "").partition(":")
        if not sep or kind.strip().lower() not in ("serial", "wwn"):
            raise section.error(key, "expected serial:VALUE or wwn:VALUE")
        luns[lun_number] = LunConfig(lun_number, _match(section, key, kind.strip().lower(),
                                                value.strip()))
    return tuple(luns[n] for n in sorted(luns))


def read_secret(path: str) -> str:
    """Read a CHAP secret from a file nobody but its owner may read."""
    if not os.path.isabs(path):
        raise ValueError("expected an absolute path, got %r" % path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_mode & 0o077:
            raise ValueError("mode %04o lets group or others read it; chmod 600"
                             % (info.st_mode & 0o7777))
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ValueError("cannot read %s: %s" % (path, exc.strerror))
    except UnicodeDecodeError:
        raise ValueError("%s is not UTF-8 text" % path)
    secret = lines[0].strip() if lines else ""
    if not secret or not re.match(r"\A[\x21-\x7e]+\Z", secret) or "#" in secret:
        raise ValueError("%s: the first line must be the secret: printable, no "
                         "spaces or '#'" % path)
    return secret


def _chap(section: Section, direction: str) -> Optional[Chap]:
    user = section.pop(direction + "_user")
    secret_file = section.pop(direction + "_secret_file")
    if user is None and secret_file is None:
        return None
    if user is None or secret_file is None:
        raise section.error(direction + "_user", "%s_user and %s_secret_file go "
                            "together" % (direction, direction))
    if not _CHAP_USER.match(user):
        raise section.error(direction + "_user", "user name %r has characters not "
                            "allowed" % user)
    try:
        return Chap(user, read_secret(secret_file))
    except ValueError as exc:
        raise section.error(direction + "_secret_file", str(exc))


def _session_params(section: Section) -> Tuple[Tuple[str, str], ...]:
    params = []
    for key in sorted(k for k in section.values if k.startswith("session.")):
        name = key[len("session."):]
        value = section.pop(key) or ""
        if name in _SESSION_INT:
            if not re.match(r"\A[0-9]{1,9}\Z", value):
                raise section.error(key, "expected a whole number, got %r" % value)
            low, high = _SESSION_RANGE.get(name, (0, 999999999))
            if not low <= int(value) <= high:
                raise section.error(key, "%s is out of range %d..%d" % (value, low, high))
            value = str(int(value))
        elif name in _SESSION_BOOL:
            if value.lower() not in ("yes", "no"):
                raise section.error(key, "expected Yes or No, got %r" % value)
            value = value.capitalize()
        elif name in _SESSION_DIGEST:
            if value.lower() not in ("none", "crc32c", "crc32c,none", "none,crc32c"):
                raise section.error(key, "expected None or CRC32C, got %r" % value)
            value = ",".join("CRC32C" if v == "crc32c" else "None"
                             for v in value.lower().split(","))
        else:
            raise section.error(key, "unknown session parameter; known: %s"
                                % ", ".join(sorted(_SESSION_NAMES.values())))
        params.append((_SESSION_NAMES[name], value))
    given = dict(params)
    if int(given.get("FirstBurstLength", 0)) > int(given.get("MaxBurstLength", 262144)):
        raise section.error("session.firstburstlength", "FirstBurstLength %s is above "
                            "MaxBurstLength %s (RFC 3720 12.14)" % (
                                given["FirstBurstLength"], given.get("MaxBurstLength",
                                                                      "262144")))
    return tuple(params)


def export_config(section: Section, prefix: str) -> ExportConfig:
    name = section.name[len("export "):].strip()
    for key in section.values:
        if not (key in _EXPORT_KEYS or _LUN_KEY.match(key) or key.startswith("session.")):
            raise section.error(key, "unknown key")
    iqn = (section.pop("iqn") or "%s:%s" % (prefix, name)).lower()
    problem = iqn_problem(iqn)
    if problem:
        raise section.error("iqn", "%r: %s" % (iqn, problem))
    iqns = tuple(sorted(set(v.lower() for v in re.split(r"[\s,]+",
                                                        section.pop("initiator_iqns") or "")
                            if v)))
    for item in iqns:
        problem = iqn_problem(item)
        if problem:
            raise section.error("initiator_iqns", "%r: %s" % (item, problem))
    incoming = _chap(section, "incoming")
    return ExportConfig(
        name=name, iqn=iqn, luns=_luns(section),
        initiators=_initiators(section, "initiators"), initiator_iqns=iqns,
        incoming=(incoming,) if incoming else (), outgoing=_chap(section, "outgoing"),
        absent=choice(section, "absent", "keep", ("keep", "remove")),
        allow_remote=boolean(section, "allow_remote", False),
        params=_session_params(section))
