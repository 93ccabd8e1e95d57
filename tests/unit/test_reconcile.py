"""The reconciler over fake ports: one read of each part per pass, the firewall
before the target, everything under the lock, a second pass with no change a no-op,
a firewall family that cannot be fixed now retried without holding the target back."""

import logging
from contextlib import contextmanager
from typing import List

import pytest
from support import builders
from support.builders import IQN

from tapeshared.backends.common import LiveLun, LiveTarget, Snapshot
from tapeshared.core.errors import CommandError, TransientError
from tapeshared.core.model import (
    Hctl,
)
from tapeshared.core.plan import Plan
from tapeshared.firewall.spec import FirewallPlan, FirewallState, FirewallStatus
from tapeshared.reconcile import Reconciler

CONFIG = builders.config(builders.export(initiators=("192.0.2.10",)))
TAPE = builders.tape("1:0:6:0")


class FakeBackend:
    """A target that holds whatever was last applied."""

    name = "fake"

    def __init__(self, events: List[str]) -> None:
        self.events = events
        self.exported: dict = {}
        self.reads = 0

    def observe(self, managed):
        self.reads += 1
        self.events.append("backend observe")
        targets = {iqn: LiveTarget(iqn, True, {0: LiveLun(h)}) for iqn, h in
                   self.exported.items()}
        return Snapshot("fake", targets, {(iqn, 0): h for iqn, h in self.exported.items()})

    def plan(self, snapshot, desired):
        want = {t.iqn: t.luns[0].hctl for t in desired.targets if t.luns[0].hctl}
        have = {iqn: t.luns[0].hctl for iqn, t in snapshot.targets.items()}
        return Plan() if want == have else Plan(ops=(("set", repr(want)),),
                                                reasons=("differs",))

    def problems(self, snapshot, desired):
        return []

    def apply(self, plan, desired):
        self.events.append("backend apply")
        self.exported = {t.iqn: t.luns[0].hctl for t in desired.targets if t.luns[0].hctl}
        return ["exported %s" % sorted(self.exported)]


class FakeFirewall:
    name = "fake"

    def __init__(self, events: List[str], errors=(), fail_apply=None):
        self.events = events
        self.applied = None
        self.errors = tuple(errors)
        self.fail_apply = fail_apply

    def observe(self, spec):
        self.events.append("firewall observe")
        return FirewallState({"fake": self.applied})

    def plan(self, state, spec):
        if state.tables["fake"] == spec:
            return FirewallPlan(errors=self.errors)
        return FirewallPlan(("open",), (("fake", "script"),), errors=self.errors)

    def status(self, state, spec):
        return FirewallStatus()

    def apply(self, plan, spec):
        self.events.append("firewall apply")
        if self.fail_apply is not None:
            raise self.fail_apply
        self.applied = spec
        return ["firewall: open"]


def build(events, devices, firewall_errors=(), fail_apply=None):
    @contextmanager
    def lock():
        events.append("lock")
        yield
        events.append("unlock")

    backend = FakeBackend(events)
    wall = FakeFirewall(events, firewall_errors, fail_apply)
    return Reconciler(CONFIG, backend, lambda: (events.append("scan") or list(devices)),
                      lock, firewall=wall), backend


def test_one_read_of_each_part_per_pass_the_firewall_first_under_the_lock():
    events: List[str] = []
    rec, backend = build(events, [TAPE])
    report = rec.apply()
    assert events == ["lock", "scan", "backend observe", "firewall observe",
                      "firewall apply", "backend apply", "unlock"]
    assert report.actions == ["firewall: open", "exported ['%s']" % IQN]


def test_a_second_pass_with_nothing_changed_does_nothing():
    events: List[str] = []
    rec, backend = build(events, [TAPE])
    rec.apply()
    del events[:]
    report = rec.apply()
    assert report.actions == [] and "backend apply" not in events
    assert events.count("backend observe") == 1 and backend.reads == 2


def test_the_previous_address_comes_from_the_same_snapshot():
    events: List[str] = []
    rec, backend = build(events, [TAPE])
    rec.apply()
    rec.devices = lambda: []  # the tape is gone: absent = keep keeps its address
    report = rec.plan()
    lun = report.desired.targets[0].luns[0]
    assert (lun.status, lun.hctl) == ("kept", Hctl(1, 0, 6, 0))
    assert report.plan.empty


def test_a_firewall_family_that_cannot_be_fixed_does_not_hold_the_target_back():
    events: List[str] = []
    rec, backend = build(events, [TAPE], firewall_errors=(("ip6tables", "no IPv6"),))
    with pytest.raises(TransientError, match="ip6tables: no IPv6"):
        rec.apply()
    assert backend.exported == {IQN: Hctl(1, 0, 6, 0)}, "the target was still applied"
    assert events[-1] == "unlock"


def test_a_firewall_command_failing_at_apply_does_not_hold_the_target_back():
    events: List[str] = []
    failure = CommandError(["iptables-restore", "--noflush"], 4, "Resource temporarily unavailable")
    rec, backend = build(events, [TAPE], fail_apply=failure)
    with pytest.raises(CommandError) as raised:
        rec.apply()
    assert raised.value is failure, "the firewall's own error is what the loop retries"
    assert backend.exported == {IQN: Hctl(1, 0, 6, 0)}, "the target was still applied"
    assert events[-3:] == ["firewall apply", "backend apply", "unlock"]


def test_views_say_exported_and_verified_per_export():
    events: List[str] = []
    rec, _backend = build(events, [TAPE])
    assert [(v.exported, v.verified) for v in rec.views(rec.observe())] == [(False, False)]
    rec.apply()
    assert [(v.exported, v.verified) for v in rec.views(rec.observe())] == [(True, True)]


def test_unexport_plans_an_empty_desired_state_under_the_lock():
    events: List[str] = []
    rec, backend = build(events, [TAPE])
    rec.apply()
    del events[:]
    assert rec.unexport() == ["exported []"]
    assert backend.exported == {} and events[0] == "lock" and events[-1] == "unlock"


def test_a_lasting_problem_is_warned_once_and_its_end_is_logged(caplog):
    events: List[str] = []
    rec, _backend = build(events, [TAPE])
    rec.apply()
    rec.devices = lambda: [TAPE, builders.tape("2:0:0:0", serial=TAPE.serial)]
    with caplog.at_level(logging.DEBUG, logger="tapeshared.reconcile"):
        for _ in range(3):
            rec.apply()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ambiguous" in warnings[0], warnings
    caplog.clear()
    rec.devices = lambda: [TAPE]
    with caplog.at_level(logging.INFO, logger="tapeshared.reconcile"):
        rec.apply()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == []
    assert any(r.getMessage().startswith("cleared: ") for r in caplog.records)
