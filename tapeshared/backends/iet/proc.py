"""Parse IET's /proc/net/iet/volume and /proc/net/iet/session."""

import ipaddress
import re
from typing import Dict, List, NamedTuple, Optional, Set

from tapeshared.core.model import Hctl, Session

_PAIR = re.compile(r"(\w+):(\S*)")
# The rawio LUN's address, as its Lun arguments give it (H=,C=,I=,L=).
_ADDRESS = re.compile(r"\bH=([0-9]+),C=([0-9]+),I=([0-9]+),L=([0-9]+)", re.IGNORECASE)


class IetLun(NamedTuple):
    """One LUN line of /proc/net/iet/volume."""

    lun: int
    iotype: str
    fields: Dict[str, str]

    @property
    def hctl(self) -> Optional[Hctl]:
        """The SCSI address the rawio LUN opened: `path:H:C:I:L`, or the Lun
        arguments (`H=,C=,I=,L=`) in path: or args:; None if not shown."""
        for key in ("path", "args"):
            value = self.fields.get(key, "")
            found = _ADDRESS.search(value)
            if found:
                return Hctl(*(int(g) for g in found.groups()))
            try:
                return Hctl.parse(value)
            except ValueError:
                continue
        return None

    @property
    def path(self) -> str:
        """What the LUN's `path:` names (a device node for blockio, an address)."""
        return self.fields.get("path", "")


class IetTarget(NamedTuple):
    """One target of /proc/net/iet/volume."""

    tid: int
    name: str
    luns: Dict[int, IetLun]


def _fields(line: str) -> Dict[str, str]:
    return dict(_PAIR.findall(line))


def parse_volume(text: str) -> Dict[str, IetTarget]:
    """target name -> IetTarget(tid, luns) from /proc/net/iet/volume."""
    targets: Dict[str, IetTarget] = {}
    current = None
    for line in text.splitlines():
        fields = _fields(line)
        if not line.startswith(("\t", " ")) and "tid" in fields and "name" in fields:
            current = IetTarget(int(fields["tid"]), fields["name"].lower(), {})
            targets[current.name] = current
        elif current is not None and "lun" in fields and fields["lun"].isdigit():
            lun = int(fields["lun"])
            current.luns[lun] = IetLun(lun, fields.get("iotype", ""), fields)
    return targets


def parse_sessions(text: str) -> Dict[str, List[Session]]:
    """target name -> sessions (initiator IQN and connection addresses)."""
    found: Dict[str, List[Session]] = {}
    name = None
    for line in text.splitlines():
        fields = _fields(line)
        depth = len(line) - len(line.lstrip("\t"))
        if depth == 0 and "tid" in fields:
            name = fields.get("name", "").lower()
            found.setdefault(name, [])
        elif depth == 1 and name is not None and "sid" in fields:
            found[name].append(Session(fields.get("initiator", "")))
        elif depth == 2 and name and found[name] and "ip" in fields:
            last = found[name][-1]
            found[name][-1] = Session(last.initiator, last.addresses + (fields["ip"],))
    return found


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    # /proc/net/tcp prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_listeners(text: str, port: int) -> Set[str]:
    """Addresses with a TCP socket listening on port, from /proc/net/tcp{,6}."""
    found = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:
            continue
        address, _sep, hex_port = fields[1].partition(":")
        try:
            if int(hex_port, 16) == port:
                found.add(_hex_address(address))
        except ValueError:
            continue
    return found
