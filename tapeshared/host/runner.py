"""Command runner adapter: argv lists only, LC_ALL=C, timeouts, logged effects."""

import logging
import os
import selectors
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tapeshared.core.errors import CommandError

log = logging.getLogger(__name__)


class Result:
    """What a finished command returned."""

    def __init__(self, argv: Sequence[str], rc: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class Runner:
    """Runs external commands; the only place tapeshared spawns processes.

    With `keepalive`, a command is waited for in slices of `poll` seconds and
    keepalive() is called between them (the daemon's watchdog): the wait stays
    bounded by the command's timeout, after which the command is killed.
    """

    def __init__(self, timeout: float = 60.0, env: Optional[Dict[str, str]] = None,
                 keepalive: Optional[Callable[[], None]] = None, poll: float = 0.5) -> None:
        self.timeout = timeout
        self.extra_env = dict(env or {})
        self.keepalive = keepalive
        self.poll = poll

    def run(self, argv: Sequence[str], check: bool = True, timeout: Optional[float] = None,
            input_text: Optional[str] = None, quiet: bool = False,
            env_extra: Optional[Dict[str, str]] = None) -> Result:
        """Run argv; raise CommandError on failure when check is set."""
        if isinstance(argv, str):
            raise TypeError("argv must be a list, not a string")
        env = dict(os.environ)
        env.update(self.extra_env)
        env.update(env_extra or {})
        env["LC_ALL"] = "C"
        limit = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
                close_fds=True)
        except FileNotFoundError as exc:
            raise CommandError(argv, None, str(exc), "not found")
        except OSError as exc:  # EACCES, ENOEXEC, E2BIG: a clean error, never a traceback
            raise CommandError(argv, None, str(exc), "cannot be run")
        try:
            stdout, stderr = self._wait(proc, limit, input_text)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise CommandError(argv, None, "", "timed out after %gs" % limit)
        finally:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        level = logging.DEBUG if quiet else logging.INFO
        log.log(level, "ran %s: rc=%d", " ".join(argv), proc.returncode)
        result = Result(argv, proc.returncode, stdout, stderr)
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, stderr)
        return result

    def _step(self, deadline: float) -> float:
        """How long the next wait may block; TimeoutExpired once the deadline passed."""
        if self.keepalive is not None:
            self.keepalive()
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired("", 0)
        return left if self.keepalive is None else min(left, self.poll)

    def _wait(self, proc: "subprocess.Popen[bytes]", limit: float,
              input_text: Optional[str]) -> Tuple[str, str]:
        """Feed input_text, collect stdout and stderr, wait for the exit; a select
        loop of our own, because communicate() cannot resume writing input after
        a timeout and the keepalive needs one every `poll` seconds."""
        deadline = time.monotonic() + limit
        pending = memoryview((input_text or "").encode("utf-8"))
        chunks: Dict[int, List[bytes]] = {}
        with selectors.DefaultSelector() as selector:
            for pipe in (proc.stdout, proc.stderr):
                assert pipe is not None
                chunks[pipe.fileno()] = []
                selector.register(pipe, selectors.EVENT_READ)
            if proc.stdin is not None:
                if pending:
                    os.set_blocking(proc.stdin.fileno(), False)
                    selector.register(proc.stdin, selectors.EVENT_WRITE)
                else:
                    proc.stdin.close()
            while selector.get_map():
                for key, _mask in selector.select(self._step(deadline)):
                    if key.fileobj is proc.stdin:
                        try:
                            pending = pending[os.write(key.fd, pending[:65536]):]
                        except BrokenPipeError:
                            pending = pending[:0]  # it stopped reading: its exit status says why
                        except BlockingIOError:
                            continue
                        if not pending:
                            selector.unregister(key.fileobj)
                            proc.stdin.close()
                        continue
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fileobj)
        while True:
            try:
                proc.wait(timeout=self._step(deadline))
                break
            except subprocess.TimeoutExpired:
                continue
        assert proc.stdout is not None and proc.stderr is not None
        return (_text(b"".join(chunks[proc.stdout.fileno()])),
                _text(b"".join(chunks[proc.stderr.fileno()])))


def _text(data: bytes) -> str:
    """A command's output as text: never a decode error from what a tool printed."""
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
