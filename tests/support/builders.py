"""Builders for the value types tests need most: devices, exports, configurations."""

from typing import Optional, Sequence, Tuple

from tapeshared.core.model import (
    Chap,
    Config,
    Device,
    ExportConfig,
    GlobalConfig,
    Hctl,
    LunConfig,
    Match,
)

IQN = "iqn.2007-04.com.example:tape0"
INIT = "iqn.1994-05.com.example:backup"


def tape(hctl: str = "1:0:6:0", serial: Optional[str] = "HU1", wwn: Optional[str] = None,
         kind: int = 1, **fields: str) -> Device:
    """A device as discovery reports it (fields: sg=, nst=, vendor=, ...)."""
    return Device(Hctl.parse(hctl), kind, serial=serial, wwn=wwn, **fields)  # type: ignore


def export(name: str = "tape0", iqn: str = IQN, lun: int = 0, serial: str = "HU1",
           luns: Optional[Sequence[Tuple[int, str, str]]] = None,
           initiators: Sequence[str] = ("ALL",), iqns: Sequence[str] = (INIT,),
           absent: str = "keep", chap: Optional[Chap] = None,
           mutual: Optional[Chap] = None,
           params: Tuple[Tuple[str, str], ...] = ()) -> ExportConfig:
    """One [export] section; luns as (number, "serial"|"wwn", value) triples."""
    matches = tuple(LunConfig(n, Match(kind, value)) for n, kind, value in luns) if luns \
        else (LunConfig(lun, Match("serial", serial)),)
    return ExportConfig(name=name, iqn=iqn, luns=matches, initiators=tuple(initiators),
                        initiator_iqns=tuple(iqns), incoming=(chap,) if chap else (),
                        outgoing=mutual, absent=absent, params=params)


def config(*exports: ExportConfig, **settings: object) -> Config:
    """A configuration of these exports and [global] settings."""
    return Config(GlobalConfig(**settings), tuple(exports))  # type: ignore[arg-type]
