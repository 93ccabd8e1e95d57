"""Read tapeshared.conf and its conf.d drop-ins into a Config, with the cross checks."""

from typing import Dict

from tapeshared.config.exports import export_config
from tapeshared.config.globals import global_config
from tapeshared.config.ini import config_files, read_sections
from tapeshared.core.model import Config, Match

DEFAULT_PATH = "/etc/tapeshared/tapeshared.conf"


def load(path: str = DEFAULT_PATH) -> Config:
    """Read and validate the configuration; raise ConfigError naming the culprit."""
    files = config_files(path)
    glob_section, sections = read_sections(files)
    settings = global_config(glob_section)
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
