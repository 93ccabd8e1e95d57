"""A temporary root with a tapeshared config wired to the IET stand-in."""

import importlib.util
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Set

from tapeshared.core.errors import TransientError
from tapeshared.core.model import Hctl
from tapeshared.host import scsireset

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "iet_standin.py")
# on PYTHONPATH with TAPESHARED_TEST_RESET_LOG: the reset faked in every process
HOSTFAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostfake")


class IetRoot:
    """Paths, config writing and the stand-in's counters for one test."""

    def __init__(self, base: str) -> None:
        self.base = base
        for sub in ("etc/tapeshared/conf.d", "proc/net/iet", "run/tapeshared",
                    "standin/sysfs", "secrets"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        self.conf = self.path("etc/tapeshared/tapeshared.conf")
        self.ietd_conf = self.path("etc/ietd.conf")
        self.allow = self.path("etc/initiators.allow")
        self.deny = self.path("etc/initiators.deny")
        self.volume = self.path("proc/net/iet/volume")
        self.session = self.path("proc/net/iet/session")
        # the host side of a re-point: which kernel object each address holds
        # (bumped by replug) and the logical-unit resets done (see fake_reset)
        self.generation: Dict[str, int] = {}
        self.resets: List[str] = []
        self.expected: List[Optional[str]] = []  # the instance each reset call named
        self.fail_resets = 0
        self.empty: Set[str] = set()  # addresses the host's sysfs shows no device at

    def path(self, rel: str) -> str:
        return os.path.join(self.base, rel)

    def standin_argv(self, action: str) -> str:
        return " ".join(shlex.quote(a) for a in (sys.executable, STANDIN, "--root",
                                                 self.base, action))

    def global_section(self, **extra: str) -> str:
        values = {
            "backend": "iet",
            "ietd_conf": self.ietd_conf,
            "initiators_allow": self.allow,
            "initiators_deny": self.deny,
            "iet_volume": self.volume,
            "iet_session": self.session,
            "restart_command": self.standin_argv("restart"),
            "ietadm": self.standin_argv("ietadm"),
            "state_dir": self.path("run/tapeshared"),
            "verify_timeout": "1",
            "lock_timeout": "2",
            "iqn_prefix": "iqn.2007-04.com.example",
        }
        values.update(extra)
        return "[global]\n" + "".join("%s = %s\n" % kv for kv in values.items())

    def write_config(self, exports: str, **extra: str) -> str:
        with open(self.conf, "w") as handle:
            handle.write(self.global_section(**extra) + "\n" + exports)
        return self.conf

    def present(self, *hctls: str) -> None:
        """Tell the stand-in which SCSI addresses exist (its view of sysfs)."""
        sysfs = self.path("standin/sysfs")
        for name in os.listdir(sysfs):
            os.rmdir(os.path.join(sysfs, name))
        for hctl in hctls:
            os.mkdir(os.path.join(sysfs, hctl))

    def counter(self, name: str) -> int:
        try:
            return int(open(self.path("standin/" + name)).read() or 0)
        except FileNotFoundError:
            return 0

    @property
    def restarts(self) -> int:
        return self.counter("restarts")

    def read(self, path: str) -> Optional[str]:
        try:
            return open(path).read()
        except FileNotFoundError:
            return None

    def set_sessions(self, lines: List[str]) -> None:
        with open(self.session, "w") as handle:
            handle.write("".join(line + "\n" for line in lines))

    def secret(self, name: str, value: str, mode: int = 0o600) -> str:
        path = self.path("secrets/" + name)
        with open(path, "w") as handle:
            handle.write(value + "\n")
        os.chmod(path, mode)
        return path

    def fake_host_reset(self, monkeypatch: Any) -> None:
        """The host's logical-unit reset faked (see hostfake) here and in every
        process the test starts; each reset goes to the stand-in's log."""
        spec = importlib.util.spec_from_file_location(
            "tapeshared_test_hostfake", os.path.join(HOSTFAKE, "sitecustomize.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore
        log = self.path("standin/log")
        monkeypatch.setattr(scsireset, "reset_lu", module.fake_reset_lu(log))  # type: ignore
        monkeypatch.setenv("TAPESHARED_TEST_RESET_LOG", log)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            + [HOSTFAKE]))

    def replug(self, hctl: str) -> None:
        """The device at hctl is now a new kernel object (a rescan, a power cycle)."""
        self.generation[hctl] = self.generation.get(hctl, 0) + 1

    def instance(self, hctl: Hctl) -> Optional[str]:
        """scsireset.instance as the host's sysfs would answer: None for an address
        in `empty`. (The stand-in's own sysfs is what ietd can open: a test may
        hide a device from ietd alone.)"""
        if str(hctl) in self.empty:
            return None
        return "%s#%d" % (hctl, self.generation.get(str(hctl), 0))

    def fake_reset(self, hctl: Hctl, expect: Optional[str] = None) -> str:
        """scsireset.reset_lu's contract: refuse another instance than expected,
        fail (fail_resets times) as a host adapter that cannot reset; each reset
        done goes to the stand-in's log, so its order against restarts shows."""
        where = "reset of the device at %s" % hctl
        self.expected.append(expect)
        if self.fail_resets > 0:
            self.fail_resets -= 1
            raise TransientError("%s (/dev/sg3): the host adapter could not reset "
                                 "the logical unit" % where)
        if self.instance(hctl) is None:
            raise TransientError("%s: the address holds no device now" % where)
        if expect is not None and self.instance(hctl) != expect:
            raise TransientError("%s: the address holds another device than the one "
                                 "bound; not reset" % where)
        self.resets.append(str(hctl))
        with open(self.path("standin/log"), "a") as handle:
            handle.write("reset %s\n" % hctl)
        return "/dev/sg3"

    def log(self) -> List[str]:
        """The stand-in's log lines (restarts, ietadm, resets), in order."""
        return (self.read(self.path("standin/log")) or "").splitlines()
