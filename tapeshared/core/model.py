"""Value types shared by every layer: devices, configuration, desired state."""

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

TYPE_TAPE = 1
TYPE_CHANGER = 8
TYPE_NAMES = {TYPE_TAPE: "tape", TYPE_CHANGER: "changer", 0: "disk", 3: "processor",
              5: "cd/dvd", 7: "optical", 12: "raid", 13: "enclosure", 14: "rbc"}
# Only these are exported; every other SCSI device is still observed, because
# one may take a kept LUN's last address (a squatter).
EXPORTABLE = (TYPE_TAPE, TYPE_CHANGER)
_HCTL = re.compile(r"\A([0-9]+):([0-9]+):([0-9]+):([0-9]+)\Z")


@dataclass(frozen=True, order=True)
class Hctl:
    """A SCSI address (host, channel, target id, lun): it moves, never a key."""

    host: int
    channel: int
    target: int
    lun: int

    def __str__(self) -> str:
        return "%d:%d:%d:%d" % (self.host, self.channel, self.target, self.lun)

    @classmethod
    def parse(cls, text: str) -> "Hctl":
        """Parse 'H:C:T:L' (decimal, any width); raise ValueError otherwise."""
        found = _HCTL.match(text.strip())
        if not found:
            raise ValueError("not a SCSI address H:C:T:L: %r" % text)
        return cls(*(int(p, 10) for p in found.groups()))


@dataclass(frozen=True)
class Device:
    """A SCSI tape drive or medium changer as observed in sysfs/udev."""

    hctl: Hctl
    type: int
    vendor: str = ""
    model: str = ""
    rev: str = ""
    serial: Optional[str] = None
    wwn: Optional[str] = None
    st: Optional[str] = None
    nst: Optional[str] = None
    sg: Optional[str] = None
    bsg: Optional[str] = None
    ch: Optional[str] = None
    by_id: Tuple[str, ...] = ()
    transport: str = "unknown"
    remote: bool = False
    syspath: str = ""
    problems: Tuple[str, ...] = ()
    unready: Tuple[str, ...] = ()  # nodes udev has not made yet (not char devices)

    @property
    def kind(self) -> str:
        if self.type < 0:
            return "type-unknown"
        return TYPE_NAMES.get(self.type, "type-%d" % self.type)

    @property
    def exportable(self) -> bool:
        """A tape drive or a medium changer (the only kinds ever exported)."""
        return self.type in EXPORTABLE

    def __str__(self) -> str:
        return "%s %s (%s)" % (self.kind, self.hctl, self.identity or "no identity")

    @property
    def identity(self) -> Optional[str]:
        """The stable key: 'serial:X' if the device has one, else 'wwn:Y'."""
        if self.serial:
            return "serial:" + self.serial
        if self.wwn:
            return "wwn:" + self.wwn
        return None

    @property
    def nodes(self) -> Dict[str, str]:
        """Its device nodes by role (st, nst, sg, bsg, ch)."""
        found = {}
        for role in NODE_ROLES:
            node = getattr(self, role)
            if node:
                found[role] = node
        return found


NODE_ROLES = ("st", "nst", "sg", "bsg", "ch")


def device_record(device: Device) -> Dict[str, Any]:
    """A device as JSON-ready data (scan --json, the state file, status): all public."""
    return {
        "hctl": str(device.hctl), "type": device.kind, "vendor": device.vendor,
        "model": device.model, "rev": device.rev, "serial": device.serial,
        "wwn": device.wwn, "identity": device.identity, "nodes": device.nodes,
        "by_id": list(device.by_id), "transport": device.transport,
        "remote": device.remote, "location": "remote" if device.remote else "local",
        "problems": list(device.problems),
    }


@dataclass(frozen=True)
class Match:
    """How a configured LUN finds its device: by unit serial or by WWN."""

    kind: str  # "serial" | "wwn"
    value: str

    def __str__(self) -> str:
        return "%s:%s" % (self.kind, self.value)

    def matches(self, device: Device) -> bool:
        if self.kind == "serial":
            return device.serial == self.value
        return device.wwn == self.value


@dataclass(frozen=True)
class LunConfig:
    """One device of an export and the LUN it is given."""

    lun: int
    match: Match


@dataclass(frozen=True)
class Chap:
    """A CHAP user and its secret (never logged, masked in diffs)."""

    user: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class ExportConfig:
    """One [export NAME] section: an iSCSI target and its LUNs."""

    name: str
    iqn: str
    luns: Tuple[LunConfig, ...]
    initiators: Tuple[str, ...]
    initiator_iqns: Tuple[str, ...] = ()
    incoming: Tuple[Chap, ...] = ()
    outgoing: Optional[Chap] = None
    absent: str = "keep"  # keep | remove
    allow_remote: bool = False
    params: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GlobalConfig:
    """The [global] section."""

    backend: str = "iet"
    apply_mode: str = "restart"
    ietd_conf: str = "/etc/ietd.conf"
    initiators_allow: str = "/etc/initiators.allow"
    initiators_deny: str = "/etc/initiators.deny"
    manage_access: bool = True
    iet_volume: str = "/proc/net/iet/volume"
    iet_session: str = "/proc/net/iet/session"
    restart_command: Tuple[str, ...] = ("/etc/init.d/iscsi-target", "restart")
    ietadm: Tuple[str, ...] = ("ietadm",)
    lio_root: str = "/sys/kernel/config/target"
    tgtadm: Tuple[str, ...] = ("tgtadm",)
    proc_net_tcp: str = "/proc/net/tcp"
    proc_net_tcp6: str = "/proc/net/tcp6"
    restart_retries: int = 3
    verify_timeout: float = 10.0
    portal: str = ""
    port: int = 3260
    iqn_prefix: str = "iqn.2007-04.com.example"
    state_dir: str = "/run/tapeshared"
    lock_file: str = "/run/tapeshared/apply.lock"
    lock_timeout: float = 30.0
    firewall: str = "none"
    firewall_chain: str = "TAPESHARED"
    firewall_parent: str = "INPUT"
    firewall_save_file: str = ""
    firewall_save_file6: str = ""
    debounce: float = 0.15
    debounce_max: float = 2.0
    resync_interval: float = 60.0
    stop_action: str = "keep"  # keep | unexport


@dataclass(frozen=True)
class Config:
    """The whole configuration, with the files it came from."""

    globals: GlobalConfig
    exports: Tuple[ExportConfig, ...]
    sources: Tuple[str, ...] = ()


# LUN states that are refusals: a clone, a squatter at a kept address, one
# drive named twice. They are problems in status until the cause is gone.
REFUSED = ("ambiguous", "squatted", "duplicate")


@dataclass(frozen=True)
class LunState:
    """What one configured LUN should point at now, and why."""

    lun: int
    match: Match
    hctl: Optional[Hctl]
    device: Optional[Device]
    status: str  # present | kept | absent | ambiguous | squatted | duplicate
    note: str = ""
    # squatted: the last address, still remembered (never exported) so that
    # every pass checks it again and status reports it until the device returns
    last: Optional[Hctl] = None


@dataclass(frozen=True)
class TargetState:
    """What one export should look like on the target now."""

    name: str
    iqn: str
    luns: Tuple[LunState, ...]
    initiators: Tuple[str, ...]
    initiator_iqns: Tuple[str, ...]
    incoming: Tuple[Chap, ...]
    outgoing: Optional[Chap]
    params: Tuple[Tuple[str, str], ...]

    @property
    def exported_luns(self) -> Tuple[LunState, ...]:
        """LUNs that are rendered into the target configuration."""
        return tuple(lun for lun in self.luns if lun.hctl is not None)

    @property
    def refused(self) -> Tuple[LunState, ...]:
        """LUNs not exported because exporting would risk the wrong device."""
        return tuple(lun for lun in self.luns if lun.status in REFUSED)

    @property
    def live_luns(self) -> Tuple[LunState, ...]:
        """LUNs whose device is present, so the target must show them."""
        return tuple(lun for lun in self.luns if lun.status == "present")


@dataclass(frozen=True)
class DesiredState:
    """Every managed target, sorted by IQN, plus problems worth a log line."""

    targets: Tuple[TargetState, ...]
    problems: Tuple[str, ...] = ()
    portals: Tuple[str, ...] = ()  # addresses the portal has now (empty: all)


@dataclass(frozen=True)
class Session:
    """An initiator logged in to a target, with its connection addresses."""

    initiator: str
    addresses: Tuple[str, ...] = ()
