"""ietd.conf: render tapeshared's managed block and merge it, keeping the rest."""

import re
from typing import Dict, List, Optional, Tuple

from tapeshared.core.errors import ManagedFileError
from tapeshared.core.model import DesiredState, Hctl, TargetState

BEGIN = "# BEGIN tapeshared managed block: generated, edits inside are overwritten"
END = "# END tapeshared managed block"
# the BEGIN line after a line break we had to add (the file ended without one):
# that line break is part of our block, so removing the block restores every byte
JOINED = BEGIN + " (the line break before it was added by tapeshared)"
MASK = "********"
_LUN_LINE = re.compile(r"\A\s*lun\s+([0-9]+)\s+(\S+)", re.IGNORECASE)
_SECRET = re.compile(r"\A\s*(?:incominguser|outgoinguser)\s+\S+\s+\S", re.IGNORECASE)
_ARGS = re.compile(r"\AH=([0-9]+),C=([0-9]+),I=([0-9]+),L=([0-9]+),Type=rawio\Z",
                   re.IGNORECASE)


# a LUN not exported because its last address holds another device (see _target)
_HELD = re.compile(r"\A\s*#\s*Lun\s+([0-9]+)\s.*; last address (\S+)\Z", re.IGNORECASE)


def _target_line(line: str) -> Optional[str]:
    words = line.split()
    if len(words) >= 2 and words[0].lower() == "target" and not line.lstrip().startswith("#"):
        return words[1].lower()
    return None


def lines_of(text: str) -> List[str]:
    """The lines as ietd reads them (only "\\n" ends one), each with its ending."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def holds_secrets(data: bytes) -> bool:
    """Whether a file's text has a CHAP secret (an IncomingUser/OutgoingUser line)."""
    return any(_SECRET.match(line) for line in data.decode("utf-8", "replace").split("\n"))


def split(text: str, path: str) -> Tuple[str, Optional[str], str]:
    """(before, block or None, after), before + block + after == text; refuse
    a file whose markers are not sane."""
    lines = lines_of(text)
    begins = [i for i, line in enumerate(lines) if line.rstrip("\r\n") in (BEGIN, JOINED)]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == END]
    if not begins and not ends:
        return text, None, ""
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ManagedFileError(
            "%s: the tapeshared markers are damaged (%d BEGIN, %d END lines); fix or "
            "remove them by hand, nothing was written" % (path, len(begins), len(ends)))
    start, stop = begins[0], ends[0]
    before, block = "".join(lines[:start]), "".join(lines[start:stop + 1])
    if lines[start].rstrip("\r\n") == JOINED and before.endswith("\n"):
        before, block = before[:-1], "\n" + block
    return before, block, "".join(lines[stop + 1:])


def check_foreign(before: str, after: str, managed: List[str], path: str) -> None:
    """Refuse to merge when text outside the block would corrupt or shadow ours."""
    for number, line in enumerate(outside(before, after).split("\n"), 1):
        name = _target_line(line)
        if name in managed:
            raise ManagedFileError(
                "%s: target %s is defined outside the tapeshared block (line %d); "
                "remove it or rename the export, nothing was written"
                % (path, name, number))
    for line in after.split("\n"):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if _target_line(line) is None:
            raise ManagedFileError(
                "%s: %r follows the tapeshared block without a Target line, so ietd "
                "would read it as part of our last target; nothing was written"
                % (path, text))
        break


def outside(before: str, after: str) -> str:
    """The text outside the block: before's last line stays a line of its own."""
    if before and after and not before.endswith("\n"):
        return before + "\n" + after
    return before + after


def previous_luns(block: Optional[str]) -> Dict[Tuple[str, int], Hctl]:
    """The (iqn, lun) -> H:C:I:L that the block currently exports."""
    found: Dict[Tuple[str, int], Hctl] = {}
    target = None
    for line in (block or "").splitlines():
        name = _target_line(line)
        if name is not None:
            target = name
            continue
        match = _LUN_LINE.match(line) or _HELD.match(line)
        if target and match:
            args = _ARGS.match(match.group(2))
            if args:
                found[(target, int(match.group(1)))] = Hctl(*(int(g) for g in args.groups()))
    return found


def lun_args(hctl: Hctl) -> str:
    """The rawio Lun arguments IET's pass-through patch expects."""
    return "H=%d,C=%d,I=%d,L=%d,Type=rawio" % (hctl.host, hctl.channel, hctl.target,
                                                hctl.lun)


def _target(target: TargetState, mask: bool) -> List[str]:
    out = ["Target %s" % target.iqn,
           "\t# export %s, managed by tapeshared" % target.name]
    for chap in target.incoming:
        out.append("\tIncomingUser %s %s" % (chap.user, MASK if mask else chap.secret))
    if target.outgoing:
        out.append("\tOutgoingUser %s %s" % (target.outgoing.user,
                                            MASK if mask else target.outgoing.secret))
    for lun in target.luns:
        if lun.hctl is None and lun.last is not None:
            # a comment, so ietd never binds the device now there; read back as
            # the LUN's last address, so every pass checks that address again
            out.append("\t# Lun %d (%s): %s, not exported; last address %s" % (
                lun.lun, lun.match, lun.status, lun_args(lun.last)))
            continue
        if lun.hctl is None:
            out.append("\t# Lun %d (%s): %s, not exported" % (lun.lun, lun.match, lun.status))
            continue
        # the same text whether present or kept: a device going away must not
        # change the file (a change would restart the target)
        out.append("\t# Lun %d is %s" % (lun.lun, lun.match))
        out.append("\tLun %d %s" % (lun.lun, lun_args(lun.hctl)))
    out.append("\tType 1")
    for key, value in target.params:
        out.append("\t%s %s" % (key, value))
    return out


def render_block(state: DesiredState, mask: bool = False) -> str:
    """The managed block for every target, sorted by IQN."""
    lines = [BEGIN]
    for target in sorted(state.targets, key=lambda t: t.iqn):
        lines.extend(_target(target, mask))
    lines.append(END)
    return "\n".join(lines) + "\n"


def merge(text: Optional[str], state: DesiredState, path: str, mask: bool = False) -> str:
    """The whole new ietd.conf: the old text with only our block replaced.

    Every byte outside the block is kept; with no target the block goes, which
    gives back the file as it was before tapeshared touched it.
    """
    before, _block, after = split(text or "", path)
    check_foreign(before, after, [t.iqn for t in state.targets], path)
    if not state.targets:
        return outside(before, after)
    block = render_block(state, mask)
    if before and not before.endswith("\n"):
        # a last line without a line break: ours goes first, marked as ours
        block = "\n" + JOINED + block[len(BEGIN):]
    return before + block + after
