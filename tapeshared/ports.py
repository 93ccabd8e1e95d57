"""The seams (protocols) between the reconciler and the adapters it is given."""

import sys
from typing import ContextManager, List, Sequence, Tuple

from tapeshared.backends.common import Snapshot
from tapeshared.core.model import DesiredState, Device
from tapeshared.core.plan import Plan
from tapeshared.firewall.spec import FirewallPlan, FirewallSpec, FirewallState, FirewallStatus

if sys.version_info >= (3, 8):
    from typing import Protocol
else:  # pragma: no cover - on 3.6 the ports are documented by these classes alone
    Protocol = object


class Backend(Protocol):
    """A target backend (iet, lio, tgt). One read per pass: `observe`; the rest
    of a pass is pure over that snapshot; `apply` alone changes the target."""

    name: str

    def observe(self, managed: Sequence[str]) -> Snapshot:
        """Read the target once: the managed IQNs' targets and our own ones."""
        ...

    def plan(self, snapshot: Snapshot, desired: DesiredState) -> Plan:
        """What apply must do to make the target match desired (pure)."""
        ...

    def problems(self, snapshot: Snapshot, desired: DesiredState) -> List[str]:
        """How the target differs from what must be live now (pure; status, verify)."""
        ...

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]:
        """Carry the plan out, then re-read the target to verify; the actions done."""
        ...


class Firewall(Protocol):
    """A firewall backend (iptables, nftables), with the same observe/plan/apply shape."""

    name: str

    def observe(self, spec: FirewallSpec) -> FirewallState:
        """Read the rules once (per family; a family that fails is reported in it)."""
        ...

    def plan(self, state: FirewallState, spec: FirewallSpec) -> FirewallPlan:
        """What apply must do (pure)."""
        ...

    def status(self, state: FirewallState, spec: FirewallSpec) -> FirewallStatus:
        """Desired versus actual rules (pure)."""
        ...

    def apply(self, plan: FirewallPlan, spec: FirewallSpec) -> List[str]:
        """Carry the plan out and verify by reading the rules back."""
        ...

    def family_states(self, state: FirewallState,
                      spec: FirewallSpec) -> List[Tuple[str, str, str]]:
        """Per table label: (label, "in step" | "out of step" | "failing", detail) (pure)."""
        ...


class Devices(Protocol):
    """Where devices come from (udev discovery)."""

    def __call__(self) -> List[Device]:
        """Every tape drive and medium changer the kernel knows now."""
        ...


class Lock(Protocol):
    """The apply lock: one apply at a time across the CLI and the daemon."""

    def __call__(self) -> ContextManager[object]:
        """A context manager holding the lock."""
        ...


class Watch(Protocol):
    """An event source for the daemon's loop (udev, netlink): an fd that only marks
    the state dirty."""

    def fileno(self) -> int:
        """The fd to select on; it may change after drain() re-opened the source."""
        ...

    def drain(self) -> bool:
        """Read what is pending without blocking; True if a pass is needed."""
        ...

    def close(self) -> None:
        """Release the fd."""
        ...
