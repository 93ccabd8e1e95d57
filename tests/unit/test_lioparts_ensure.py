"""LIO's kernel parts brought up by the daemon: modprobe, configfs, the fabric.

A stand-in /sys/module, /proc/mounts and configfs tree in tmp_path; the command
runner is a fake that does what modprobe and mount would (or fails)."""

import logging
import os

import pytest

from tapeshared.core.errors import CommandError
from tapeshared.host import lioparts
from tapeshared.host.lioparts import LioParts, PartsMissing


class Host:
    """A host whose modprobe and mount work (or fail, per name)."""

    def __init__(self, tmp_path, loaded=(), mounted=False, broken=()):
        self.sys_module = str(tmp_path / "sys_module")
        self.config = str(tmp_path / "config")
        self.lio_root = os.path.join(self.config, "target")
        self.mounts = str(tmp_path / "mounts")
        self.broken = set(broken)
        self.calls = []
        os.makedirs(self.sys_module)
        os.makedirs(self.config)
        for module in loaded:
            self.load(module)
        self.write_mounts(mounted)

    def write_mounts(self, mounted):
        with open(self.mounts, "w") as handle:
            handle.write("proc /proc proc rw 0 0\n")
            if mounted:
                handle.write("configfs %s configfs rw 0 0\n" % self.config)

    def load(self, module):
        os.makedirs(os.path.join(self.sys_module, module))
        if module == "target_core_mod":
            os.makedirs(self.lio_root, exist_ok=True)

    def run(self, argv):
        self.calls.append(list(argv))
        assert isinstance(argv, list), "argv must be a list"
        what = argv[-1]
        if what in self.broken:
            raise CommandError(argv, 1, "modprobe: FATAL: Module %s not found" % what)
        if argv[0] == "modprobe":
            self.load(what)
        elif argv[0] == "mount":
            self.write_mounts(True)

    def parts(self):
        return LioParts(self.lio_root, self.run, self.sys_module, self.mounts)


def test_a_cold_host_gets_modules_configfs_and_the_fabric_and_says_so(tmp_path, caplog):
    host = Host(tmp_path)
    caplog.set_level(logging.INFO, logger="tapeshared.host.lioparts")
    done = host.parts().ensure()
    assert host.calls == [["modprobe", m] for m in lioparts.MODULES] + [
        ["mount", "-t", "configfs", "configfs", host.config]]
    assert done == ["loaded module target_core_mod", "loaded module target_core_pscsi",
                    "loaded module iscsi_target_mod", "mounted configfs on %s" % host.config,
                    "registered the iSCSI fabric (%s/iscsi)" % host.lio_root]
    assert os.path.isdir(os.path.join(host.lio_root, "iscsi"))
    assert [r.getMessage() for r in caplog.records] == ["LIO kernel parts: " + d for d in done]
    assert host.parts().missing() == []


def test_only_the_fabric_missing_is_a_mkdir_and_no_command(tmp_path):
    host = Host(tmp_path, loaded=lioparts.MODULES, mounted=True)
    assert host.parts().ensure() == ["registered the iSCSI fabric (%s/iscsi)" % host.lio_root]
    assert host.calls == []


def test_everything_there_runs_nothing_and_logs_nothing(tmp_path, caplog):
    host = Host(tmp_path, loaded=lioparts.MODULES, mounted=True)
    os.makedirs(os.path.join(host.lio_root, "iscsi"))
    caplog.set_level(logging.DEBUG, logger="tapeshared.host.lioparts")
    assert host.parts().ensure() == []
    assert host.calls == [] and caplog.records == []


def test_a_module_that_cannot_load_is_named_with_what_to_do(tmp_path):
    host = Host(tmp_path, broken={"iscsi_target_mod"})
    with pytest.raises(PartsMissing) as err:
        host.parts().ensure()
    text = str(err.value)
    assert text == ("LIO kernel part missing: module iscsi_target_mod not loaded (modprobe "
                    "iscsi_target_mod (tapeshared ships a modules-load.d file that loads it "
                    "at boot))")
    # the other parts came up: the next attempt only needs the one module
    assert [p.name for p in host.parts().missing()] == ["module iscsi_target_mod"]


def test_the_fabric_is_retried_once_the_module_appears(tmp_path):
    """Today's failure: modules loaded by hand after the daemon started."""
    host = Host(tmp_path, broken={"target_core_mod", "target_core_pscsi",
                                  "iscsi_target_mod"}, mounted=True)
    parts = host.parts()
    with pytest.raises(PartsMissing):
        parts.ensure()
    for module in lioparts.MODULES:  # the admin's modprobe
        host.load(module)
    assert parts.ensure() == ["registered the iSCSI fabric (%s/iscsi)" % host.lio_root]
    assert parts.missing() == []


def test_a_failed_mkdir_leaves_the_fabric_named(tmp_path):
    host = Host(tmp_path, loaded=lioparts.MODULES, mounted=True)

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    done, still = lioparts.ensure(host.lio_root, host.run, host.sys_module, host.mounts,
                                  mkdir=refuse)
    assert done == [] and [p.name for p in still] == [host.lio_root + "/iscsi"]
    assert "mkdir %s/iscsi" % host.lio_root in lioparts.problem(still)
