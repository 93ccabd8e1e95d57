"""The old setup plus the devices found now -> tapeshared [export] sections (pure).

Each LUN is looked up on the live system at the address (H:C:T:L or /dev node)
the old file names and written down by the device's serial or WWN, so the
export follows the drive from then on. What cannot be carried is said, never
guessed: an empty address, a device without identity, a disk image.
"""

import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from tapeshared.core.model import Device
from tapeshared.core.names import network_problem
from tapeshared.migrate.model import OldLun, OldSetup, OldTarget, shown

_SECRET = re.compile(r"\A[\x21-\x7e]+\Z")
_USER = re.compile(r"\A[A-Za-z0-9._@:-]{1,255}\Z")


@dataclass
class Existing:
    """What the current tapeshared configuration already has (never overwritten)."""

    backend: str = "iet"
    names: Set[str] = field(default_factory=set)
    iqns: Dict[str, str] = field(default_factory=dict)     # iqn -> export name
    devices: Dict[str, str] = field(default_factory=dict)  # "serial:X" -> export name


@dataclass
class Imported:
    """The result: the drop-in's text, secret files to create, what was left out."""

    text: str = ""
    secrets: List[Tuple[str, str]] = field(default_factory=list)  # (path, secret)
    notes: List[str] = field(default_factory=list)
    advice: List[str] = field(default_factory=list)
    removal: List[str] = field(default_factory=list)
    exports: int = 0


def find(lun: OldLun, devices: Sequence[Device], real: Dict[str, str]) -> Optional[Device]:
    """The device now at the LUN's address or node (real: path -> its realpath)."""
    for device in devices:
        if lun.hctl is not None and device.hctl == lun.hctl:
            return device
        if lun.path is not None:
            nodes = set(device.nodes.values()) | set(device.by_id)
            if lun.path in nodes or real.get(lun.path, lun.path) in nodes:
                return device
    return None


def export_name(iqn: str, taken: Set[str]) -> str:
    """A section name from the IQN's last part, unique among taken."""
    tail = re.sub(r"[^A-Za-z0-9.-]+", "-", iqn.split(":")[-1]).strip("-.")[:50] or "imported"
    if not tail[0].isalnum():
        tail = "t" + tail
    name, count = tail, 1
    while name.lower() in taken:
        count += 1
        name = "%s-%d" % (tail, count)
    taken.add(name.lower())
    return name


def _networks(target: OldTarget, notes: List[str], advice: List[str]) -> List[str]:
    found = []
    for item in target.initiators:
        if item.upper() == "ALL":
            return ["ALL"]
        if network_problem(item) is None:
            found.append(item)
            continue
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
            advice.append("%s: %s widened to its network %s" % (
                target.iqn, shown(item), found[-1]))
        except ValueError:
            notes.append("%s: initiator %s is not an address: not carried over"
                         % (target.iqn, shown(item)))
    if not found:
        advice.append("%s: no initiator address list: ALL addresses allowed (as the old "
                     "setup did); narrow `initiators =`" % target.iqn)
        return ["ALL"]
    return found


def _chap(name: str, direction: str, cred: Tuple[str, str], secrets_dir: str,
          out: Imported, lines: List[str]) -> None:
    user, secret = cred
    if not _USER.match(user) or not _SECRET.match(secret) or "#" in secret:
        out.notes.append("%s: the %s CHAP user %s or its secret has characters tapeshared "
                         "does not allow: not carried over" % (name, direction, shown(user)))
        return
    path = os.path.join(secrets_dir, "%s.%s" % (name, direction))
    out.secrets.append((path, secret))
    lines += ["%s_user = %s" % (direction, user), "%s_secret_file = %s" % (direction, path)]


def _luns(target: OldTarget, devices: Sequence[Device], real: Dict[str, str],
          existing: Existing, out: Imported) -> List[str]:
    lines = []
    for lun in sorted(target.luns, key=lambda old: old.lun):
        address = str(lun.hctl) if lun.hctl is not None else (lun.path or "?")
        if not lun.passthrough:
            out.notes.append("%s LUN %d (%s, %s): not a pass-through tape; left alone"
                             % (target.iqn, lun.lun, lun.what, lun.where))
            continue
        device = find(lun, devices, real)
        if device is None:
            out.notes.append("%s LUN %d: no device at %s now (%s): not carried over; "
                             "connect it and run import again" % (
                                 target.iqn, lun.lun, shown(address), lun.where))
            continue
        if not device.exportable:
            out.notes.append("%s LUN %d: %s is a %s, not a tape or changer: left alone"
                             % (target.iqn, lun.lun, device.hctl, device.kind))
            continue
        if device.identity is None:
            out.notes.append("%s LUN %d: %s has no readable serial or WWN: it cannot "
                             "be exported by identity" % (target.iqn, lun.lun, device.hctl))
            continue
        if device.identity in existing.devices:
            out.notes.append("%s LUN %d: %s is already exported by [export %s]" % (
                target.iqn, lun.lun, device.identity, existing.devices[device.identity]))
            continue
        if existing.backend == "tgt" and lun.lun == 0:
            out.advice.append("%s LUN 0 becomes LUN 1: tgt keeps LUN 0 for its "
                             "controller" % target.iqn)
        number = 1 if existing.backend == "tgt" and lun.lun == 0 else lun.lun
        made = " ".join(w for w in (device.vendor, device.model) if w)
        lines.append("; LUN %d was %s (%s)%s" % (number, address, lun.where,
                                               ": " + made if made else ""))
        lines.append("lun%d = %s" % (number, device.identity))
    return lines


def _export(target: OldTarget, devices: Sequence[Device], real: Dict[str, str],
            existing: Existing, secrets_dir: str, taken: Set[str], out: Imported) -> str:
    if target.iqn in existing.iqns:
        out.notes.append("%s: already configured as [export %s]: left as it is" % (
            target.iqn, existing.iqns[target.iqn]))
        return ""
    luns = _luns(target, devices, real, existing, out)
    if not luns:
        out.notes.append("%s: no LUN could be carried over: no export written" % target.iqn)
        return ""
    name = export_name(target.iqn, taken)
    lines = ["# imported from %s" % target.where, "[export %s]" % name,
             "iqn = %s" % target.iqn] + luns
    lines.append("initiators = %s" % ", ".join(_networks(target, out.notes, out.advice)))
    if target.initiator_iqns:
        lines.append("initiator_iqns = %s" % ", ".join(sorted(set(target.initiator_iqns))))
    elif existing.backend in ("lio", "tgt"):
        out.notes.append("%s: backend %s needs initiator_iqns =: add the initiator IQNs "
                         "given access" % (target.iqn, existing.backend))
        lines.append("; initiator_iqns = iqn.XXXX-XX.example:initiator  (required)")
    for cred in target.incoming[:1]:
        _chap(name, "incoming", cred, secrets_dir, out, lines)
    if len(target.incoming) > 1:
        out.notes.append("%s: %d IncomingUser lines; tapeshared takes one per export: "
                         "only %s carried over" % (target.iqn, len(target.incoming),
                                                   shown(target.incoming[0][0])))
    if target.outgoing:
        _chap(name, "outgoing", target.outgoing, secrets_dir, out, lines)
    for key, value in target.params:
        lines.append("session.%s = %s" % (key, value))
    out.removal += target.removal
    out.exports += 1
    return "\n".join(lines) + "\n"


def render(setup: OldSetup, devices: Sequence[Device], existing: Existing,
           secrets_dir: str, real: Optional[Dict[str, str]] = None) -> Imported:
    """The tapeshared configuration equivalent to setup on this system."""
    out = Imported(notes=list(setup.notes), advice=list(setup.advice))
    taken = set(n.lower() for n in existing.names)
    sections = [_export(t, devices, real or {}, existing, secrets_dir, taken, out)
                for t in setup.targets]
    body = "\n".join(s for s in sections if s)
    out.text = ("# tapeshared configuration imported from the %s setup\n\n" % setup.source
                + body) if body else ""
    return out
