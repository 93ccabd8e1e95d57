"""A REAL tgtd in a private network namespace, driven by the tgt backend.

This host has no SCSI devices, so LUNs are backed by regular files (bstype rdwr,
injected); sg pass-through itself runs in the nested-VM tier. Everything else is
tgtd's own behaviour: targets, the ownership mark, ACLs, CHAP accounts, stale
open files, removal and idempotence.
"""

import logging
import os
import subprocess
from dataclasses import replace

import pytest
from support import builders
from support import tgtd as tgtd_support
from support.tgtd import CountingRunner, FakeDrive

from tapeshared.backends.tgt import show as tgtshow
from tapeshared.backends.tgt.backend import TgtBackend
from tapeshared.backends.tgt.plan import TgtSettings
from tapeshared.core.desired import desired_state
from tapeshared.core.model import (
    Chap,
    Hctl,
)

pytestmark = pytest.mark.netns
IQN = "iqn.2007-04.com.example:tape0"
FOREIGN = "iqn.2003-01.org.example:by-hand"
INIT = "iqn.1994-05.com.example:backup"


@pytest.fixture
def tgtd(tmp_path):
    try:
        with tgtd_support.running(str(tmp_path)) as adm_prefix:
            yield adm_prefix
    except tgtd_support.Unavailable as exc:
        pytest.skip(str(exc))


def adm(tgtd, *args):
    return subprocess.run(list(tgtd) + ["--lld", "iscsi"] + list(args), check=True,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout


def backend(tgtd, tmp_path, runner=None, **kw):
    kw.setdefault("bstype", "rdwr")
    kw.setdefault("device_type", "disk")
    settings = TgtSettings(tgtadm=tuple(tgtd), state_dir=str(tmp_path / "state"), **kw)
    runner = runner or CountingRunner()
    return TgtBackend(settings, runner, drive=FakeDrive(runner.seen))


def config(secret="s3cret", initiators=("192.0.2.0/24",), absent="keep", exports=True):
    export = builders.export(lun=1, initiators=initiators, absent=absent,
                             chap=Chap("tapeuser", secret),
                             mutual=Chap("mutual", "mutual-secret1"))
    return builders.config(*((export,) if exports else ()), backend="tgt")


def image(tmp_path, name="tape1.img"):
    path = tmp_path / name
    with open(str(path), "wb") as handle:
        handle.truncate(1 << 20)
    return str(path)


def tape(path, hctl="1:0:6:0"):
    return builders.tape(hctl, sg=path)


def reconcile(back, cfg, devices):
    """What the reconciler does: observe, desired, plan, apply when not empty."""
    snapshot = back.observe([export.iqn for export in cfg.exports])
    desired = desired_state(cfg, devices, snapshot.previous)
    plan = back.plan(snapshot, desired)
    return plan, (back.apply(plan, desired) if not plan.empty else [])


def foreign(tgtd, tmp_path):
    adm(tgtd, "--mode", "target", "--op", "new", "--tid", "1", "--targetname", FOREIGN)
    adm(tgtd, "--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1", "-b",
        image(tmp_path, "foreign.img"))
    adm(tgtd, "--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL")
    adm(tgtd, "--mode", "account", "--op", "new", "--user", "alice", "--password", "pw")
    adm(tgtd, "--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice")
    return tgtshow.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))[1]


def test_export_is_idempotent_and_leaves_foreign_targets_alone(tgtd, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    before = foreign(tgtd, tmp_path)
    back = backend(tgtd, tmp_path)
    path = image(tmp_path)
    plan, actions = reconcile(back, config(), [tape(path)])
    assert "********" in plan.describe() and "s3cret" not in plan.describe()
    shown = tgtshow.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))
    ours = shown[1000]
    assert ours.iqn == IQN and ours.ours
    assert ours.luns[1].path == path and ours.luns[1].bstype == "rdwr"
    assert ours.acl == ["192.0.2.0/24", INIT]
    assert ours.incoming == ["tapeuser"] and ours.outgoing == ["mutual"]
    assert shown[1] == before
    assert "s3cret" not in caplog.text and "mutual-secret1" not in caplog.text
    assert "s3cret" not in open(back.memory_path).read()
    back.runner.seen.clear()
    plan, actions = reconcile(back, config(), [tape(path)])
    assert plan.empty and actions == [] and back.runner.changes() == []
    snapshot = back.observe((IQN,))
    assert snapshot.targets[IQN].sessions == ()  # the parser is tested on tgt's format
    assert back.problems(snapshot, desired_state(config(), [tape(path)])) == []


def test_renumbering_stale_node_and_absent_policies(tgtd, tmp_path):
    back = backend(tgtd, tmp_path)
    first = image(tmp_path)
    reconcile(back, config(), [tape(first)])
    moved = image(tmp_path, "tape2.img")
    plan, _ = reconcile(back, config(), [tape(moved, "7:0:6:0")])
    assert [op[0] if op[0] == "reset" else op[3] for op in plan.ops] == [
        "delete", "reset", "new"]
    assert back.drive.resets()[-1] == ("reset", "7:0:6:0", moved)
    shown = tgtshow.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))
    assert shown[1000].luns[1].path == moved
    # the same name now names another file: tgtd still holds the old one
    os.unlink(moved)
    image(tmp_path, "tape2.img")
    assert back.observe((IQN,)).detail.state.stale == {moved}
    plan, _ = reconcile(back, config(), [tape(moved, "8:0:6:0")])
    assert [op[0] if op[0] == "reset" else op[3] for op in plan.ops] == [
        "delete", "reset", "new"]
    assert back.observe((IQN,)).detail.state.stale == set()
    # gone, absent = keep: the LUN stays (the address is remembered)
    assert back.observe((IQN,)).previous == {(IQN, 1): Hctl(8, 0, 6, 0)}
    plan, _ = reconcile(back, config(), [])
    assert plan.empty
    plan, _ = reconcile(back, config(absent="remove"), [])
    assert [op[3] for op in plan.ops] == ["delete"]
    assert 1 not in tgtshow.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))[
        1000].luns


def test_acl_and_secret_changes_then_removal(tgtd, tmp_path):
    before = foreign(tgtd, tmp_path)
    back = backend(tgtd, tmp_path)
    path = image(tmp_path)
    reconcile(back, config(), [tape(path)])
    plan, _ = reconcile(back, config(secret="n3w-secret", initiators=("192.0.2.5/32",)),
                        [tape(path)])
    steps = "\n".join(plan.steps)
    assert "--op unbind --tid 1000 --initiator-address 192.0.2.0/24" in steps
    assert "--op bind --tid 1000 --initiator-address 192.0.2.5" in steps
    assert "--op delete --user tapeuser" in steps and "n3w-secret" not in steps
    assert reconcile(back, config(secret="n3w-secret", initiators=("192.0.2.5/32",)),
                     [tape(path)])[0].empty
    plan, _ = reconcile(back, config(exports=False), [])
    shown = tgtshow.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))
    assert list(shown) == [1] and shown[1] == before
    accounts = tgtshow.parse_accounts(adm(tgtd, "--mode", "account", "--op", "show"))
    assert accounts == {"alice"}
    assert reconcile(back, config(exports=False), [])[0].empty


def test_pass_through_lun_waits_for_a_char_device_node(tgtd, tmp_path):
    """A path that is not (yet) a char device is never handed to tgtd as sg."""
    back = backend(tgtd, tmp_path, bstype="sg", device_type="pt")
    path = image(tmp_path)
    unready = replace(tape(path), unready=(path,))  # what discovery reports for it
    snapshot = back.observe((IQN,))
    desired = desired_state(config(), [unready], snapshot.previous)
    plan = back.plan(snapshot, desired)
    assert not any(op[:4] == ("--mode", "logicalunit", "--op", "new") for op in plan.ops)
    assert "%s has no device node yet" % path in " ".join(plan.notes)
    back.apply(plan, desired)
    assert 1 not in back.observe((IQN,)).targets[IQN].luns
