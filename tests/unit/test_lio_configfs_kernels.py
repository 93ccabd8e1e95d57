"""The LIO state reader on configfs trees taken from two kernels (5.10 and 7.2).

The fixtures are what the lio-library VM scenario's configfs_dump wrote on each
kernel with the same export up (a changer and two drives, one initiator logged
in). The kernels differ in attributes the backend never reads (7.2 adds
attrib/complete_type and submit_type, wwn/company_id and pd_text_id_info, the
ACL's attrib/authentication and tpgt_1/rtpi; 5.10 has tpgt_1/attrib/netif_timeout);
what it reads (enable, info, alias, udev_path, TargetAlias, the LUN and ACL
links, attrib, auth, the session info) has the same names and formats.
"""

import ast
import dataclasses
import os

import pytest
from support import builders

from tapeshared.backends.lio import state as liostate
from tapeshared.backends.lio.backend import LioBackend
from tapeshared.backends.lio.state import LioSettings
from tapeshared.core.desired import desired_state
from tapeshared.core.model import Hctl

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "lio-configfs")
KERNELS = ("5.10", "7.2")
IQN = "iqn.2007-04.com.example:lio-library"
GUEST = "iqn.1994-05.com.example:tapeshared-e2e"
# the host's devices as the scenario made them: (address, serial, type, sg node)
DEVICES = (("7:0:0:0", "2000", 8, "/dev/sg0"), ("6:0:1:0", "3000", 1, "/dev/sg1"),
           ("6:0:2:0", "4000", 1, "/dev/sg2"))


def entries(kernel):
    with open(os.path.join(DATA, "linux-%s.txt" % kernel)) as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                path, _, value = line.rstrip("\n").partition("\t")
                yield path, value


def build(root, kernel):
    """The dumped tree under root: directories, files with their text, links."""
    links = []
    for path, value in entries(kernel):
        full = os.path.join(str(root), path)
        if path.endswith("/"):
            os.makedirs(full, exist_ok=True)
        elif value.startswith("-> "):
            links.append((os.path.join(str(root), value[3:]), full))
        elif not value.startswith("!"):  # write-only (control): nothing to read back
            with open(full, "w") as handle:
                handle.write(ast.literal_eval(value))
    for target, link in links:
        os.symlink(target, link)
    return LioBackend(LioSettings(lio_root=str(root), sysfs_devices=str(root / "sys")))


def desired():
    config = builders.config(
        builders.export(name="lio-library", iqn=IQN, iqns=(GUEST,),
                        initiators=("127.0.0.0/8",),
                        luns=[(n, "serial", d[1]) for n, d in enumerate(DEVICES)]),
        backend="lio", portal="127.0.0.1")
    devices = [builders.tape(hctl, serial=serial, kind=kind, sg=sg)
               for hctl, serial, kind, sg in DEVICES]
    # the portal as the daemon resolves it ("127.0.0.1" is its own address)
    return dataclasses.replace(desired_state(config, devices), portals=("127.0.0.1",))


def comparable(state):
    """The state with what legitimately differs between two runs left out: when
    each drive was reset (the time) and which sysfs inode it had."""
    stores = {name: (s.hba, s.enabled, s.bound, s.udev_path, s.reset_scope,
                     s.reset_at is not None) for name, s in state.backstores.items()}
    return stores, state.hbas, state.targets, state.loopbacks, state.foreign


@pytest.mark.parametrize("kernel", KERNELS)
def test_each_kernels_tree_reads_as_the_library_export(tmp_path, kernel):
    state = build(tmp_path, kernel).observe([IQN]).detail
    bound = {s.udev_path: s.bound for s in state.backstores.values()}
    assert bound == {sg: Hctl.parse(hctl) for hctl, _, _, sg in DEVICES}
    assert all(s.enabled and s.reset_scope == "drive" and s.reset_at
               for s in state.backstores.values())
    target = state.targets[IQN]
    assert target.enabled and target.alias == liostate.TARGET_ALIAS
    assert target.portals == {"127.0.0.1:3260"}
    assert target.acls[GUEST].mapped == {0: 0, 1: 1, 2: 2}
    assert [target.luns[n].rsplit("-", 1)[1] for n in range(3)] == [
        "h7c0t0l0", "h6c0t1l0", "h6c0t2l0"]
    assert [(s.initiator, s.addresses) for s in target.sessions] == [(GUEST, ("127.0.0.1",))]
    assert target.attrib == {"generate_node_acls": "0", "demo_mode_write_protect": "1",
                             "cache_dynamic_acls": "0", "authentication": "0"}


@pytest.mark.parametrize("kernel", KERNELS)
def test_each_kernels_tree_needs_nothing_done_and_shows_no_problem(tmp_path, kernel):
    lio = build(tmp_path, kernel)
    want = desired()
    snap = lio.observe([IQN])
    assert lio.plan(snap, want).ops == ()
    assert lio.problems(snap, want) == []


def test_both_kernels_trees_read_the_same(tmp_path):
    old = build(tmp_path / "old", "5.10").observe([IQN]).detail
    new = build(tmp_path / "new", "7.2").observe([IQN]).detail
    assert comparable(old) == comparable(new)


def test_the_kernels_differ_only_in_files_the_backend_does_not_read():
    names = {}
    for kernel in KERNELS:
        names[kernel] = {path for path, _ in entries(kernel)}
    only = names["5.10"] ^ names["7.2"]
    leaves = {path.rsplit("/", 1)[1] for path in only}
    assert leaves == {"complete_type", "submit_type", "company_id", "pd_text_id_info",
                      "authentication", "rtpi", "netif_timeout"}
    read = {"enable", "info", "alias", "udev_path", "TargetAlias", "lun", "userid",
            "password", "userid_mutual", "password_mutual", "generate_node_acls",
            "demo_mode_write_protect", "cache_dynamic_acls"}
    assert not leaves & read
    # "authentication" differs only as the ACL's attribute; the TPG's is in both
    assert {p for p in only if p.endswith("/authentication")} == {
        "iscsi/%s/tpgt_1/acls/%s/attrib/authentication" % (IQN, GUEST)}
