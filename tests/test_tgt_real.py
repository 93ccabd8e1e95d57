"""A REAL tgtd in a private network namespace, driven by the tgt backend.

This host has no SCSI devices, so LUNs are backed by regular files (bstype rdwr,
injected); sg pass-through itself runs in the nested-VM tier. Everything else is
tgtd's own behaviour: targets, the ownership mark, ACLs, CHAP accounts, stale
open files, removal and idempotence.
"""

import logging
import os
import random
import shutil
import subprocess
import time
import uuid

import pytest

from tapeshared import tgtplan
from tapeshared.desired import desired_state
from tapeshared.model import (
    Chap,
    Config,
    Device,
    ExportConfig,
    GlobalConfig,
    Hctl,
    LunConfig,
    Match,
)
from tapeshared.runner import Runner
from tapeshared.tgt import TgtBackend

pytestmark = pytest.mark.netns
IQN = "iqn.2007-04.com.example:tape0"
FOREIGN = "iqn.2003-01.org.example:by-hand"
INIT = "iqn.1994-05.com.example:backup"


def _why_not():
    if os.geteuid() != 0:
        return "needs root for a network namespace and tgtd"
    for tool in ("ip", "tgtd", "tgtadm", "sh"):
        if shutil.which(tool) is None:
            return "%s is not installed (Debian package tgt)" % tool
    return None


class CountingRunner(Runner):
    def __init__(self):
        super().__init__(timeout=20)
        self.seen = []

    def run(self, argv, *args, **kwargs):
        self.seen.append(tuple(argv))
        return super().run(argv, *args, **kwargs)

    def changes(self):
        return [a for a in self.seen if "show" not in a]


@pytest.fixture
def tgtd(tmp_path):
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    ns = "ts-tgt-%s" % uuid.uuid4().hex[:8]
    port = random.randint(20000, 29999)
    while os.path.exists("/run/tgtd/socket.%d" % port):
        port += 1
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        pytest.skip("ip netns add failed")
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
    log = open(str(tmp_path / "tgtd.log"), "w")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tgtd", "-f", "-C", str(port),
                             "--iscsi", "portal=127.0.0.1:3260"], stdout=log, stderr=log)
    adm = ("tgtadm", "-C", str(port))
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(list(adm) + ["--lld", "iscsi", "--mode", "target", "--op",
                                          "show"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("tgtd did not start: %s" % open(str(tmp_path / "tgtd.log"))
                            .read()[-500:])
            time.sleep(0.1)
        yield adm
    finally:
        proc.kill()  # tgtd ignores SIGTERM while it has targets; its state is disposable
        proc.wait(5)
        log.close()
        subprocess.run(["ip", "netns", "del", ns])
        for suffix in ("", ".lock"):
            try:
                os.unlink("/run/tgtd/socket.%d%s" % (port, suffix))
            except OSError:
                pass


def adm(tgtd, *args):
    return subprocess.run(list(tgtd) + ["--lld", "iscsi"] + list(args), check=True,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout


def backend(tgtd, tmp_path, runner=None, **kw):
    settings = GlobalConfig(backend="tgt", state_dir=str(tmp_path / "state"))
    kw.setdefault("bstype", "rdwr")
    kw.setdefault("device_type", "disk")
    return TgtBackend(settings, runner or CountingRunner(), tgtadm=tgtd, **kw)


def config(secret="s3cret", initiators=("192.0.2.0/24",), absent="keep", exports=True):
    export = ExportConfig(
        name="tape0", iqn=IQN, luns=(LunConfig(1, Match("serial", "HU1")),),
        initiators=initiators, initiator_iqns=(INIT,), absent=absent,
        incoming=(Chap("tapeuser", secret),), outgoing=Chap("mutual", "mutual-secret1"))
    return Config(GlobalConfig(backend="tgt"), (export,) if exports else ())


def image(tmp_path, name="tape1.img"):
    path = tmp_path / name
    with open(str(path), "wb") as handle:
        handle.truncate(1 << 20)
    return str(path)


def tape(path, hctl="1:0:6:0"):
    return Device(Hctl.parse(hctl), 1, serial="HU1", sg=path)


def reconcile(back, cfg, devices):
    """What the reconciler does: previous, desired, plan, apply when not empty."""
    desired = desired_state(cfg, devices, back.previous())
    plan = back.plan(desired)
    return plan, (back.apply(plan, desired) if not plan.empty else [])


def foreign(tgtd, tmp_path):
    adm(tgtd, "--mode", "target", "--op", "new", "--tid", "1", "--targetname", FOREIGN)
    adm(tgtd, "--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1", "-b",
        image(tmp_path, "foreign.img"))
    adm(tgtd, "--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL")
    adm(tgtd, "--mode", "account", "--op", "new", "--user", "alice", "--password", "pw")
    adm(tgtd, "--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice")
    return tgtplan.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))[1]


def test_export_is_idempotent_and_leaves_foreign_targets_alone(tgtd, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    before = foreign(tgtd, tmp_path)
    back = backend(tgtd, tmp_path)
    path = image(tmp_path)
    plan, actions = reconcile(back, config(), [tape(path)])
    assert "********" in plan.describe() and "s3cret" not in plan.describe()
    shown = tgtplan.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))
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
    assert back.sessions() == {}  # no initiator here; the parser is tested on tgt's format
    assert back.problems(desired_state(config(), [tape(path)]), back.live()) == []


def test_renumbering_stale_node_and_absent_policies(tgtd, tmp_path):
    back = backend(tgtd, tmp_path)
    first = image(tmp_path)
    reconcile(back, config(), [tape(first)])
    moved = image(tmp_path, "tape2.img")
    plan, _ = reconcile(back, config(), [tape(moved, "7:0:6:0")])
    assert [op[3] for op in plan.ops] == ["delete", "new"]
    shown = tgtplan.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))
    assert shown[1000].luns[1].path == moved
    # the same name now names another file: tgtd still holds the old one
    os.unlink(moved)
    image(tmp_path, "tape2.img")
    assert back.observe((IQN,)).stale == {moved}
    plan, _ = reconcile(back, config(), [tape(moved, "8:0:6:0")])
    assert [op[3] for op in plan.ops] == ["delete", "new"]
    assert back.observe((IQN,)).stale == set()
    # gone, absent = keep: the LUN stays (the address is remembered)
    assert back.previous() == {(IQN, 1): Hctl(8, 0, 6, 0)}
    plan, _ = reconcile(back, config(), [])
    assert plan.empty
    plan, _ = reconcile(back, config(absent="remove"), [])
    assert [op[3] for op in plan.ops] == ["delete"]
    assert 1 not in tgtplan.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))[
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
    shown = tgtplan.parse_show(adm(tgtd, "--mode", "target", "--op", "show"))
    assert list(shown) == [1] and shown[1] == before
    accounts = tgtplan.parse_accounts(adm(tgtd, "--mode", "account", "--op", "show"))
    assert accounts == {"alice"}
    assert back.unexport().empty


def test_pass_through_lun_waits_for_a_char_device_node(tgtd, tmp_path):
    """A path that is not (yet) a char device is never handed to tgtd as sg."""
    back = backend(tgtd, tmp_path, bstype="sg", device_type="pt")
    path = image(tmp_path)
    desired = desired_state(config(), [tape(path)], back.previous())
    plan = back.plan(desired)
    assert not any(op[:4] == ("--mode", "logicalunit", "--op", "new") for op in plan.ops)
    assert "%s has no device node yet" % path in " ".join(plan.notes)
    back.apply(plan, desired)
    assert 1 not in back.live()[IQN].luns
