"""The [global] section: every key validated into a GlobalConfig."""

import os
from typing import Dict, List, Sequence, Tuple

from tapeshared.config.ini import Section, boolean, choice, command, number, path_value
from tapeshared.core.model import GlobalConfig
from tapeshared.core.names import chain_problem, iqn_problem, parent_chain_problem, parse_portal


def _chain(section: Section, key: str, default: str) -> str:
    value = section.pop(key)
    if value is None:
        return default
    problem = (chain_problem if key == "firewall_chain" else parent_chain_problem)(value)
    if problem:
        raise section.error(key, "%r: %s" % (value, problem))
    return value


def _parent(section: Section, chain: str, default: str) -> str:
    parent = _chain(section, "firewall_parent", default)
    problem = parent_chain_problem(parent, chain)
    if problem:
        key = "firewall_parent" if "firewall_parent" in section.values else "firewall_chain"
        raise section.error(key, "%r: %s" % (parent, problem))
    return parent


def managed_paths(settings: GlobalConfig) -> List[Tuple[str, str]]:
    """(key, path) of every file or directory this configuration writes."""
    paths = [("state_dir", settings.state_dir),
             ("state_dir", os.path.join(settings.state_dir, "state.json")),
             ("lock_file", settings.lock_file)]
    if settings.backend == "iet":
        paths.append(("ietd_conf", settings.ietd_conf))
        if settings.manage_access:
            paths += [("initiators_allow", settings.initiators_allow),
                      ("initiators_deny", settings.initiators_deny)]
    if settings.backend == "tgt":
        paths.append(("state_dir", os.path.join(settings.state_dir, "tgt.json")))
    if settings.firewall == "iptables":
        paths += [(key, path) for key, path in (
            ("firewall_save_file", settings.firewall_save_file),
            ("firewall_save_file6", settings.firewall_save_file6)) if path]
    return paths


def check_paths(section: Section, settings: GlobalConfig, sources: Sequence[str] = ()) -> None:
    """Refuse two managed files at one path, or a managed file that is a config file."""
    seen: Dict[str, Tuple[str, str]] = {}
    for source in sources:
        seen.setdefault(os.path.realpath(source), ("", source))
    for key, path in managed_paths(settings):
        real = os.path.realpath(path)
        if real not in seen:
            seen[real] = (key, path)
            continue
        other, other_path = seen[real]
        if not other:
            raise section.error(key, "%s is also the configuration file %s: each managed "
                                "file needs a path of its own" % (path, other_path))
        # blame a key the files set (a default alone never collides)
        blamed, named = (key, other) if key in section.values or other not in \
            section.values else (other, key)
        raise section.error(blamed, "%s is also %s (%s): each managed file needs a path "
                            "of its own" % (section.pop(blamed) or path, named,
                                            other_path if blamed == key else path))


def _portal(section: Section) -> str:
    value = section.pop("portal") or ""
    if not value:
        return ""
    try:
        parsed = parse_portal(value)
    except ValueError as exc:
        raise section.error("portal", str(exc))
    return str(parsed.address) if parsed.address is not None else value


def global_config(section: Section) -> GlobalConfig:
    """The validated [global] section (all files' [global] keys, later ones winning)."""
    known = set(GlobalConfig.__dataclass_fields__)
    for key in section.values:
        if key not in known:
            raise section.error(key, "unknown key")
    base = GlobalConfig()
    argv = command(section, "restart_command", base.restart_command)
    portal = _portal(section)
    prefix = (section.pop("iqn_prefix") or base.iqn_prefix).lower()
    problem = iqn_problem(prefix, prefix=True)
    if problem:
        raise section.error("iqn_prefix", "%r: %s" % (prefix, problem))
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
        firewall_parent=_parent(section, _chain(section, "firewall_chain",
                                                base.firewall_chain), base.firewall_parent),
        firewall_save_file=path_value(section, "firewall_save_file", ""),
        firewall_save_file6=path_value(section, "firewall_save_file6", ""),
        debounce=debounce,
        debounce_max=number(section, "debounce_max", max(base.debounce_max, debounce),
                             low=debounce, high=600),
        resync_interval=number(section, "resync_interval", base.resync_interval,
                                low=1, high=86400),
        stop_action=choice(section, "stop_action", base.stop_action,
                            ("keep", "unexport")))


