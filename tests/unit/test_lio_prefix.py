"""LIO crash consistency (pure): a pass killed after any prefix of its plan leaves
configfs in a state from which the next pass reaches exactly what a whole pass
reaches, with nothing left over and nothing missing, and then has nothing to do."""

import copy

import pytest
from support import builders
from support.builders import INIT
from test_lio_plan import _stale, simulate, tape

from tapeshared.backends.lio import holder
from tapeshared.backends.lio import plan as lioplan
from tapeshared.backends.lio import state as liostate
from tapeshared.core.desired import desired_state
from tapeshared.core.model import Config, GlobalConfig

LIBRARY = builders.export(luns=((0, "serial", "CH1"), (1, "serial", "HU1"),
                                (2, "serial", "HU2")))
NONE = Config(GlobalConfig(backend="lio"), ())
SECOND = "iqn.1994-05.com.example:second"


def single():
    return builders.config(builders.export(), backend="lio")


def library():
    return builders.config(LIBRARY, backend="lio")


def robot(hosts=(1, 1, 1)):
    """A changer and two drives; hosts gives each one's SCSI host."""
    return [builders.tape("%d:0:0:0" % hosts[0], serial="CH1", kind=8, sg="/dev/sg3"),
            builders.tape("%d:0:1:0" % hosts[1], serial="HU1", sg="/dev/sg4"),
            builders.tape("%d:0:2:0" % hosts[2], serial="HU2", sg="/dev/sg5")]


def plan(state, cfg, devices):
    desired = desired_state(cfg, devices, liostate.previous(state))
    return lioplan.plan_ops(state, desired, 3260)


def observed(state, cfg):
    """What the adapter reads back: managed targets, and others only if ours."""
    managed = set(e.iqn for e in cfg.exports)
    state.targets = dict((iqn, t) for iqn, t in state.targets.items()
                         if iqn in managed or liostate.ours_target(t))
    return state


def objects(state):
    """The configfs object set, with the numbers LIO leaves to us (HBA, tpg LUN)
    replaced by what they hold, so two converged states compare exactly."""
    ours = sorted(h for h in state.hbas if liostate.ours_hba(h))
    assert ours == sorted(s.hba for s in state.backstores.values()), \
        "an HBA of ours without exactly one backstore: %s" % ours
    targets = {}
    for iqn, t in state.targets.items():
        acls = dict((name, sorted((m, t.luns.get(n) if n is not None else None)
                                  for m, n in acl.mapped.items()))
                    for name, acl in t.acls.items())
        auth = dict((name, acl.auth) for name, acl in t.acls.items())
        targets[iqn] = (t.tpg, t.enabled, t.alias, t.attrib, sorted(t.portals),
                        sorted(str(v) for v in t.luns.values()), acls, auth)
    stores = sorted((s.name, s.enabled) for s in state.backstores.values())
    return stores, sorted(h for h in state.hbas if not liostate.ours_hba(h)), targets, \
        state.holder


def two_initiators():
    return builders.config(builders.export(iqns=(INIT, SECOND)), backend="lio")


def stale(state, serial=""):
    """Every backstore (or the one of serial) bound to a device object that is gone."""
    for name, store in list(state.backstores.items()):
        if serial in name:
            state.backstores[name] = liostate.Backstore(store.hba, store.name, enabled=False)
    return state


def exported(cfg, devices):
    return simulate(liostate.LioState(hbas={"pscsi_0"}),
                    plan(liostate.LioState(hbas={"pscsi_0"}), cfg, devices))


CASES = {
    "first export": (lambda: liostate.LioState(hbas={"pscsi_0"}), single,
                     lambda: [tape("1:0:6:0")]),
    "renumbering": (lambda: exported(single(), [tape("1:0:6:0")]), single,
                    lambda: [tape("7:0:6:0")]),
    "library re-point": (lambda: exported(library(), robot()), library,
                         lambda: robot((7, 7, 7))),
    "one drive of a library moves": (lambda: exported(library(), robot()), library,
                                     lambda: robot((1, 1, 7))),
    "export removal": (lambda: exported(single(), [tape("1:0:6:0")]), lambda: NONE,
                       lambda: []),
    "same address, new instance": (lambda: _stale(exported(single(), [tape("1:0:6:0")])),
                                   single, lambda: [tape("1:0:6:0")]),
    "same address, two initiators": (
        lambda: stale(exported(two_initiators(), [tape("1:0:6:0")])), two_initiators,
        lambda: [tape("1:0:6:0")]),
    "a library drive at the same address": (
        lambda: stale(exported(library(), robot()), "HU1"), library, robot),
}
REBINDS = sorted(c for c in CASES if "same address" in c)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_prefix_of_a_plan_converges_to_the_whole_plans_objects(case):
    start, cfg, devices = CASES[case]
    ops = plan(start(), cfg(), devices())
    assert ops, "the change must need operations"
    whole = simulate(start(), ops)
    assert plan(copy.deepcopy(whole), cfg(), devices()) == []
    expected = objects(whole)
    for k in range(len(ops) + 1):
        state = observed(simulate(start(), ops[:k]), cfg())  # killed before op k+1
        again = plan(state, cfg(), devices())
        state = observed(simulate(state, again), cfg())
        assert objects(state) == expected, "killed before %r (op %d)" % (
            ops[k] if k < len(ops) else "the end", k + 1)
        assert plan(state, cfg(), devices()) == [], "not settled after a kill at op %d" % (
            k + 1)


def test_the_cases_cover_ops_that_a_kill_can_split():
    """Every kind of step a kill can fall between appears in some case above."""
    kinds = set()
    for start, cfg, devices in CASES.values():
        kinds.update(op[0] for op in plan(start(), cfg(), devices()))
    assert {"mkdir", "rmdir", "write", "symlink", "unlink", "reset"} <= kinds


def exposures(state):
    """What each ACL's mapped LUN points at: a backstore of ours (old or new), the
    holder when it is ready (not-ready answers), or "" (LIO's LUN 0 placeholder,
    or another target's LUN: never allowed)."""
    found = {}
    for iqn, t in state.targets.items():
        for acl_iqn, acl in t.acls.items():
            for mapped, number in acl.mapped.items():
                name = t.luns.get(number) if number is not None else None
                ready = name == holder.NAME and state.holder == "ready"
                ok = ready or name in state.backstores
                found[(iqn, acl_iqn, mapped)] = (name if ok else "") or ""
    return found


def in_swap(ops, k):
    """The ACL link whose unlink is op k and whose link is op k+1 (else None): the
    two-syscall gap that no order avoids, as a mapping cannot be re-pointed."""
    if 0 < k < len(ops) and ops[k - 1][0] == "unlink" and ops[k][0] == "symlink" \
            and ops[k][2] == ops[k - 1][1] and "/acls/" in ops[k][2]:
        parts = ops[k][2].split("/")
        return parts[1], parts[4], int(parts[5][4:])
    return None


@pytest.mark.parametrize("case", REBINDS)
def test_every_step_of_a_rebind_exposes_the_old_device_the_new_one_or_the_holder(case):
    start, cfg, devices = CASES[case]
    ops = plan(start(), cfg(), devices())
    before = exposures(start())
    held = 0
    for k in range(len(ops) + 1):
        now = exposures(simulate(start(), ops[:k]))
        assert set(now) == set(before), "a mapping vanished after op %d" % k
        for key, name in sorted(now.items()):
            if key == in_swap(ops, k):
                continue
            assert name in (before[key], holder.NAME), "after op %d %r: %r exposes %r" % (
                k, ops[k - 1] if k else None, key, name)
            held += name == holder.NAME
    assert held, "the holder never stood in"
    whole = simulate(start(), ops)
    assert whole.holder == "" and exposures(whole) == before


@pytest.mark.parametrize("case", REBINDS)
def test_a_pass_after_a_kill_in_a_rebind_keeps_every_mapping_covered(case):
    """Killed anywhere but between a mapping's unlink and its link, the next pass
    also never leaves a mapping to the placeholder."""
    start, cfg, devices = CASES[case]
    ops = plan(start(), cfg(), devices())
    for k in range(len(ops) + 1):
        killed = observed(simulate(start(), ops[:k]), cfg())
        before = exposures(killed)
        if "" in before.values():
            continue  # the kill itself fell inside a swap
        again = plan(copy.deepcopy(killed), cfg(), devices())
        for j in range(len(again) + 1):
            now = exposures(simulate(copy.deepcopy(killed), again[:j]))
            bare = [key for key, name in now.items() if not name]
            assert bare in ([], [in_swap(again, j)]), "kill at op %d, then op %d of %r" % (
                k + 1, j, again)
