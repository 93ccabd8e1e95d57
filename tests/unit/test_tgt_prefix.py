"""tgt planner, crash-consistent: every prefix of a plan, applied to tgtd, converges.

For each case a plan is made from an initial tgtd state; then for every k the
first k operations are applied to a model of tgtd (test_tgt_plan.simulate)
and the planner runs again from what is observed there. The second plan must
reach the desired state exactly, a third plan must be empty, the foreign
target must never change, and no prefix may accept a login that neither the
initial nor the final state accepts, nor show a LUN on a path that is neither
the old nor the new one. A login a prefix newly accepts must see the final
LUNs (LUNs before the ACL: never a bare LUN 0 controller).

The login model is tgtd's as the VM tier saw it (1.0.85): a login gets in
when its address matches an address entry or its name a name entry (no entry:
nobody), and must then pass CHAP when an incoming account is bound.
"""

import copy
import ipaddress

import pytest
from support import builders
from support.builders import INIT, IQN
from test_tgt_plan import parsed, simulate

from tapeshared.backends.tgt import plan as tgtplan
from tapeshared.backends.tgt import show as tgtshow
from tapeshared.core.desired import desired_state
from tapeshared.core.model import Chap, Config, GlobalConfig

OTHER_INIT = "iqn.1994-05.com.example:other"
FOREIGN = 1  # the hand-made target parsed() holds


def library(initiators=("192.0.2.0/24",), iqns=(INIT,), chap=None):
    return builders.config(builders.export(
        name="library0", luns=[(1, "serial", "CH1"), (2, "serial", "D1"),
                               (3, "serial", "D2")],
        initiators=initiators, iqns=iqns, chap=chap), backend="tgt")


def drive(initiators=("192.0.2.0/24",), iqns=(INIT,), chap=None, mutual=None,
          absent="keep"):
    return builders.config(builders.export(
        lun=1, initiators=initiators, iqns=iqns, chap=chap, mutual=mutual,
        absent=absent), backend="tgt")


CHANGER = builders.tape("2:0:0:0", serial="CH1", kind=8, sg="/dev/sg2")
D1 = builders.tape("2:0:1:0", serial="D1", sg="/dev/sg3")
D2 = builders.tape("2:0:2:0", serial="D2", sg="/dev/sg4")
D2_MOVED = builders.tape("5:0:0:0", serial="D2", sg="/dev/sg5")
TAPE = builders.tape("1:0:6:0", serial="HU1", sg="/dev/sg1")
TAPE_MOVED = builders.tape("7:0:6:0", serial="HU1", sg="/dev/sg6")
ALICE = Chap("tapeuser", "s3cret")
MUTUAL = Chap("mutual", "other1")
NOTHING = Config(GlobalConfig(backend="tgt"), ())

# (name, the configuration and devices tgtd was brought to first, or None for a
# fresh tgtd, then the configuration and devices to plan towards)
CASES = [
    ("first export", None, (drive(chap=ALICE, mutual=MUTUAL), [TAPE])),
    ("first library export", None, (library(), [CHANGER, D1, D2])),
    ("renumbering", (drive(), [TAPE]), (drive(), [TAPE_MOVED])),
    ("library re-point", (library(), [CHANGER, D1, D2]), (library(), [CHANGER, D1, D2_MOVED])),
    ("export removed", (drive(chap=ALICE), [TAPE]), (NOTHING, [])),
    ("device removed, absent = remove", (drive(), [TAPE]), (drive(absent="remove"), [])),
    ("library shrunk to one drive", (library(), [CHANGER, D1, D2]), (drive(), [TAPE])),
    ("address ACL changed", (drive(), [TAPE]), (drive(initiators=("198.51.100.0/24",)),
                                                 [TAPE])),
    ("initiator name swapped", (drive(), [TAPE]), (drive(iqns=(OTHER_INIT,)), [TAPE])),
    ("name rule dropped", (drive(), [TAPE]), (drive(iqns=()), [TAPE])),
    ("CHAP turned on", (drive(), [TAPE]), (drive(chap=ALICE), [TAPE])),
    ("CHAP turned off", (drive(chap=ALICE, mutual=MUTUAL), [TAPE]), (drive(), [TAPE])),
    ("CHAP secret changed", (drive(chap=ALICE), [TAPE]),
     (drive(chap=Chap("tapeuser", "n3wsecret")), [TAPE])),
    ("everything at once", (drive(chap=ALICE), [TAPE]),
     (library(initiators=("ALL",), iqns=(OTHER_INIT,), chap=Chap("bob", "pw")),
      [CHANGER, D1, D2_MOVED])),
]


def desired_for(state, cfg, devices):
    return desired_state(cfg, devices, tgtplan.previous(state, {}, {}))


def plan_for(state, cfg, devices, owned):
    """The planner as the backend calls it; an account it made is fresh unless
    the case changes its secret (the adapter's fingerprint tells)."""
    desired = desired_for(state, cfg, devices)
    chaps = {c.user: c.secret for t in desired.targets
             for c in list(t.incoming) + [x for x in [t.outgoing] if x]}
    fresh = set(u for u, secret in owned.items() if chaps.get(u) == secret)
    return tgtplan.plan_ops(state, desired, fresh, set(owned))[0]


def apply(state, ops, owned, cfg, devices):
    """Apply ops to the model; track which accounts we made and with which secret."""
    desired = desired_for(state, cfg, devices)
    chaps = {c.user: c.secret for t in desired.targets
             for c in list(t.incoming) + [x for x in [t.outgoing] if x]}
    for op in ops:
        simulate(state, [op])
        if op[:4] == ("--mode", "account", "--op", "new"):
            owned[tgtplan.op_value(op, "--user")] = chaps[tgtplan.op_value(op, "--user")]
        elif op[:4] == ("--mode", "account", "--op", "delete"):
            owned.pop(tgtplan.op_value(op, "--user"), None)
    return state


def start(case):
    state, owned = parsed(), {}
    state.accounts = {"alice"}  # the foreign target's account
    del state.targets[1000]
    if case[1] is not None:
        cfg, devices = case[1]
        apply(state, plan_for(state, cfg, devices, owned), owned, cfg, devices)
        assert plan_for(state, cfg, devices, owned) == []
    return state, owned


def matches(entry, address):
    if entry == "ALL":
        return True
    return ipaddress.ip_address(address) in ipaddress.ip_network(entry.strip("[]"),
                                                                 strict=False)


def accepts(state, owned, iqn, address, name, user):
    """Whether tgtd would let this login in: address ACL, name ACL, CHAP user:secret."""
    target = state.by_iqn(iqn)
    if target is None:
        return False
    addresses = [e for e in target.acl if tgtplan.is_address(e)]
    names = [e for e in target.acl if not tgtplan.is_address(e)]
    if not any(matches(e, address) for e in addresses) and name not in names:
        return False
    if target.incoming:
        return user is not None and user[0] in target.incoming and \
            owned.get(user[0]) == user[1]
    return True


def logins(states):
    """Every distinct kind of login the states tell apart (plus outsiders)."""
    addresses, names, users = {"203.0.113.9"}, {"iqn.1994-05.com.example:stranger"}, {None}
    for state, owned in states:
        for target in state.targets.values():
            for entry in target.acl:
                if entry == "ALL":
                    continue
                if tgtplan.is_address(entry):
                    addresses.add(str(ipaddress.ip_network(entry.strip("[]"),
                                                           strict=False).network_address))
                else:
                    names.add(entry)
        users |= set(owned.items())
    return [(a, n, u) for a in sorted(addresses) for n in sorted(names)
            for u in sorted(users, key=str)]


def luns(state, iqn):
    target = state.by_iqn(iqn)
    return {} if target is None else {n: lun.path for n, lun in target.luns.items() if n}


def observed(state):
    """What a comparison of tgtd with the expected state looks at."""
    return sorted((t.tid, t.iqn, t.ours, sorted(luns(state, t.iqn).items()), sorted(t.acl),
                   sorted(t.incoming), sorted(t.outgoing))
                  for t in state.targets.values()), sorted(state.accounts)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_prefix_converges_and_is_never_more_open_than_its_ends(case):
    cfg, devices = case[2]
    first, owned_first = start(case)
    ops = plan_for(copy.deepcopy(first), cfg, devices, dict(owned_first))
    assert ops, "the case changes nothing"
    owned_final = dict(owned_first)
    final = apply(copy.deepcopy(first), ops, owned_final, cfg, devices)
    assert plan_for(final, cfg, devices, owned_final) == []
    foreign = copy.deepcopy(first.targets[FOREIGN])
    iqns = sorted(set(t.iqn for t in list(first.targets.values()) +
                      list(final.targets.values())) - {foreign.iqn})
    universe = logins([(first, owned_first), (final, owned_final)])
    for k in range(len(ops) + 1):
        state, owned = copy.deepcopy(first), dict(owned_first)
        apply(state, ops[:k], owned, cfg, devices)
        assert state.targets[FOREIGN] == foreign, "prefix %d touched the foreign target" % k
        for iqn in iqns:
            for number, path in luns(state, iqn).items():
                assert path in (luns(first, iqn).get(number), luns(final, iqn).get(number)), \
                    "prefix %d: LUN %d of %s on %s" % (k, number, iqn, path)
            for login in universe:
                now = accepts(state, owned, iqn, *login)
                was = accepts(first, owned_first, iqn, *login)
                end = accepts(final, owned_final, iqn, *login)
                assert not now or was or end, \
                    "prefix %d (%s) lets %s into %s" % (k, ops[k - 1], login, iqn)
                if now and not was:
                    assert luns(state, iqn) == luns(final, iqn), \
                        "prefix %d opens %s before its LUNs" % (k, iqn)
        # killed here: the next pass plans from what tgtd shows and finishes the job
        again = plan_for(state, cfg, devices, owned)
        apply(state, again, owned, cfg, devices)
        assert observed(state) == observed(final), "prefix %d: %s" % (k, again)
        assert plan_for(state, cfg, devices, owned) == [], "prefix %d" % k


def test_the_login_model_follows_tgt():
    """No entry: nobody; either kind of entry lets in; a bound account asks CHAP."""
    state, owned = start(CASES[0])
    target = tgtshow.Target(1000, IQN, {0: tgtshow.Lun(0, scsi_id="tapeshared")})
    state.targets[1000] = target
    assert not accepts(state, owned, IQN, "192.0.2.5", INIT, None)
    target.acl.append(INIT)  # a name alone lets that initiator in from anywhere
    assert accepts(state, owned, IQN, "198.51.100.5", INIT, None)
    assert not accepts(state, owned, IQN, "198.51.100.5", OTHER_INIT, None)
    target.acl.append("192.0.2.0/24")
    assert accepts(state, owned, IQN, "192.0.2.5", OTHER_INIT, None)
    assert not accepts(state, owned, IQN, "198.51.100.5", OTHER_INIT, None)
    target.incoming.append("tapeuser")
    owned["tapeuser"] = "s3cret"
    assert not accepts(state, owned, IQN, "192.0.2.5", INIT, None)
    assert not accepts(state, owned, IQN, "192.0.2.5", INIT, ("tapeuser", "wrong"))
    assert accepts(state, owned, IQN, "192.0.2.5", INIT, ("tapeuser", "s3cret"))
