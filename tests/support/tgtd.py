"""A real tgtd in a private network namespace, on its own control port (tests, benchmark)."""

import contextlib
import os
import random
import shutil
import subprocess
import time
import uuid
from typing import Iterator, Optional, Tuple

from tapeshared.core.errors import TransientError
from tapeshared.host.runner import Runner


class Unavailable(Exception):
    """tgtd cannot run here; the message says why."""


def why_not() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root for a network namespace and tgtd"
    for tool in ("ip", "tgtd", "tgtadm", "sh"):
        if shutil.which(tool) is None:
            return "%s is not installed (Debian package tgt)" % tool
    return None


class CountingRunner(Runner):
    """The real runner, remembering every argv it ran."""

    def __init__(self) -> None:
        super().__init__(timeout=20)
        self.seen: list = []

    def run(self, argv, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.seen.append(tuple(argv))
        return super().run(argv, *args, **kwargs)

    def changes(self) -> list:
        return [a for a in self.seen if "show" not in a]


@contextlib.contextmanager
def running(logdir: str) -> Iterator[Tuple[str, ...]]:
    """tgtd -f in a new netns (portal 127.0.0.1 there); yields the tgtadm prefix."""
    reason = why_not()
    if reason:
        raise Unavailable(reason)
    ns = "ts-tgt-%s" % uuid.uuid4().hex[:8]
    port = random.randint(20000, 29999)
    while os.path.exists("/run/tgtd/socket.%d" % port):
        port += 1
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        raise Unavailable("ip netns add failed")
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
    logpath = os.path.join(logdir, "tgtd.log")
    log = open(logpath, "w")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tgtd", "-f", "-C", str(port),
                             "--iscsi", "portal=127.0.0.1:3260"], stdout=log, stderr=log)
    adm = ("tgtadm", "-C", str(port))
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(list(adm) + ["--lld", "iscsi", "--mode", "target", "--op",
                                          "show"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(logpath) as handle:
                    raise Unavailable("tgtd did not start: %s" % handle.read()[-500:])
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


class FakeDrive:
    """Stands in for the drive reset where there are no SCSI devices (rdwr LUNs).

    Records each reset as ("reset", hctl, path) in `seen` (share a runner's list
    to see resets and tgtadm runs in one order); `fail` makes resets refuse, as
    the real one does, with a TransientError naming the device; `instances`
    (address -> kernel object) lets a test replace the device behind an address.
    """

    def __init__(self, seen: Optional[list] = None) -> None:
        self.seen = seen if seen is not None else []
        self.fail = ""
        self.instances: dict = {}

    def instance(self, hctl):  # type: ignore[no-untyped-def]
        return self.instances.setdefault(str(hctl), "1")

    def reset(self, hctl, path):  # type: ignore[no-untyped-def]
        if self.fail:
            raise TransientError("reset of %s (%s) before it is exported: %s" % (
                hctl, path, self.fail))
        self.seen.append(("reset", str(hctl), path))
        return self.instance(hctl)

    def holds(self, path, hctl, instance):  # type: ignore[no-untyped-def]
        return self.instance(hctl) == instance

    def resets(self) -> list:
        return [entry for entry in self.seen if entry[0] == "reset"]
