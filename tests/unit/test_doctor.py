"""doctor's checks (pure): each made to pass and to fail from gathered facts;
the exit code is the worst verdict; conflicts are found in other tools' files."""

import os

import pytest
from support import builders

from tapeshared.doctor import checks
from tapeshared.doctor.checks import FAIL, OK, WARN, Facts
from tapeshared.doctor.facts import conflicts

LIO_OK = [("module target_core_mod", True, "loaded", ""),
          ("/sys/kernel/config/target/iscsi", True, "present", "")]


def good(**settings):
    cfg = builders.config(builders.export(serial="HU1"), **settings)
    facts = Facts(python=(3, 6, 8), config=cfg,
                  modules={"pyudev": "0.21.0", "pyroute2": "0.7.11", "tenacity": "x",
                           "systemd": "x"},
                  devices=[builders.tape("1:0:6:0", serial="HU1")],
                  lio_parts=list(LIO_OK),
                  tools={n: "/usr/sbin/" + n for n in ("ietadm", "tgtadm", "iptables",
                                                       "iptables-restore", "ip6tables",
                                                       "ip6tables-restore", "nft")},
                  paths={cfg.globals.iet_volume: True}, answers={"tgtd": "", "parent": ""},
                  wait_flag=True, portal_addresses=["192.0.2.1"],
                  unit={"installed": "/lib/systemd/system/tapeshared.service",
                        "enabled": "enabled"})
    return facts


def levels(found, prefix):
    return [c.level for c in found if c.name.startswith(prefix)]


@pytest.mark.parametrize("backend", ["iet", "lio", "tgt"])
def test_a_good_host_is_all_ok_and_exits_0(backend):
    found = checks.run_all(good(backend=backend, firewall="iptables", portal="192.0.2.1"))
    assert [c for c in found if c.level != OK] == []
    assert checks.exit_code(found) == 0


def breaks():
    """(what, change to the facts, settings, check name prefix, level)."""
    def setter(**values):
        def change(facts):
            for key, value in values.items():
                setattr(facts, key, value)
        return change

    def edit(func):
        return func
    return [
        ("old python", setter(python=(3, 5, 2)), {}, "python", FAIL),
        ("no pyudev", edit(lambda f: f.modules.update(pyudev=None)), {}, "module pyudev", FAIL),
        ("no systemd module", edit(lambda f: f.modules.update(systemd=None)), {},
         "module systemd", WARN),
        ("bad config", setter(config=None, config_error="x.conf:3: bad"), {},
         "configuration", FAIL),
        ("udev fails", setter(udev_error="no /sys"), {}, "udev", FAIL),
        ("device gone", setter(devices=[]), {}, "device tape0 LUN 0", WARN),
        ("identity unreadable", setter(devices=[builders.tape(
            "1:0:6:0", serial="HU1", problems=("vpd_pg80 unreadable",))]), {},
         "device tape0", WARN),
        ("lio module missing", setter(lio_parts=[("module target_core_pscsi", False,
                                                  "not loaded", "modprobe")]),
         {"backend": "lio"}, "lio module", FAIL),
        ("no ietadm", edit(lambda f: f.tools.update(ietadm=None)), {"backend": "iet"},
         "tool ietadm", FAIL),
        ("no /proc/net/iet", edit(lambda f: f.paths.clear()), {"backend": "iet"}, "iet ",
         FAIL),
        ("no tgtadm", edit(lambda f: f.tools.update(tgtadm=None)), {"backend": "tgt"},
         "tool tgtadm", FAIL),
        ("tgtd silent", edit(lambda f: f.answers.update(tgtd="tgtadm: exit status 107")),
         {"backend": "tgt"}, "tgtd answers", FAIL),
        ("no iptables-restore", edit(lambda f: f.tools.update({"iptables-restore": None})),
         {"firewall": "iptables"}, "tool iptables-restore", FAIL),
        ("no parent chain", edit(lambda f: f.answers.update(parent="No chain")),
         {"firewall": "iptables"}, "firewall parent", FAIL),
        ("no -w", setter(wait_flag=False), {"firewall": "iptables"}, "iptables-restore -w",
         WARN),
        ("no nft", edit(lambda f: f.tools.update(nft=None)), {"firewall": "nftables"},
         "tool nft", FAIL),
        ("conflict", setter(conflicts=[("/etc/tgt/targets.conf", "target x is ours", FAIL)]),
         {}, "other target", FAIL),
        ("portal absent", setter(portal_addresses=[]), {"portal": "192.0.2.1"}, "portal",
         WARN),
        ("portal broken", setter(portal_error="no such interface"), {"portal": "eth9"},
         "portal", FAIL),
        ("state_dir", setter(state_dir_problem="read-only file system"), {}, "state_dir",
         FAIL),
        ("no unit", setter(unit={}), {}, "service", WARN),
        ("unit disabled", setter(unit={"installed": "/lib/systemd/system/tapeshared.service",
                                       "enabled": "disabled"}), {}, "service", WARN),
    ]


@pytest.mark.parametrize("what, change, settings, prefix, level", breaks(),
                         ids=[b[0] for b in breaks()])
def test_each_check_fails_on_its_own(what, change, settings, prefix, level):
    facts = good(**settings)
    change(facts)
    found = checks.run_all(facts)
    assert level in levels(found, prefix), (what, found)
    assert all(c.fix for c in found if c.level != OK), what  # always says what to do
    assert checks.exit_code(found) == (2 if level == FAIL else 1)
    if level == WARN:
        assert FAIL not in [c.level for c in found]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_other_tools_configurations_that_claim_our_target_or_device(tmp_path):
    etc = str(tmp_path)
    cfg = builders.config(builders.export(serial="HU1"), backend="lio")
    tape = builders.tape("1:0:6:0", serial="HU1", sg="/dev/sg1")
    assert conflicts(cfg, [tape], etc, restore_enabled=True) == []
    write(etc + "/tgt/conf.d/a.conf", "<target iqn.2008-09.com.example:other>\n"
          "  direct-store /dev/sg1\n</target>\n")
    write(etc + "/ietd.conf", "Target %s\n\tLun 0 H=9,C=0,I=0,L=0,Type=rawio\n" % builders.IQN)
    write(etc + "/target/saveconfig.json", '{"storage_objects": [], "targets": [{"wwn": '
          '"iqn.2003-01.org.example:x", "fabric": "iscsi", "tpgs": []}]}')
    write(etc + "/rtslib-fb-target/saveconfig.json", "{broken")
    found = conflicts(cfg, [tape], etc, restore_enabled=True)
    claims = sorted((os.path.relpath(p, etc), level, claim.split(" (")[0])
                    for p, claim, level in found)
    assert claims == [
        ("ietd.conf", FAIL, "target %s is ours" % builders.IQN),
        ("rtslib-fb-target/saveconfig.json", WARN, "cannot be parsed: %s/rtslib-fb-target/"
         "saveconfig.json:1: not JSON: Expecting property name enclosed in double quotes"
         % etc),
        ("target/saveconfig.json", WARN, "restored at boot by target.service"),
        ("tgt/conf.d/a.conf", FAIL, "LUN 1 of iqn.2008-09.com.example:other is our "
                                    "device serial:HU1"),
    ]


def test_our_own_block_in_the_managed_ietd_conf_is_no_conflict(tmp_path):
    from tapeshared.backends.iet.conf import BEGIN, END
    path = str(tmp_path / "ietd.conf")
    cfg = builders.config(builders.export(serial="HU1"), backend="iet", ietd_conf=path)
    write(path, "%s\nTarget %s\n\tLun 0 H=1,C=0,I=6,L=0,Type=rawio\n%s\n" % (
        BEGIN, builders.IQN, END))
    assert conflicts(cfg, [], str(tmp_path / "etc"), False) == []
    write(path, "Target %s\n" % builders.IQN)
    assert [level for _p, _c, level in conflicts(cfg, [], str(tmp_path / "etc"), False)] \
        == [FAIL]
