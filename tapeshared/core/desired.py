"""Desired state: which device each configured LUN should point at right now."""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tapeshared.core.model import (
    Config,
    DesiredState,
    Device,
    ExportConfig,
    Hctl,
    LunConfig,
    LunState,
    TargetState,
)

Previous = Mapping[Tuple[str, int], Hctl]


def _lun_state(export: ExportConfig, lun_cfg: LunConfig, devices: Sequence[Device],
               previous: Previous, occupied: Mapping[Hctl, Device],
               problems: List[str]) -> LunState:
    matching = [d for d in devices if lun_cfg.match.matches(d)]
    usable = [d for d in matching if export.allow_remote or not d.remote]
    where = "[export %s] LUN %d (%s)" % (export.name, lun_cfg.lun, lun_cfg.match)
    note = ""
    if len(usable) == 1:
        device = usable[0]
        return LunState(lun_cfg.lun, lun_cfg.match, device.hctl, device, "present")
    if len(usable) > 1:
        note = "ambiguous: %s all match; not guessing" % ", ".join(
            str(d.hctl) for d in sorted(usable, key=lambda d: d.hctl))
        problems.append("%s: %s" % (where, note))
    elif matching:
        note = "only seen through an iSCSI session at %s (allow_remote = no)" % (
            ", ".join(str(d.hctl) for d in matching))
    old = previous.get((export.iqn, lun_cfg.lun))
    if export.absent == "keep" and old is not None:
        squatter = occupied.get(old)
        if squatter is None:
            return LunState(lun_cfg.lun, lun_cfg.match, old, None, "kept",
                            note or "absent; last address kept")
        problems.append("%s: absent, and its last address %s now holds %s; "
                        "not exporting that device" % (where, old,
                                                       squatter.identity or "another device"))
        note = note or "absent; last address now holds another device"
    return LunState(lun_cfg.lun, lun_cfg.match, None, None,
                    "ambiguous" if len(usable) > 1 else "absent", note or "absent")


def desired_state(config: Config, devices: Sequence[Device],
                  previous: Optional[Previous] = None) -> DesiredState:
    """Match configured exports to observed devices; deterministic, order-free."""
    previous = previous or {}
    ordered = sorted(devices, key=lambda d: (d.identity or "", d.hctl))
    occupied: Dict[Hctl, Device] = {}
    for device in ordered:
        occupied[device.hctl] = device
    problems: List[str] = []
    targets = []
    for export in sorted(config.exports, key=lambda e: e.iqn):
        luns = tuple(_lun_state(export, lun, ordered, previous, occupied, problems)
                     for lun in sorted(export.luns, key=lambda item: item.lun))
        targets.append(TargetState(
            name=export.name, iqn=export.iqn, luns=luns, initiators=export.initiators,
            initiator_iqns=export.initiator_iqns, incoming=export.incoming,
            outgoing=export.outgoing, params=export.params))
    return DesiredState(targets=tuple(targets), problems=tuple(problems))

