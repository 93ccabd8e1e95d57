"""Read tapeshared.conf and its conf.d drop-ins into a Config, with the cross checks."""

from typing import Dict, Tuple

from tapeshared.config.exports import export_config
from tapeshared.config.globals import check_paths, global_config
from tapeshared.config.ini import Section, config_files, read_sections
from tapeshared.core.model import Config, Match

DEFAULT_PATH = "/etc/tapeshared/tapeshared.conf"


def load(path: str = DEFAULT_PATH) -> Config:
    """Read and validate the configuration; raise ConfigError naming the culprit."""
    files = config_files(path)
    glob_section, sections = read_sections(files)
    settings = global_config(glob_section)
    check_paths(glob_section, settings, files)
    exports = [export_config(sections[name], settings.iqn_prefix) for name in sorted(sections)]
    seen_iqn: Dict[str, str] = {}
    seen_dev: Dict[Match, Tuple[str, str]] = {}
    for export in exports:
        section = sections["export " + export.name]
        if settings.backend == "tgt" and any(lun.lun == 0 for lun in export.luns):
            raise section.error("lun" if "lun" in section.values else _lun_key(section, 0),
                                "tgt reserves LUN 0 for its controller: number the "
                                "devices from 1")
        if settings.backend in ("lio", "tgt") and not export.initiator_iqns:
            raise section.error("initiator_iqns", "required with backend = %s: the "
                                "initiator IQNs given access (ACLs)" % settings.backend)
        if export.iqn in seen_iqn:
            other = sections["export " + seen_iqn[export.iqn]]
            raise section.error("iqn", "IQN %s is also used by [export %s] (%s)"
                                % (export.iqn, other.name[len("export "):],
                                   other.where("iqn")))
        seen_iqn[export.iqn] = export.name
        for lun in export.luns:
            key = _lun_key(section, lun.lun)
            if lun.match in seen_dev:
                what, where = seen_dev[lun.match]
                raise section.error(key, "device %s is also configured in %s (%s)"
                                    % (lun.match, what, where))
            seen_dev[lun.match] = ("[export %s] LUN %d" % (export.name, lun.lun),
                                   section.where(key))
    return Config(globals=settings, exports=tuple(sorted(exports, key=lambda e: e.iqn)),
                  sources=tuple(files))


def _lun_key(section: Section, lun: int) -> str:
    """The key that configured this LUN (lunN =, or serial =/wwn =)."""
    numbered = "lun%d" % lun
    for key in section.values:
        if key == numbered or (key.startswith("lun") and key[3:].isdigit()
                               and int(key[3:]) == lun):
            return key
    return "serial" if "serial" in section.values else "wwn"
