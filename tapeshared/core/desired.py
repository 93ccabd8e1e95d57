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


def where(export: ExportConfig, lun: LunConfig) -> str:
    """How a message names one configured LUN: `[export NAME] lun N (serial:X)`."""
    return "[export %s] lun %d (%s)" % (export.name, lun.lun, lun.match)


def _near(lun_cfg: LunConfig, devices: Sequence[Device]) -> List[Device]:
    """Devices whose serial or WWN differs from the configured one only in case or
    surrounding whitespace: a likely typo, worth a hint (never matched)."""
    wanted = lun_cfg.match.value.strip().lower()
    found = []
    for device in devices:
        value = device.serial if lun_cfg.match.kind == "serial" else device.wwn
        if value is not None and value != lun_cfg.match.value and \
                value.strip().lower() == wanted:
            found.append(device)
    return found


def _why_absent(lun_cfg: LunConfig, matching: Sequence[Device],
                devices: Sequence[Device]) -> str:
    """The note of a LUN with no usable device: what was seen instead, if anything."""
    others = [d for d in matching if not d.exportable]
    if others:
        return "absent; %s matches %s, which is not a tape or changer (not exported)" % (
            lun_cfg.match, ", ".join(str(d) for d in others))
    if matching:
        return "absent; only seen through an iSCSI session at %s (allow_remote = no)" % (
            ", ".join(str(d.hctl) for d in matching))
    near = _near(lun_cfg, devices)
    if near:
        return "absent; did you mean %s? (%s)" % (" or ".join(
            "%s = %s" % (lun_cfg.match.kind, d.serial if lun_cfg.match.kind == "serial"
                         else d.wwn) for d in near), ", ".join(str(d) for d in near))
    return "absent"


def _lun_state(export: ExportConfig, lun_cfg: LunConfig, devices: Sequence[Device],
               previous: Previous, occupied: Mapping[Hctl, Device],
               problems: List[str]) -> LunState:
    matching = [d for d in devices if lun_cfg.match.matches(d)]
    usable = [d for d in matching if d.exportable and (export.allow_remote or not d.remote)]
    here = where(export, lun_cfg)
    if len(usable) == 1:
        device = usable[0]
        return LunState(lun_cfg.lun, lun_cfg.match, device.hctl, device, "present")
    if len(usable) > 1:
        # clones (one serial on two devices): never guess, and never keep an
        # address either, since one of them may sit there
        note = "ambiguous: %s all match %s; not guessing which one to export" % (
            ", ".join(str(d.hctl) for d in sorted(usable, key=lambda d: d.hctl)),
            lun_cfg.match)
        problems.append("%s: %s" % (here, note))
        return LunState(lun_cfg.lun, lun_cfg.match, None, None, "ambiguous", note)
    note = _why_absent(lun_cfg, matching, devices)
    old = previous.get((export.iqn, lun_cfg.lun))
    squatter = occupied.get(old) if old is not None else None
    if ("did you mean" in note or "not a tape" in note) and not (
            export.absent == "keep" and squatter is not None):
        problems.append("%s: %s" % (here, note))
    if export.absent == "keep" and old is not None:
        if squatter is None:
            return LunState(lun_cfg.lun, lun_cfg.match, old, None, "kept",
                            note + "; last address %s kept" % old)
        # whatever holds the address now is not the configured device (that
        # one is absent): a disk, an enclosure, another tape, a clone
        what = " ".join((squatter.kind, squatter.vendor, squatter.model)).strip()
        same = " (the same %s, but not a tape or changer)" % lun_cfg.match.kind \
            if lun_cfg.match.matches(squatter) else ""
        note = "absent, and its last address %s now holds %s (%s)%s; not exporting " \
            "that device" % (old, squatter.identity or "a device with no identity", what,
                             same)
        problems.append("%s: %s" % (here, note))
        return LunState(lun_cfg.lun, lun_cfg.match, None, None, "squatted", note,
                        last=old)
    return LunState(lun_cfg.lun, lun_cfg.match, None, None, "absent", note)


def _refuse_duplicates(named: List[Tuple[ExportConfig, LunConfig, LunState]],
                       problems: List[str]) -> List[LunState]:
    """One drive named by two LUNs (serial in one, WWN in another, or twice in one
    target): neither is exported, since two hosts could write one tape at once."""
    by_address: Dict[Hctl, List[int]] = {}
    for index, (_export, _cfg, state) in enumerate(named):
        if state.hctl is not None and state.status in ("present", "kept"):
            by_address.setdefault(state.hctl, []).append(index)
    result = [state for _export, _cfg, state in named]
    for hctl, indexes in sorted(by_address.items()):
        if len(indexes) < 2:
            continue
        places = [where(named[i][0], named[i][1]) for i in indexes]
        device = named[indexes[0]][2].device
        what = str(device) if device is not None else "the last address %s" % hctl
        problems.append("%s name the same device (%s): exporting it at neither" % (
            " and ".join(places), what))
        for i in indexes:
            state = named[i][2]
            others = [p for j, p in zip(indexes, places) if j != i]
            result[i] = LunState(state.lun, state.match, None, None, "duplicate",
                                 "the same device (%s) is also named by %s; not exported"
                                 % (what, " and ".join(others)))
    return result


def desired_state(config: Config, devices: Sequence[Device],
                  previous: Optional[Previous] = None) -> DesiredState:
    """Match configured exports to observed devices; deterministic, order-free.

    `devices` holds every SCSI device observed (any type): only tapes and
    changers are exported, but any device at a kept LUN's last address makes
    that address unusable.
    """
    previous = previous or {}
    ordered = sorted(devices, key=lambda d: (d.identity or "", d.hctl))
    occupied: Dict[Hctl, Device] = {}
    for device in ordered:
        occupied[device.hctl] = device
    problems: List[str] = []
    exports = sorted(config.exports, key=lambda e: e.iqn)
    named = []
    for export in exports:
        for lun in sorted(export.luns, key=lambda item: item.lun):
            named.append((export, lun, _lun_state(export, lun, ordered, previous,
                                                  occupied, problems)))
    states = _refuse_duplicates(named, problems)
    targets = []
    for export in exports:
        luns = tuple(state for (owner, _cfg, _old), state in zip(named, states)
                     if owner is export)
        targets.append(TargetState(
            name=export.name, iqn=export.iqn, luns=luns, initiators=export.initiators,
            initiator_iqns=export.initiator_iqns, incoming=export.incoming,
            outgoing=export.outgoing, params=export.params))
    return DesiredState(targets=tuple(targets), problems=tuple(problems))
