"""The reconciler: observe afresh, compute desired state, plan, apply, verify."""

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

from tapeshared.desired import desired_state, firewall_spec
from tapeshared.fwrules import FirewallSpec, FirewallStatus
from tapeshared.model import Config, DesiredState, Device, Hctl
from tapeshared.plan import Plan

try:  # Protocol is 3.8+; on 3.6 the port is documented by this class alone
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    Protocol = object  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What a target backend (iet, lio, tgt) offers the reconciler."""

    name: str

    def previous(self) -> Dict[Tuple[str, int], Hctl]: ...

    def plan(self, desired: DesiredState) -> Plan: ...

    def apply(self, plan: Plan, desired: DesiredState) -> List[str]: ...

    def unexport(self) -> Plan: ...

    # read-only views for `status`
    def live(self) -> Any: ...

    def problems(self, desired: DesiredState, live: Any) -> List[str]: ...

    def sessions(self) -> Dict[str, List[Any]]: ...


class Firewall(Protocol):
    """What a firewall backend (iptables, nftables) offers the reconciler."""

    def plan(self, spec: FirewallSpec) -> List[str]: ...

    def ensure(self, spec: FirewallSpec) -> List[str]: ...

    def inspect(self, spec: FirewallSpec) -> FirewallStatus: ...


@dataclass
class Report:
    """One reconcile pass: what was seen, planned, done and what went wrong."""

    devices: Sequence[Device] = ()
    desired: DesiredState = field(default_factory=lambda: DesiredState(targets=()))
    plan: Plan = field(default_factory=Plan)
    portals: Sequence[str] = ()
    firewall: Optional[FirewallSpec] = None
    firewall_plan: List[str] = field(default_factory=list)
    actions: List[str] = field(default_factory=list)
    error: Optional[str] = None
    started: float = 0.0
    seconds: float = 0.0


class Reconciler:
    """Level-triggered: every call looks at everything, whatever woke it."""

    def __init__(self, config: Config, backend: Backend, scan: Callable[[], List[Device]],
                 lock: Callable[[], ContextManager[Any]],
                 firewall: Optional[Firewall] = None,
                 portals: Callable[[], List[str]] = list,
                 persist: Optional[Callable[[FirewallSpec], List[str]]] = None) -> None:
        self.config = config
        self.backend = backend
        self.scan = scan
        self.lock = lock
        self.firewall = firewall
        self.portals = portals
        self.persist = persist

    def observe(self) -> Tuple[List[Device], DesiredState]:
        """Devices now and the state the target should be in."""
        devices = self.scan()
        desired = desired_state(self.config, devices, self.backend.previous())
        if self.config.globals.portal:
            desired = replace(desired, portals=tuple(self.portals()))
        return devices, desired

    def plan(self) -> Report:
        """Observe and plan without changing anything."""
        report = Report(started=time.time())
        begin = time.monotonic()
        report.devices, report.desired = self.observe()
        report.plan = self.backend.plan(report.desired)
        if self.firewall is not None:
            report.portals = report.desired.portals
            report.firewall = firewall_spec(self.config, report.portals)
            report.firewall_plan = self.firewall.plan(report.firewall)
        report.seconds = time.monotonic() - begin
        return report

    @staticmethod
    def pending(report: Report) -> bool:
        """Whether an apply would change anything."""
        return not report.plan.empty or bool(report.firewall_plan)

    def apply(self) -> Report:
        """Observe, plan and apply under the lock; a second call with no change is a no-op."""
        begin = time.monotonic()
        with self.lock():
            report = self.plan()
            for problem in report.desired.problems:
                log.warning("%s", problem)
            # the firewall first: a narrowed initiator list closes before the
            # target changes, a widened one opens as the target comes up
            if self.firewall is not None and report.firewall is not None:
                if report.firewall_plan:
                    report.actions.extend(self.firewall.ensure(report.firewall))
                if self.persist is not None:
                    report.actions.extend(self.persist(report.firewall))
            if not report.plan.empty:
                for reason in report.plan.reasons:
                    log.info("change needed: %s", reason)
                report.actions.extend(self.backend.apply(report.plan, report.desired))
        report.seconds = time.monotonic() - begin
        return report
