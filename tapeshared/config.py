"""Strict INI configuration: tapeshared.conf plus conf.d/*.conf, validated."""

import configparser
import glob
import ipaddress
import os
import re
import shlex
import stat
from typing import Callable, Dict, List, Optional, Tuple

from tapeshared.errors import ConfigError
from tapeshared.identity import identity_text, normalize_wwn
from tapeshared.model import Chap, Config, ExportConfig, GlobalConfig, LunConfig, Match

DEFAULT_PATH = "/etc/tapeshared/tapeshared.conf"
MAX_LUN = 0x3FFF
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9.-]{0,62}\Z")
_IQN = re.compile(r"\A(iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:-]+)?"
                  r"|eui\.[0-9a-f]{16})\Z")
_IFNAME = re.compile(r"\A[A-Za-z0-9_.:-]{1,15}\Z")
_CHAP_USER = re.compile(r"\A[A-Za-z0-9._@:-]{1,255}\Z")
_LUN_KEY = re.compile(r"\Alun([0-9]+)\Z")
_SESSION_INT = ("maxconnections", "maxrecvdatasegmentlength", "maxxmitdatasegmentlength",
                "maxburstlength", "firstburstlength", "defaulttime2wait",
                "defaulttime2retain", "maxoutstandingr2t", "errorrecoverylevel",
                "wthreads", "queuedcommands", "nopinterval", "noptimeout")
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


class _Section:
    """One section's raw values with the file each came from, for error messages."""

    def __init__(self, name: str, origin: str = "") -> None:
        self.name = name
        self.origin = origin
        self.values: Dict[str, Tuple[str, str]] = {}

    def error(self, key: Optional[str], message: str) -> ConfigError:
        path = self.values[key][1] if key in self.values else (self.origin or None)
        return ConfigError(message, path=path, section=self.name, key=key,
                           line=_line_of(path, self.name, key) if path and key else None)

    def pop(self, key: str) -> Optional[str]:
        item = self.values.get(key)
        return None if item is None else item[0]


def _line_of(path: str, section: str, key: str) -> Optional[int]:
    """The line of key inside [section] in path, for error messages."""
    current = None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if text.startswith("[") and text.endswith("]"):
                    current = text[1:-1].strip()
                elif current == section and re.match(r"%s\s*[=:]" % re.escape(key),
                                                    text, re.IGNORECASE):
                    return number
    except OSError:
        return None
    return None


def config_files(path: str) -> List[str]:
    """The main file and its conf.d/*.conf drop-ins, in the order they apply."""
    dropins = os.path.join(os.path.dirname(os.path.abspath(path)), "conf.d", "*.conf")
    return [path] + sorted(glob.glob(dropins))


def _read(files: List[str]) -> Tuple[_Section, Dict[str, _Section]]:
    glob_section = _Section("global")
    exports: Dict[str, _Section] = {}
    for path in files:
        parser = configparser.ConfigParser(interpolation=None, strict=True,
                                           inline_comment_prefixes=(" #", " ;"),
                                           default_section="\x00none")
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except OSError as exc:
            raise ConfigError("cannot read: %s" % exc.strerror, path=path)
        except UnicodeDecodeError as exc:
            raise ConfigError("not UTF-8 text: %s" % exc, path=path)
        except configparser.Error as exc:
            line = getattr(exc, "lineno", None)
            raise ConfigError(exc.message.splitlines()[0] if hasattr(exc, "message")
                              else str(exc), path=path, line=line)
        for name in parser.sections():
            if name == "global":
                section = glob_section
                section.origin = section.origin or path
            elif name.startswith("export "):
                export = name[len("export "):].strip()
                if not _NAME.match(export):
                    raise ConfigError("export name %r: use letters, digits, '.', '-' "
                                      "(up to 63)" % export, path=path, section=name)
                if name in exports:
                    raise ConfigError("export defined twice (also in %s)"
                                      % exports[name].origin, path=path, section=name)
                section = exports[name] = _Section(name, path)
            else:
                raise ConfigError("unknown section; expected [global] or "
                                  "[export NAME]", path=path, section=name)
            for key, value in parser.items(name):
                section.values[key] = (value.strip(), path)
    return glob_section, exports


def _bool(section: _Section, key: str, default: bool) -> bool:
    value = section.pop(key)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise section.error(key, "expected yes or no, got %r" % value)


def _number(section: _Section, key: str, default: float, kind: Callable = float,
            low: float = 0, high: float = float("inf")) -> float:
    value = section.pop(key)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise section.error(key, "expected a number, got %r" % value)
    if not low <= number <= high:
        raise section.error(key, "%s is out of range %s..%s" % (value, low, high))
    return number


def _choice(section: _Section, key: str, default: str, choices: Tuple[str, ...]) -> str:
    value = section.pop(key)
    if value is None:
        return default
    if value.lower() not in choices:
        raise section.error(key, "expected one of %s, got %r" % (" | ".join(choices), value))
    return value.lower()


def _path(section: _Section, key: str, default: str) -> str:
    value = section.pop(key)
    if value is None:
        return default
    if not os.path.isabs(value) or "\n" in value:
        raise section.error(key, "expected an absolute path, got %r" % value)
    return value


def _command(section: _Section, key: str, default: Tuple[str, ...]) -> Tuple[str, ...]:
    value = section.pop(key)
    if value is None:
        return default
    try:
        argv = tuple(shlex.split(value))
    except ValueError as exc:
        raise section.error(key, str(exc))
    if not argv:
        raise section.error(key, "empty command")
    return argv


def _chain(section: _Section, key: str, default: str) -> str:
    value = section.pop(key)
    if value is None:
        return default
    if not re.match(r"\A[A-Za-z0-9_.:+-]{1,28}\Z", value):
        raise section.error(key, "not an iptables chain name: %r" % value)
    return value


def _globals(section: _Section) -> GlobalConfig:
    known = set(GlobalConfig.__dataclass_fields__)  # type: ignore[attr-defined]
    for key in section.values:
        if key not in known:
            raise section.error(key, "unknown key")
    base = GlobalConfig()
    argv = _command(section, "restart_command", base.restart_command)
    portal = section.pop("portal") or ""
    if portal:
        try:
            portal = str(ipaddress.ip_address(portal))
        except ValueError:
            if not _IFNAME.match(portal) or re.match(r"\A[0-9.]+\Z", portal):
                raise section.error("portal", "not an IP address or interface name: %r"
                                    % portal)
    prefix = (section.pop("iqn_prefix") or base.iqn_prefix).lower()
    if not _IQN.match(prefix) or not prefix.startswith("iqn."):
        raise section.error("iqn_prefix", "not an iqn. name: %r" % prefix)
    state_dir = _path(section, "state_dir", base.state_dir)
    debounce = _number(section, "debounce", base.debounce, low=0.01, high=60)
    return GlobalConfig(
        backend=_choice(section, "backend", base.backend, ("iet", "lio", "tgt")),
        apply_mode=_choice(section, "apply_mode", base.apply_mode, ("restart", "live")),
        ietd_conf=_path(section, "ietd_conf", base.ietd_conf),
        initiators_allow=_path(section, "initiators_allow", base.initiators_allow),
        initiators_deny=_path(section, "initiators_deny", base.initiators_deny),
        manage_access=_bool(section, "manage_access", base.manage_access),
        iet_volume=_path(section, "iet_volume", base.iet_volume),
        iet_session=_path(section, "iet_session", base.iet_session),
        restart_command=argv,
        ietadm=_command(section, "ietadm", base.ietadm),
        lio_root=_path(section, "lio_root", base.lio_root),
        tgtadm=_command(section, "tgtadm", base.tgtadm),
        proc_net_tcp=_path(section, "proc_net_tcp", base.proc_net_tcp),
        proc_net_tcp6=_path(section, "proc_net_tcp6", base.proc_net_tcp6),
        restart_retries=int(_number(section, "restart_retries", base.restart_retries,
                                    int, 1, 20)),
        verify_timeout=_number(section, "verify_timeout", base.verify_timeout, low=0.1,
                               high=600),
        portal=portal,
        port=int(_number(section, "port", base.port, int, 1, 65535)),
        iqn_prefix=prefix,
        state_dir=state_dir,
        lock_file=_path(section, "lock_file", os.path.join(state_dir, "apply.lock")),
        lock_timeout=_number(section, "lock_timeout", base.lock_timeout, low=0, high=3600),
        firewall=_choice(section, "firewall", base.firewall,
                         ("none", "iptables", "nftables")),
        firewall_chain=_chain(section, "firewall_chain", base.firewall_chain),
        firewall_parent=_chain(section, "firewall_parent", base.firewall_parent),
        firewall_save_file=_path(section, "firewall_save_file", ""),
        firewall_save_file6=_path(section, "firewall_save_file6", ""),
        debounce=debounce,
        debounce_max=_number(section, "debounce_max", max(base.debounce_max, debounce),
                             low=debounce, high=600),
        resync_interval=_number(section, "resync_interval", base.resync_interval,
                                low=1, high=86400),
        stop_action=_choice(section, "stop_action", base.stop_action,
                            ("keep", "unexport")))


def _initiators(section: _Section, key: str) -> Tuple[str, ...]:
    value = section.pop(key)
    if value is None or not value.strip():
        raise section.error(key, "required: the initiator addresses or networks "
                                 "allowed to connect (or ALL)")
    found = set()
    for item in re.split(r"[\s,]+", value.strip()):
        if item.upper() == "ALL":
            found.add("ALL")
            continue
        try:
            found.add(str(ipaddress.ip_network(item, strict=True)))
        except ValueError as exc:
            raise section.error(key, "%r: %s" % (item, exc))
    if "ALL" in found and len(found) > 1:
        raise section.error(key, "ALL cannot be combined with addresses")
    return tuple(sorted(found, key=_net_order))


def _net_order(text: str) -> Tuple[int, str]:
    return (6 if ":" in text else 4, text)


def _match(section: _Section, key: str, kind: str, value: str) -> Match:
    if kind == "wwn":
        wwn = normalize_wwn(value)
        if wwn is None:
            raise section.error(key, "not a NAA/EUI WWN (16 or 32 hex digits): %r" % value)
        return Match("wwn", wwn)
    serial, problem = identity_text(value)
    if serial is None:
        raise section.error(key, "bad serial %r: %s" % (value, problem or "empty"))
    return Match("serial", serial)


def _luns(section: _Section) -> Tuple[LunConfig, ...]:
    single = [k for k in ("serial", "wwn") if section.pop(k) is not None]
    numbered = sorted(k for k in section.values if _LUN_KEY.match(k))
    if len(single) > 1:
        raise section.error("wwn", "give serial or wwn, not both")
    if single and numbered:
        raise section.error(numbered[0], "use either %s = or lunN = lines, not both"
                            % single[0])
    if single:
        lun = int(_number(section, "lun", 0, int, 0, MAX_LUN))
        return (LunConfig(lun, _match(section, single[0], single[0],
                                      section.pop(single[0]) or "")),)
    if section.pop("lun") is not None:
        raise section.error("lun", "lun = goes with serial = or wwn =")
    if not numbered:
        raise section.error(None, "no device: add serial = or wwn =, or lun0 = serial:X")
    luns: Dict[int, LunConfig] = {}
    for key in numbered:
        number = int(_LUN_KEY.match(key).group(1))  # type: ignore[union-attr]
        if number > MAX_LUN:
            raise section.error(key, "LUN %d is above %d" % (number, MAX_LUN))
        if number in luns:
            raise section.error(key, "LUN %d given twice" % number)
        kind, sep, value = (section.pop(key) or "").partition(":")
        if not sep or kind.strip().lower() not in ("serial", "wwn"):
            raise section.error(key, "expected serial:VALUE or wwn:VALUE")
        luns[number] = LunConfig(number, _match(section, key, kind.strip().lower(),
                                                value.strip()))
    return tuple(luns[n] for n in sorted(luns))


def read_secret(path: str) -> str:
    """Read a CHAP secret from a file nobody but its owner may read."""
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
    secret = lines[0].strip() if lines else ""
    if not secret or not re.match(r"\A[\x21-\x7e]+\Z", secret) or "#" in secret:
        raise ValueError("%s: the first line must be the secret: printable, no "
                         "spaces or '#'" % path)
    return secret


def _chap(section: _Section, direction: str) -> Optional[Chap]:
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


def _session_params(section: _Section) -> Tuple[Tuple[str, str], ...]:
    params = []
    for key in sorted(k for k in section.values if k.startswith("session.")):
        name = key[len("session."):]
        value = section.pop(key) or ""
        if name in _SESSION_INT:
            if not value.isdigit() or len(value) > 9:
                raise section.error(key, "expected a whole number, got %r" % value)
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
    return tuple(params)


def _export(section: _Section, prefix: str) -> ExportConfig:
    name = section.name[len("export "):].strip()
    for key in section.values:
        if not (key in _EXPORT_KEYS or _LUN_KEY.match(key) or key.startswith("session.")):
            raise section.error(key, "unknown key")
    iqn = (section.pop("iqn") or "%s:%s" % (prefix, name)).lower()
    if not _IQN.match(iqn):
        raise section.error("iqn", "not a valid iSCSI name: %r" % iqn)
    iqns = tuple(sorted(set(v.lower() for v in re.split(r"[\s,]+",
                                                        section.pop("initiator_iqns") or "")
                            if v)))
    for item in iqns:
        if not _IQN.match(item):
            raise section.error("initiator_iqns", "not a valid iSCSI name: %r" % item)
    incoming = _chap(section, "incoming")
    return ExportConfig(
        name=name, iqn=iqn, luns=_luns(section),
        initiators=_initiators(section, "initiators"), initiator_iqns=iqns,
        incoming=(incoming,) if incoming else (), outgoing=_chap(section, "outgoing"),
        absent=_choice(section, "absent", "keep", ("keep", "remove")),
        allow_remote=_bool(section, "allow_remote", False),
        params=_session_params(section))


def load(path: str = DEFAULT_PATH) -> Config:
    """Read and validate the configuration; raise ConfigError naming the culprit."""
    files = config_files(path)
    glob_section, sections = _read(files)
    settings = _globals(glob_section)
    exports = [_export(sections[name], settings.iqn_prefix) for name in sorted(sections)]
    seen_iqn: Dict[str, str] = {}
    seen_dev: Dict[Match, str] = {}
    for export in exports:
        section = sections["export " + export.name]
        if settings.backend == "tgt" and any(lun.lun == 0 for lun in export.luns):
            raise section.error("lun" if len(export.luns) == 1 else "lun0",
                                "tgt reserves LUN 0 for its controller: number the "
                                "devices from 1")
        if settings.backend in ("lio", "tgt") and not export.initiator_iqns:
            raise section.error("initiator_iqns", "required with backend = %s: the "
                                "initiator IQNs given access (ACLs)" % settings.backend)
        if export.iqn in seen_iqn:
            raise section.error("iqn", "IQN %s is also used by [export %s]"
                                % (export.iqn, seen_iqn[export.iqn]))
        seen_iqn[export.iqn] = export.name
        for lun in export.luns:
            if lun.match in seen_dev:
                raise section.error(None, "device %s is also configured in %s"
                                    % (lun.match, seen_dev[lun.match]))
            seen_dev[lun.match] = "[export %s] LUN %d" % (export.name, lun.lun)
    return Config(globals=settings, exports=tuple(sorted(exports, key=lambda e: e.iqn)),
                  sources=tuple(files))
