"""Strict INI configuration: tapeshared.conf plus conf.d/*.conf, validated."""

import ipaddress
import os
import re
from typing import Dict

from tapeshared.configexport import IQN_NAME, export_config
from tapeshared.inifile import (
    Section,
    boolean,
    choice,
    command,
    config_files,
    number,
    path_value,
    read_sections,
)
from tapeshared.model import Config, GlobalConfig, Match

DEFAULT_PATH = "/etc/tapeshared/tapeshared.conf"
_IFNAME = re.compile(r"\A[A-Za-z0-9_.:-]{1,15}\Z")
__all__ = ["DEFAULT_PATH", "config_files", "load"]


def _chain(section: Section, key: str, default: str) -> str:
    value = section.pop(key)
    if value is None:
        return default
    if not re.match(r"\A[A-Za-z0-9_.:+-]{1,28}\Z", value):
        raise section.error(key, "not an iptables chain name: %r" % value)
    return value


def _globals(section: Section) -> GlobalConfig:
    known = set(GlobalConfig.__dataclass_fields__)  # type: ignore[attr-defined]
    for key in section.values:
        if key not in known:
            raise section.error(key, "unknown key")
    base = GlobalConfig()
    argv = command(section, "restart_command", base.restart_command)
    portal = section.pop("portal") or ""
    if portal:
        try:
            portal = str(ipaddress.ip_address(portal))
        except ValueError:
            if not _IFNAME.match(portal) or re.match(r"\A[0-9.]+\Z", portal):
                raise section.error("portal", "not an IP address or interface name: %r"
                                    % portal)
    prefix = (section.pop("iqn_prefix") or base.iqn_prefix).lower()
    if not IQN_NAME.match(prefix) or not prefix.startswith("iqn."):
        raise section.error("iqn_prefix", "not an iqn. name: %r" % prefix)
    state_dir = path_value(section, "state_dir", base.state_dir)
    debounce = number(section, "debounce", base.debounce, low=0.01, high=60)
    return GlobalConfig(
        backend=choice(section, "backend", base.backend, ("iet", "lio", "tgt")),
        apply_mode=choice(section, "apply_mode", base.apply_mode, ("restart", "live")),
        ietd_conf=path_value(section, "ietd_conf", base.ietd_conf),
        initiators_allow=path_value(section, "initiators_allow", base.initiators_allow),
        initiators_deny=path_value(section, "initiators_deny", base.initiators_deny),
        manage_access=boolean(section, "manage_access", base.manage_access),
        iet_volume=path_value(section, "iet_volume", base.iet_volume),
        iet_session=path_value(section, "iet_session", base.iet_session),
        restart_command=argv,
        ietadm=command(section, "ietadm", base.ietadm),
        lio_root=path_value(section, "lio_root", base.lio_root),
        tgtadm=command(section, "tgtadm", base.tgtadm),
        proc_net_tcp=path_value(section, "proc_net_tcp", base.proc_net_tcp),
        proc_net_tcp6=path_value(section, "proc_net_tcp6", base.proc_net_tcp6),
        restart_retries=int(number(section, "restart_retries", base.restart_retries,
                                    int, 1, 20)),
        verify_timeout=number(section, "verify_timeout", base.verify_timeout, low=0.1,
                               high=600),
        portal=portal,
        port=int(number(section, "port", base.port, int, 1, 65535)),
        iqn_prefix=prefix,
        state_dir=state_dir,
        lock_file=path_value(section, "lock_file", os.path.join(state_dir, "apply.lock")),
        lock_timeout=number(section, "lock_timeout", base.lock_timeout, low=0, high=3600),
        firewall=choice(section, "firewall", base.firewall,
                         ("none", "iptables", "nftables")),
        firewall_chain=_chain(section, "firewall_chain", base.firewall_chain),
        firewall_parent=_chain(section, "firewall_parent", base.firewall_parent),
        firewall_save_file=path_value(section, "firewall_save_file", ""),
        firewall_save_file6=path_value(section, "firewall_save_file6", ""),
        debounce=debounce,
        debounce_max=number(section, "debounce_max", max(base.debounce_max, debounce),
                             low=debounce, high=600),
        resync_interval=number(section, "resync_interval", base.resync_interval,
                                low=1, high=86400),
        stop_action=choice(section, "stop_action", base.stop_action,
                            ("keep", "unexport")))


def load(path: str = DEFAULT_PATH) -> Config:
    """Read and validate the configuration; raise ConfigError naming the culprit."""
    files = config_files(path)
    glob_section, sections = read_sections(files)
    settings = _globals(glob_section)
    exports = [export_config(sections[name], settings.iqn_prefix) for name in sorted(sections)]
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
