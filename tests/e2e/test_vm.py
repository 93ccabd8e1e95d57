"""Run each tests/e2e/scenarios/*.sh in its own nested VM boot.

Skipped when the VM tier cannot run here (no QEMU, not root, the image cannot
be built) unless TAPESHARED_E2E=1, where that is a failure.
"""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = sorted(
    name[:-3] for name in os.listdir(os.path.join(HERE, "scenarios")) if name.endswith(".sh")
)

pytestmark = pytest.mark.e2e


def _load_runner():
    path = os.path.join(HERE, "run.py")
    spec = importlib.util.spec_from_file_location("tapeshared_e2e_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def runner():
    return _load_runner()


@pytest.fixture(scope="session")
def image(runner):
    try:
        runner.require_tools("qemu-system-x86_64")
        return runner.ensure_image(quiet=True)
    except runner.Unavailable as exc:
        if os.environ.get("TAPESHARED_E2E") == "1":
            pytest.fail("nested-VM tier required (TAPESHARED_E2E=1) but unavailable: %s" % exc)
        pytest.skip("nested-VM tier unavailable: %s" % exc)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(runner, image, scenario, tmp_path):
    result = runner.run_scenarios([scenario], image=image, results_dir=str(tmp_path),
                                  echo=False)
    assert result.rc == 0, "scenario %s: exit %d (console: %s)\n%s" % (
        scenario, result.rc, result.console_log, result.console_tail())
