"""What an old target configuration says, whatever tool wrote it (pure values).

Each parser (ietd, targetcli, tgt) fills these; render turns them, with the
devices found on the live system, into tapeshared [export] sections.
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from tapeshared.core.errors import ConfigError
from tapeshared.core.model import Hctl


@dataclass
class OldLun:
    """One LUN: where the old file says its device is, and whether it is pass-through."""

    lun: int
    where: str                    # file:line (or JSON path) for messages
    hctl: Optional[Hctl] = None   # the address the old file names, or
    path: Optional[str] = None    # the /dev node it names
    passthrough: bool = True      # rawio / pscsi / bs_sg; False: a disk image etc.
    what: str = ""                # how the old file describes a non pass-through LUN


@dataclass
class OldTarget:
    """One target with its LUNs, access lists and CHAP credentials."""

    iqn: str
    where: str
    luns: List[OldLun] = field(default_factory=list)
    incoming: List[Tuple[str, str]] = field(default_factory=list)  # (user, secret)
    outgoing: Optional[Tuple[str, str]] = None
    initiators: List[str] = field(default_factory=list)  # networks; [] = not given
    initiator_iqns: List[str] = field(default_factory=list)
    params: List[Tuple[str, str]] = field(default_factory=list)  # session keys
    removal: List[str] = field(default_factory=list)  # what to take out of the old setup
    span: Tuple[int, int] = (0, 0)  # ietd.conf: the stanza's first and last line


@dataclass
class OldSetup:
    """A parsed old configuration: its targets and what it holds we do not carry."""

    source: str                   # "ietd", "targetcli", "tgt"
    targets: List[OldTarget] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    advice: List[str] = field(default_factory=list)  # carried, but worth a look


def error(path: str, line: Optional[int], message: str) -> ConfigError:
    """A file:line error for an old file that cannot be read safely."""
    return ConfigError(message, path=path, line=line)


_CHAP_LINE = re.compile(r"\A(\s*(?:incominguser|outgoinguser)\s+\S+\s+)\S+", re.I)


def masked(line: str) -> str:
    """A line as it may be printed: a CHAP secret replaced by asterisks."""
    return _CHAP_LINE.sub(lambda m: m.group(1) + "********", line)


def shown(text: str, limit: int = 60) -> str:
    """An untrusted string as it may appear in a message: repr'd and cut."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
