"""Command runner adapter: argv lists only, LC_ALL=C, timeouts, logged effects."""

import logging
import os
import subprocess
from typing import Dict, Optional, Sequence

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
    """Runs external commands; the only place tapeshared spawns processes."""

    def __init__(self, timeout: float = 60.0, env: Optional[Dict[str, str]] = None) -> None:
        self.timeout = timeout
        self.extra_env = dict(env or {})

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
        extra = {"input": input_text} if input_text is not None else {
            "stdin": subprocess.DEVNULL}  # 3.6 refuses input= together with stdin=
        try:
            proc = subprocess.run(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                timeout=limit, universal_newlines=True, close_fds=True, **extra)
        except FileNotFoundError as exc:
            raise CommandError(argv, None, str(exc), "not found")
        except subprocess.TimeoutExpired:
            raise CommandError(argv, None, "", "timed out after %gs" % limit)
        level = logging.DEBUG if quiet else logging.INFO
        log.log(level, "ran %s: rc=%d", " ".join(argv), proc.returncode)
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr)
        return result
