"""Test helpers: private network namespaces, a namespaced Runner, TCP probes."""

import os
import shutil
import subprocess
import sys
import uuid
from typing import List, Optional, Sequence

from tapeshared.host.runner import Result, Runner

LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""

CLIENT = r"""
import socket, sys
src, dst, port, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(limit)
s.bind((src, 0))
try:
    s.connect((dst, port))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print("error %s" % exc)
"""


def skip_reason(tools: Sequence[str]) -> Optional[str]:
    """Why namespace tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ["ip"] + list(tools):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    probe = "tsfw-probe-%s" % uuid.uuid4().hex[:8]
    made = subprocess.run(["ip", "netns", "add", probe], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if made.returncode != 0:
        return "ip netns add failed: %s" % made.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return None


class Netns:
    """A named network namespace that exists until delete()."""

    def __init__(self, prefix: str = "tsfw") -> None:
        self.name = "%s-%s" % (prefix, uuid.uuid4().hex[:10])
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"])

    def argv(self, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", self.name] + list(argv)

    def run(self, argv: Sequence[str], check: bool = True,
            input_text: Optional[str] = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(argv), input=input_text, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed: rc=%d %s" % (
                " ".join(argv), proc.returncode, proc.stderr))
        return proc

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


class NetnsRunner(Runner):
    """A Runner whose commands all run inside one network namespace."""

    def __init__(self, ns: Netns) -> None:
        super().__init__(timeout=30.0)
        self.ns = ns
        self.calls = []  # type: List[List[str]]

    def run(self, argv: Sequence[str], check: bool = True, timeout: Optional[float] = None,
            input_text: Optional[str] = None, quiet: bool = False) -> Result:
        self.calls.append(list(argv))
        result = super().run(self.ns.argv(argv), check=check, timeout=timeout,
                             input_text=input_text, quiet=quiet)
        result.argv = list(argv)
        return result


def link(portal: Netns, initiator: Netns, portal_addrs: Sequence[str],
         initiator_addrs: Sequence[str]) -> None:
    """Join two namespaces with a veth pair and put the addresses on its ends."""
    end_a, end_b = "tsa%s" % portal.name[-6:], "tsb%s" % portal.name[-6:]
    subprocess.run(["ip", "link", "add", end_a, "netns", portal.name, "type", "veth",
                    "peer", "name", end_b, "netns", initiator.name], check=True)
    for ns, end, addrs in ((portal, end_a, portal_addrs), (initiator, end_b, initiator_addrs)):
        for addr in addrs:
            extra = ["nodad"] if ":" in addr else []
            ns.run(["ip", "addr", "add", addr, "dev", end] + extra)
        ns.run(["ip", "link", "set", end, "up"])


class Listener:
    """A TCP listener on every address of a namespace, accepting and closing."""

    def __init__(self, ns: Netns, port: int) -> None:
        self.proc = subprocess.Popen(ns.argv([sys.executable, "-c", LISTENER, str(port)]),
                                     stdout=subprocess.PIPE, universal_newlines=True)
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if line != "ready":
            self.stop()
            raise AssertionError("listener did not start: %r" % line)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


def connect(ns: Netns, src: str, dst: str, port: int, limit: float = 2.0) -> str:
    """One bounded connection attempt: connected, refused, timeout or error."""
    proc = ns.run([sys.executable, "-c", CLIENT, src, dst, str(port), str(limit)])
    return proc.stdout.strip()


ECHO = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
def serve(c):
    with c:
        while True:
            data = c.recv(4096)
            if not data:
                return
            c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

SESSION = r"""
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(3.0)
s.bind((src, 0))
def exchange(word):
    try:
        s.sendall(word)
        got = s.recv(64)
        return "data" if got == word else ("closed" if not got else "other")
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        return "error %s" % exc
try:
    s.connect((dst, port))
except OSError as exc:
    print("connect failed %s" % exc, flush=True)
    sys.exit(0)
print(exchange(b"first"), flush=True)
for line in sys.stdin:
    print(exchange(line.strip().encode()), flush=True)
"""


class EchoListener(Listener):
    """A TCP listener on every address of a namespace that echoes what it gets."""

    def __init__(self, ns: Netns, port: int) -> None:  # pylint: disable=super-init-not-called
        self.proc = subprocess.Popen(ns.argv([sys.executable, "-c", ECHO, str(port)]),
                                     stdout=subprocess.PIPE, universal_newlines=True)
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if line != "ready":
            self.stop()
            raise AssertionError("echo listener did not start: %r" % line)


class Session:
    """One long-lived TCP connection from src to dst: each exchange() sends a word
    and says what came back (data, reset, timeout, closed), 3 s at most."""

    def __init__(self, ns: Netns, src: str, dst: str, port: int) -> None:
        self.proc = subprocess.Popen(ns.argv([sys.executable, "-c", SESSION, src, dst,
                                              str(port)]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     universal_newlines=True)
        self.first = self._answer()

    def _answer(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def exchange(self, word: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()


def add_dummy(ns: Netns, name: str, addrs: Sequence[str]) -> None:
    """A second link carrying more local addresses (a veth pair inside ns: the
    dummy driver is not available on every kernel)."""
    ns.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"])
    ns.run(["ip", "link", "set", name + "p", "up"])
    for addr in addrs:
        extra = ["nodad"] if ":" in addr else []
        ns.run(["ip", "addr", "add", addr, "dev", name] + extra)
    ns.run(["ip", "link", "set", name, "up"])


PROBER = r"""
import select, socket, sys, time
src, dst, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
counts = {}
end = time.monotonic() + seconds
print("ready", flush=True)
while time.monotonic() < end and not select.select([sys.stdin], [], [], 0)[0]:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(0.5)
    s.bind((src, 0))
    try:
        s.connect((dst, port))
        what = "connected"
    except ConnectionRefusedError:
        what = "refused"
    except OSError:
        what = "other"
    s.close()
    counts[what] = counts.get(what, 0) + 1
print(" ".join("%s=%d" % kv for kv in sorted(counts.items())), flush=True)
"""


class Prober:
    """Connects from src to dst again and again until counts() (or `seconds`; 0.5 s
    per try at most), then says how often each outcome was seen."""

    def __init__(self, ns: Netns, src: str, dst: str, port: int, seconds: float) -> None:
        self.proc = subprocess.Popen(ns.argv([sys.executable, "-c", PROBER, src, dst,
                                              str(port), str(seconds)]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     universal_newlines=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise AssertionError("prober did not start")

    def counts(self) -> dict:
        out, _ = self.proc.communicate("stop\n", timeout=60)
        return {k: int(v) for k, v in (pair.split("=") for pair in out.split())}
