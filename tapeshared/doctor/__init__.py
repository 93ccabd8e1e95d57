"""`tapeshared doctor`: will tapeshared work on this host? One line per check."""

import json
import sys
from typing import List, TextIO

from tapeshared.doctor.checks import Check, exit_code, run_all

EPILOG = """Each check prints one line: ok, warn or fail, what was seen and what to do.
exit codes:
  0  every check ok
  1  at least one warning (it may work, see what to do)
  2  at least one failure (it will not work until fixed)
"""


def render(found: List[Check], out: TextIO) -> None:
    for check in found:
        out.write("%-4s  %s: %s%s\n" % (check.level, check.name, check.detail,
                                       "  -> " + check.fix if check.fix and
                                       check.level != "ok" else ""))


def main(config_path: str, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Gather, check, print; the exit code is the worst verdict."""
    from tapeshared.doctor.facts import gather
    found = run_all(gather(config_path))
    code = exit_code(found)
    if as_json:
        json.dump({"schema": 1, "exit": code, "checks": [
            {"name": c.name, "level": c.level, "detail": c.detail, "fix": c.fix}
            for c in found]}, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        render(found, out)
    return code
