"""Discovery whose cost grows with tapes, not with disks: a per-daemon memory of
what each SCSI address held, and the classification of uevents against it."""

import logging
import os
import re
from typing import Any, Dict, List, Optional, Set, Tuple

from tapeshared.core.model import EXPORTABLE, Device
from tapeshared.host.udev import MODE_NODE, device_at, device_from_udev

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"\A[0-9]+:[0-9]+:[0-9]+:[0-9]+\Z")
_CHILDREN = ("scsi_generic", "bsg")


def _order(name: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in name.split(":"))


def _type_at(syspath: str) -> Optional[int]:
    """The SCSI peripheral type sysfs shows for the scsi_device at syspath now, None
    if unreadable (read directly: a libudev parent lookup costs ten times more)."""
    try:
        with open(os.path.join(syspath, "type"), "rb") as handle:
            return int(handle.read(16).strip())
    except (OSError, ValueError):
        return None


class Discovery:
    """observe() reads tapes and changers in full on every pass; any other device
    is read once and then reused while its address's entry in /sys/bus/scsi/devices
    keeps its inode (the kernel makes a new sysfs node when a device is removed and
    another added there). Listing that directory is the only per-disk cost.

    classify() says whether a uevent can change what observe() sees, reading at
    most the type of one device: remove events carry no attributes, so it relies
    on the syspaths and addresses of the tapes seen (an unknown device's remove
    is taken as relevant).
    """

    def __init__(self, context: Any = None) -> None:
        self._context = context
        self._cache: Dict[str, Tuple[int, Device]] = {}
        self._names: frozenset = frozenset()
        self._order: List[str] = []
        self._entries: Optional[List[Tuple[str, int]]] = None  # the last listing
        self._found: List[Device] = []  # the last pass's result
        self._volatile: List[Tuple[int, str]] = []  # (index, address): read every pass
        self.kinds: Dict[str, int] = {}  # address -> type last seen there
        self.tapes: Set[str] = set()  # syspaths of the tapes of the last pass
        self.addresses: Set[str] = set()  # every address a tape was seen at
        self.reads = 0  # devices read in full, for the benchmark

    def reset(self) -> None:
        """Forget the cached devices (events may have been lost): the next pass
        reads everything again. What is known about tapes is kept."""
        self._cache, self._entries = {}, None

    def forget(self, name: str) -> None:
        """Drop the cached device at address name: the next pass reads it."""
        self._cache.pop(name, None)
        self._entries = None

    def _read(self, context: Any, name: str) -> Optional[Device]:
        device = device_at(context, name)
        if device is None:
            return None  # gone since the listing
        self._context = self._context or device.context
        self.reads += 1
        item = device_from_udev(device, every=True)
        # LIO's loopback fabric shows a backstore of this host again (tapeshared's
        # own LUN reset makes one for a moment): never a device of its own
        return None if item is None or item.transport == "tcm_loopback" else item

    def _reread(self, context: Any) -> Optional[List[Device]]:
        """The last pass's list with its tapes read again; None if one went away."""
        found = list(self._found)
        for index, name in self._volatile:
            item = self._read(context, name)
            if item is None:
                return None
            found[index] = item
        return found

    def observe(self, context: Any = None) -> List[Device]:
        """Every SCSI device the kernel knows now, sorted by H:C:T:L (as udev.observe)."""
        context = context or self._context  # None: the first device read makes one
        base = os.path.join(context.sys_path if context else "/sys", "bus", "scsi", "devices")
        try:
            # hosts and targets too: filtering here costs more than comparing them
            entries = [(e.name, e.inode()) for e in os.scandir(base)]
        except OSError:  # no SCSI bus at all (no scsi_mod): nothing to see
            entries = []
        # the same entries as last time (the common case): only the tapes are read
        found = self._reread(context) if entries == self._entries else None
        if found is None:
            found = self._full(context, entries)
        self.tapes = set(found[i].syspath for i, _n in self._volatile if found[i].exportable)
        self.addresses.update(n for i, n in self._volatile if found[i].exportable)
        self.kinds.update((n, found[i].type) for i, n in self._volatile)
        return found

    def _full(self, context: Any, entries: List[Tuple[str, int]]) -> List[Device]:
        """A pass over a changed listing: new entries are read, known disks reused."""
        cache: Dict[str, Tuple[int, Device]] = {}
        items: Dict[str, Device] = {}
        for name, inode in entries:
            if not _ADDRESS.match(name):
                continue
            old = self._cache.get(name)
            if old is not None and old[0] == inode:
                cache[name] = old
                items[name] = old[1]
                continue
            item = self._read(context or self._context, name)
            if item is not None:
                items[name] = item
                if not item.exportable:
                    cache[name] = (inode, item)
        self._cache, self._entries = cache, entries
        names = frozenset(items)
        if names != self._names:
            self._names, self._order = names, sorted(names, key=_order)
        found = [items[name] for name in self._order]
        self._found = list(found)
        self._volatile = [(i, name) for i, name in enumerate(self._order) if name not in cache]
        self.kinds = dict((name, items[name].type) for name in self._order)
        return found

    def _is_tape(self, syspath: str, name: str) -> bool:
        return syspath in self.tapes or name in self.addresses

    def _known_other(self, name: str) -> bool:
        kind = self.kinds.get(name)
        return kind is not None and kind not in EXPORTABLE

    def _read_type(self, syspath: str, name: str) -> bool:
        """Whether the scsi_device at syspath (of an add/change/bind) is a tape or changer."""
        kind = _type_at(syspath)
        if kind is None or kind in EXPORTABLE:
            # unreadable: cannot tell it is not a tape, so a pass reads it
            self.forget(name)
            if kind is not None:
                self.addresses.add(name)
            return True
        if self.kinds.get(name) != kind:
            self.forget(name)
            self.kinds[name] = kind
        return False

    def classify(self, device: Any) -> bool:
        """Whether a uevent can change what observe() sees."""
        action = device.action
        subsystem = device.subsystem
        syspath = device.sys_path or ""
        if subsystem == "scsi":
            kind = device.device_type
            if kind == "scsi_host":
                return True
            if kind != "scsi_device":
                return False  # a target comes and goes with its devices
            name = device.sys_name or ""
            if self._is_tape(syspath, name):
                return True
            if action == "remove":
                return not self._known_other(name)
            return self._read_type(syspath, name)
        if subsystem == "scsi_tape":
            return not MODE_NODE.match(device.sys_name or "")
        if subsystem in _CHILDREN:
            parent = os.path.dirname(os.path.dirname(syspath))
            name = os.path.basename(parent)
            if self._is_tape(parent, name):
                return True
            if action == "remove" or not _ADDRESS.match(name) or self._known_other(name):
                # a known disk's type changes only with an event of its own
                return not self._known_other(name)
            return self._read_type(parent, name)
        return True  # scsi_changer, and anything a filter let through
