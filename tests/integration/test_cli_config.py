"""`tapeshared check-config` on every bad input: exit 78, one line on stderr, no traceback."""

import os
import subprocess
import sys

from support.configcases import CASES
from support.paths import ROOT


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_the_cli_prints_one_line_and_exits_78_for_every_bad_input(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C")
    for number, (text, where, _what) in enumerate(CASES):
        path = write(str(tmp_path / ("c%02d" % number) / "tapeshared.conf"), text)
        done = subprocess.run([sys.executable, "-m", "tapeshared", "-c", path,
                               "check-config"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=60)
        err = done.stderr.decode("utf-8", "replace")
        assert done.returncode == 78, (number, err)
        assert "Traceback" not in err, (number, err)
        assert err.count("\n") == 1 and err.endswith("\n"), (number, err)
        # under LC_ALL=C, Python 3.6 writes non-ASCII as backslash escapes
        starts = ["tapeshared: configuration error: %s%s" % (path, w) for w in (
            where, where.encode("ascii", "backslashreplace").decode("ascii"))]
        assert any(err.startswith(start) for start in starts), (number, err)
        assert not done.stdout, number
