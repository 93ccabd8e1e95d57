"""Parse IET's /proc/net/iet/volume and /proc/net/iet/session."""

import re
from typing import Dict, List, NamedTuple

_PAIR = re.compile(r"(\w+):(\S*)")

IetLun = NamedTuple("IetLun", [("lun", int), ("iotype", str), ("fields", Dict[str, str])])
IetTarget = NamedTuple("IetTarget", [("tid", int), ("name", str), ("luns", Dict[int, IetLun])])
IetSession = NamedTuple("IetSession", [("sid", str), ("initiator", str),
                                       ("addresses", List[str])])


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


def parse_sessions(text: str) -> Dict[str, List[IetSession]]:
    """target name -> sessions (initiator IQN and connection addresses)."""
    found: Dict[str, List[IetSession]] = {}
    name = None
    for line in text.splitlines():
        fields = _fields(line)
        depth = len(line) - len(line.lstrip("\t"))
        if depth == 0 and "tid" in fields:
            name = fields.get("name", "").lower()
            found.setdefault(name, [])
        elif depth == 1 and name is not None and "sid" in fields:
            found[name].append(IetSession(fields["sid"], fields.get("initiator", ""), []))
        elif depth == 2 and name and found[name] and "ip" in fields:
            found[name][-1].addresses.append(fields["ip"])
    return found
