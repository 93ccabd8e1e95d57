"""The reconciler: observe afresh, compute desired state, plan, apply, verify."""

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Sequence, Tuple

from tapeshared.backends.common import Snapshot, sessions
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import TransientError
from tapeshared.core.model import Config, DesiredState, Device, Session
from tapeshared.core.plan import Plan
from tapeshared.firewall.spec import FirewallPlan, FirewallSpec, FirewallState, spec_for
from tapeshared.ports import Backend, Devices, Firewall, Lock, Protocol

log = logging.getLogger(__name__)


class KernelParts(Protocol):
    """A backend's kernel parts (LIO: modules, configfs, the fabric)."""

    def missing(self) -> list: ...  # read-only: the parts not there (lioparts.Part)

    def ensure(self) -> List[str]: ...  # bring up; raises a TransientError if still missing


@dataclass
class Report:
    """One reconcile pass: what was seen, planned, done and what went wrong."""

    devices: Sequence[Device] = ()
    desired: DesiredState = field(default_factory=lambda: DesiredState(targets=()))
    snapshot: Optional[Snapshot] = None
    plan: Plan = field(default_factory=Plan)
    portals: Sequence[str] = ()
    firewall: Optional[FirewallSpec] = None
    firewall_state: Optional[FirewallState] = None
    firewall_plan: FirewallPlan = field(default_factory=FirewallPlan)
    actions: List[str] = field(default_factory=list)
    error: Optional[str] = None
    started: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class LunView:
    """One LUN as the target shows it now: when its device was last re-pointed
    (reset before mapping; None: no reset on record) and who was told."""

    lun: int
    reset_at: Optional[float] = None
    reset_scope: str = ""  # "drive": the first initiator command; "target": every one


@dataclass(frozen=True)
class ExportView:
    """One export as the target shows it now (for status)."""

    name: str
    iqn: str
    exported: bool
    verified: bool
    problems: Sequence[str]
    sessions: Sequence[Session]
    luns: Sequence[LunView] = ()


class Reconciler:
    """Level-triggered: every call looks at everything, whatever woke it."""

    def __init__(self, config: Config, backend: Backend, devices: Devices, lock: Lock,
                 firewall: Optional[Firewall] = None,
                 portals: Callable[[], List[str]] = list,
                 parts: Optional[KernelParts] = None) -> None:
        self.config = config
        self.parts = parts
        self.backend = backend
        self.devices = devices
        self.lock = lock
        self.firewall = firewall
        self.portals = portals
        self.reported = set()  # type: set

    def report_problems(self, problems: Sequence[str]) -> None:
        """A problem at WARNING once when it appears, at INFO when it clears.

        The daemon applies on every resync; a squatter or a missing tape would
        otherwise repeat the same warning every few minutes for as long as it lasts.
        """
        now = set(problems)
        for problem in problems:
            if problem in self.reported:
                log.debug("still: %s", problem)
            else:
                log.warning("%s", problem)
        for problem in sorted(self.reported - now):
            log.info("cleared: %s", problem)
        self.reported = now

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def observe(self) -> Report:
        """Read devices, the target and the firewall once each; compute desired."""
        report = Report(started=time.time())
        begin = time.monotonic()
        report.devices = self.devices()
        managed = [export.iqn for export in self.config.exports]
        report.snapshot = self.backend.observe(managed)
        report.desired = desired_state(self.config, report.devices,
                                       report.snapshot.previous)
        if self.config.globals.portal:
            report.portals = tuple(self.portals())
            report.desired = replace(report.desired, portals=tuple(report.portals))
        if self.firewall is not None:
            report.firewall = spec_for(self.config, report.portals)
            report.firewall_state = self.firewall.observe(report.firewall)
        report.seconds = time.monotonic() - begin
        return report

    def plan(self) -> Report:
        """Observe and plan without changing anything."""
        report = self.observe()
        begin = time.monotonic() - report.seconds
        assert report.snapshot is not None
        report.plan = self.backend.plan(report.snapshot, report.desired)
        if self.firewall is not None and report.firewall is not None:
            assert report.firewall_state is not None
            report.firewall_plan = self.firewall.plan(report.firewall_state, report.firewall)
        report.seconds = time.monotonic() - begin
        return report

    @staticmethod
    def pending(report: Report) -> bool:
        """Whether an apply would change anything."""
        return not report.plan.empty or not report.firewall_plan.empty

    def apply(self) -> Report:
        """Observe, plan and apply under the lock; a second call with no change is a no-op.

        The backend's kernel parts are brought up first (a cold boot may start
        the daemon before the LIO modules load); one still missing raises a
        TransientError naming it, so the pass is retried.
        A firewall family that cannot be brought in step now (a missing parent
        chain, no IPv6, a firewall command failing at apply) does not stop the
        target's apply; it is raised afterwards as a TransientError, so it is
        retried.
        """
        begin = time.monotonic()
        done = self.parts.ensure() if self.parts is not None else []
        with self.lock():
            report = self.plan()
            report.actions.extend(done)
            self.report_problems(report.desired.problems)
            # the firewall first: a narrowed initiator list closes before the
            # target changes, a widened one opens as the target comes up
            failed = None  # type: Optional[TransientError]
            if self.firewall is not None and report.firewall is not None:
                if not report.firewall_plan.empty:
                    try:
                        report.actions.extend(self.firewall.apply(report.firewall_plan,
                                                                  report.firewall))
                    except TransientError as exc:
                        # the host's firewall failed now: the target's change
                        # still goes in (it never widens the port), the error
                        # is raised after it, so the pass is retried
                        failed = exc
            if not report.plan.empty:
                for reason in report.plan.reasons:
                    log.info("change needed: %s", reason)
                report.actions.extend(self.backend.apply(report.plan, report.desired))
        report.seconds = time.monotonic() - begin
        if failed is not None:
            raise failed
        if report.firewall_plan.errors:
            raise TransientError("firewall: %s" % "; ".join(
                "%s: %s" % item for item in report.firewall_plan.errors))
        return report

    def unexport(self) -> List[str]:
        """Remove every managed target (the daemon's stop with stop_action = unexport)."""
        none = DesiredState(targets=())
        with self.lock():
            managed = [export.iqn for export in self.config.exports]
            plan = self.backend.plan(self.backend.observe(managed), none)
            return [] if plan.empty else self.backend.apply(plan, none)

    def views(self, report: Report) -> List[ExportView]:
        """Each desired export as the observed target shows it (pure over report)."""
        found = []
        snapshot = report.snapshot
        connected = sessions(snapshot) if snapshot is not None else {}
        for target in report.desired.targets:
            if snapshot is None:
                found.append(ExportView(target.name, target.iqn, False, False,
                                        ["the target was not read"], ()))
                continue
            # a refused LUN (squatter, clone, one drive named twice) is never
            # "verified": the target cannot show what must not be exported
            wrong = ["LUN %d (%s): %s" % (lun.lun, lun.match, lun.note)
                     for lun in target.refused]
            wrong += self.backend.problems(snapshot, DesiredState(targets=(target,)))
            exported = snapshot.running and target.iqn in snapshot.targets
            found.append(ExportView(target.name, target.iqn, exported,
                                    exported and not wrong, wrong,
                                    tuple(connected.get(target.iqn, ())),
                                    _lun_views(snapshot, target.iqn)))
        return found


def _lun_views(snapshot: Snapshot, iqn: str) -> Tuple[LunView, ...]:
    """The live LUNs of one target, with the reset each device got before mapping."""
    live = snapshot.targets.get(iqn)
    if live is None:
        return ()
    return tuple(LunView(number, lun.reset_at, lun.reset_scope)
                 for number, lun in sorted(live.luns.items()))
