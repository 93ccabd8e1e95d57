"""LIO portals: the wildcard and an address on the same port cannot both
listen, so a portal address that comes up late replaces 0.0.0.0 by removing it
first; between two addresses the new one comes first (never no portal)."""

from dataclasses import replace

from test_lio_plan import TPG, config, simulate, tape

from tapeshared.backends.lio import plan as lioplan
from tapeshared.backends.lio import state as liostate
from tapeshared.core.desired import desired_state


def portal_ops(state, portals):
    desired = replace(desired_state(config(), [tape("1:0:6:0")], liostate.previous(state)),
                      portals=tuple(portals))
    return [op for op in lioplan.plan_ops(state, desired, 3260) if "/np/" in op[1]]


def test_the_wildcard_goes_before_the_late_address_comes():
    state = simulate(liostate.LioState(), [])
    first = portal_ops(state, [])
    assert first == [("mkdir", TPG + "/np/0.0.0.0:3260")]
    state = simulate(liostate.LioState(), lioplan.plan_ops(
        state, desired_state(config(), [tape("1:0:6:0")], {}), 3260))
    assert portal_ops(state, ["192.0.2.10"]) == [("rmdir", TPG + "/np/0.0.0.0:3260"),
                                                ("mkdir", TPG + "/np/192.0.2.10:3260")]


def test_an_address_that_moves_is_added_before_the_old_one_goes():
    state = simulate(liostate.LioState(), [])
    desired = replace(desired_state(config(), [tape("1:0:6:0")], {}), portals=("192.0.2.10",))
    state = simulate(state, lioplan.plan_ops(state, desired, 3260))
    assert portal_ops(state, ["192.0.2.11"]) == [("mkdir", TPG + "/np/192.0.2.11:3260"),
                                                ("rmdir", TPG + "/np/192.0.2.10:3260")]
