"""tgt's `tgtadm --op show` output, parsed (pure): targets, LUNs, ACLs, accounts, nexuses."""

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from tapeshared.core.model import Session

MARK = "tapeshared"
_TARGET = re.compile(r"\ATarget ([0-9]+): (\S+)\s*\Z")


@dataclass
class Lun:
    """One logical unit as `--op show` lists it."""

    number: int
    kind: str = ""
    scsi_id: str = ""
    bstype: str = ""
    path: str = ""


@dataclass
class Target:
    """One tgt target as `--op show` lists it."""

    tid: int
    iqn: str
    luns: Dict[int, Lun] = field(default_factory=dict)
    incoming: List[str] = field(default_factory=list)
    outgoing: List[str] = field(default_factory=list)
    acl: List[str] = field(default_factory=list)
    sessions: List[Session] = field(default_factory=list)

    @property
    def ours(self) -> bool:
        lun0 = self.luns.get(0)
        return lun0 is not None and lun0.scsi_id == MARK


@dataclass
class TgtState:
    """Everything tgtd shows, plus what the adapter learnt about open files."""

    targets: Dict[int, Target] = field(default_factory=dict)
    accounts: Set[str] = field(default_factory=set)
    stale: Set[str] = field(default_factory=set)  # backing paths tgtd holds stale

    def by_iqn(self, iqn: str) -> Optional[Target]:
        found = [t for t in self.targets.values() if t.iqn == iqn]
        return found[0] if found else None


def parse_show(text: str) -> Dict[int, Target]:
    """tid -> Target from `tgtadm --lld iscsi --mode target --op show`."""
    targets: Dict[int, Target] = {}
    target: Optional[Target] = None
    section = ""
    lun: Optional[Lun] = None
    for raw in text.splitlines():
        line = raw.strip()
        head = _TARGET.match(raw)
        if head:
            target = Target(int(head.group(1)), head.group(2))
            targets[target.tid] = target
            section, lun = "", None
            continue
        if target is None or not line:
            continue
        if line.endswith(" information:"):
            section = line[:-len(" information:")]
            continue
        key, sep, value = line.partition(": ")
        if section == "I_T nexus":
            if key == "I_T nexus":
                target.sessions.append(Session(""))
            elif key == "Initiator" and target.sessions:
                name = value.split(" alias: ")[0].strip()
                target.sessions[-1] = Session(name, target.sessions[-1].addresses)
            elif key == "IP Address" and target.sessions:
                last = target.sessions[-1]
                target.sessions[-1] = Session(last.initiator,
                                              last.addresses + (value.strip(),))
        elif section == "LUN":
            if key == "LUN" and value.strip().isdigit():
                lun = Lun(int(value))
                target.luns[lun.number] = lun
            elif lun is not None and sep:
                attr = {"Type": "kind", "SCSI ID": "scsi_id", "Backing store type": "bstype",
                        "Backing store path": "path"}.get(key)
                if attr:
                    setattr(lun, attr, value.strip())
        elif section == "Account":
            if line.endswith(" (outgoing)"):
                target.outgoing.append(line[:-len(" (outgoing)")])
            else:
                target.incoming.append(line)
        elif section == "ACL":
            target.acl.append(line)
    return targets


def parse_accounts(text: str) -> Set[str]:
    """Account names from `tgtadm --lld iscsi --mode account --op show`."""
    return set(line.strip() for line in text.splitlines()
               if line.strip() and not line.strip().endswith(":"))


