"""Run each tests/e2e/scenarios/*.sh in its own nested VM boot.

Skipped when the VM tier cannot run here (no QEMU, not root, the image cannot
be built) unless TAPESHARED_E2E=1, where that is a failure.
"""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# demo and *-bench print figures for people; they are run by run.py, not here.
SCENARIOS = sorted(
    name[:-3] for name in os.listdir(os.path.join(HERE, "scenarios"))
    if name.endswith(".sh") and name != "demo.sh" and not name.endswith("-bench.sh")
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


# Scenarios that share one boot (each cleans up after itself); the rest boot
# alone. tgt-library stays alone: after tgt-renumber in the same boot it hit
# I/O errors on tgtd's side now and then. tgt-kill boots alone too: after
# tgt-reset the boot's tapes sit at other addresses than the scenario expects.
GROUPS = (
    ("lio", ("lio-rescan", "lio-export-io", "lio-renumber", "lio-reset", "lio-library",
             "lio-no-reexport", "lio-restart-reload", "lio-firewall", "lio-squatter",
             "lio-doctor", "lio-kill")),
    ("tgt", ("tgt-export-io", "tgt-renumber", "tgt-reset")),
)
GROUP_TIMEOUT = 1200
# Run again in one boot of the older guest kernel (run.py --kernel old): its
# scsi_debug has no tape data I/O, so these check TUR/INQUIRY/mt status there.
# lio-library runs here too: 5.10's scsi_debug answers INQUIRY with the
# module's current ptype for every device, so the scenario holds ptype at each
# device's own type while that device is scanned or compared (see the scenario).
OLD_KERNEL_GROUP = ("lio-export-io", "lio-renumber", "lio-restart-reload", "lio-library")


def _group(scenario):
    for name, members in GROUPS:
        if scenario in members:
            return name, [m for m in members if m in SCENARIOS]
    return scenario, [scenario]


@pytest.fixture(scope="session")
def boots():
    return {}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(runner, image, boots, scenario, tmp_path_factory):
    group, members = _group(scenario)
    if group not in boots:
        results = str(tmp_path_factory.mktemp(group))
        try:
            boots[group] = runner.run_scenarios(members, image=image, results_dir=results,
                                                echo=False, timeout=GROUP_TIMEOUT)
        except runner.Unavailable as exc:  # e.g. deb-*: the .deb cannot be built here
            boots[group] = exc
    result = boots[group]
    if isinstance(result, Exception):
        if os.environ.get("TAPESHARED_E2E") == "1":
            pytest.fail("scenario %s cannot run (TAPESHARED_E2E=1): %s" % (scenario, result))
        pytest.skip("scenario %s cannot run here: %s" % (scenario, result))
    try:
        with open(os.path.join(result.results_dir, scenario + ".rc")) as handle:
            rc = int(handle.read().strip())
    except (OSError, ValueError):
        rc = result.rc if len(members) == 1 else -1
    assert rc == 0, "scenario %s (boot %s): exit %d (console: %s)\n%s" % (
        scenario, group, rc, result.console_log, result.console_tail())


@pytest.fixture(scope="session")
def old_image(runner, image):
    try:
        return runner.ensure_kernel_image(image, "old", quiet=True)
    except runner.Unavailable as exc:
        if os.environ.get("TAPESHARED_E2E") == "1":
            pytest.fail("older-kernel guest required (TAPESHARED_E2E=1) but unavailable: %s" % exc)
        pytest.skip("older-kernel guest unavailable: %s" % exc)


@pytest.mark.parametrize("scenario", [s for s in OLD_KERNEL_GROUP if s in SCENARIOS])
def test_scenario_old_kernel(runner, old_image, boots, scenario, tmp_path_factory):
    members = [m for m in OLD_KERNEL_GROUP if m in SCENARIOS]
    if "old-kernel" not in boots:
        results = str(tmp_path_factory.mktemp("old-kernel"))
        boots["old-kernel"] = runner.run_scenarios(members, image=old_image, results_dir=results,
                                                   echo=False, timeout=GROUP_TIMEOUT)
    result = boots["old-kernel"]
    try:
        with open(os.path.join(result.results_dir, scenario + ".rc")) as handle:
            rc = int(handle.read().strip())
    except (OSError, ValueError):
        rc = -1
    assert rc == 0, "scenario %s (older kernel): exit %d (console: %s)\n%s" % (
        scenario, rc, result.console_log, result.console_tail())
