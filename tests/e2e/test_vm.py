"""Run each tests/e2e/scenarios/*.sh in a nested VM boot.

Scenarios share boots (BOOTS); the boots run side by side in lanes (one VM
per lane, TAPESHARED_E2E_LANES, default 2 where the host has two CPUs or
more), the longest first, so the tier takes about its longest lane.

Skipped when the VM tier cannot run here (no QEMU, not root, the image cannot
be built) unless TAPESHARED_E2E=1, where that is a failure.
"""

import concurrent.futures
import importlib.util
import os
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# demo and *-bench print figures for people; they are run by run.py, not here.
SCENARIOS = sorted(
    name[:-3] for name in os.listdir(os.path.join(HERE, "scenarios"))
    if name.endswith(".sh") and name != "demo.sh" and not name.endswith("-bench.sh")
)

pytestmark = pytest.mark.e2e

# Run again in one boot of the older guest kernel (run.py --kernel old): its
# scsi_debug has no tape data I/O, so these check TUR/INQUIRY/mt status there.
# lio-library runs here too: 5.10's scsi_debug answers INQUIRY with the
# module's current ptype for every device, so the scenario holds ptype at each
# device's own type while that device is scanned or compared (see the scenario).
OLD_KERNEL_GROUP = ("lio-export-io", "lio-renumber", "lio-restart-reload", "lio-library",
                    "lio-lun0")

# (boot, kernel, scenarios in boot order, seconds it took in a run of two
# lanes under TCG). Each scenario cleans up after itself. The seconds only
# order the boots, longest first. tgt-library boots alone: after tgt-renumber
# in the same boot it hit I/O errors on tgtd's side now and then. smoke checks
# a fresh guest, so it comes first in its boot. A scenario that is in no boot
# here boots alone.
BOOTS = (
    ("lio-b", "default", ("lio-restart-reload", "lio-firewall", "lio-squatter", "lio-doctor",
                          "lio-kill", "lio-lun0"), 400),
    ("tgt", "default", ("smoke", "tgt-export-io", "tgt-renumber", "tgt-reset", "tgt-kill"),
     379),
    ("lio-a", "default", ("lio-rescan", "lio-export-io", "lio-renumber", "lio-reset",
                          "lio-library", "lio-no-reexport", "iet-repoint"), 304),
    ("deb-install", "default", ("deb-install",), 184),
    ("old-kernel", "old", OLD_KERNEL_GROUP, 175),
    ("tgt-library", "default", ("tgt-library",), 95),
)
BOOT_TIMEOUT = 1200


def boot_of(scenario, kernel):
    """The (name, kernel, members) of the boot that runs scenario on kernel."""
    for name, boot_kernel, members, _ in BOOTS:
        if boot_kernel == kernel and scenario in members:
            return name, kernel, tuple(m for m in members if m in SCENARIOS)
    return scenario, kernel, (scenario,)


def _weight(boot):
    for name, _, _, seconds in BOOTS:
        if name == boot[0]:
            return seconds
    return 60


def _lanes():
    cpus = os.cpu_count() or 1
    lanes = int(os.environ.get("TAPESHARED_E2E_LANES") or min(2, cpus))
    per_vm = int(os.environ.get("TAPESHARED_E2E_CPUS") or max(1, cpus // max(lanes, 1)))
    if lanes < 1 or per_vm < 1:
        raise ValueError("TAPESHARED_E2E_LANES and TAPESHARED_E2E_CPUS must be >= 1")
    return lanes, per_vm


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


class Lanes:
    """The selected tests' boots, started at once on a pool of lanes."""

    def __init__(self, runner, image, base, lanes, cpus):
        self.runner, self.image, self.base, self.cpus = runner, image, base, cpus
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=lanes)
        self.futures = {}
        self.spans = []

    def start(self, boots):
        for boot in sorted(boots, key=lambda b: (-_weight(b), b[0])):
            self.futures[boot] = self.pool.submit(self._run, boot)

    def _run(self, boot):
        name, kernel, members = boot
        started = time.monotonic()
        try:
            image = self.runner.ensure_kernel_image(self.image, kernel, quiet=True)
            results = os.path.join(self.base, name)
            return self.runner.run_scenarios(list(members), image=image, results_dir=results,
                                             echo=False, timeout=BOOT_TIMEOUT, cpus=self.cpus)
        except self.runner.Unavailable as exc:  # e.g. deb-*: the .deb cannot be built here
            return exc
        finally:
            self.spans.append((name, started, time.monotonic()))

    def result(self, boot):
        return self.futures[boot].result()


def _selected_boots(items):
    boots = set()
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "scenario" not in params:
            continue
        kernel = "old" if item.originalname == "test_scenario_old_kernel" else "default"
        boots.add(boot_of(params["scenario"], kernel))
    return boots


@pytest.fixture(scope="session")
def lanes(request, runner, image, tmp_path_factory):
    count, cpus = _lanes()
    pool = Lanes(runner, image, str(tmp_path_factory.mktemp("boots")), count, cpus)
    started = time.monotonic()
    pool.start(_selected_boots(request.session.items))
    yield pool
    pool.pool.shutdown(wait=True)
    # conftest.py prints these in pytest's summary (output is captured here)
    lines = ["VM tier: %d lane(s), %d CPU(s) per VM, %.0f s in all" % (
        count, cpus, time.monotonic() - started)]
    for name, begin, end in sorted(pool.spans, key=lambda s: s[1]):
        lines.append("  boot %-12s %6.0f s .. %6.0f s (%4.0f s)" % (
            name, begin - started, end - started, end - begin))
    request.config.tapeshared_vm_boots = lines


def _check(lanes, scenario, kernel):
    boot = boot_of(scenario, kernel)
    result = lanes.result(boot)
    if isinstance(result, Exception):
        if os.environ.get("TAPESHARED_E2E") == "1":
            pytest.fail("scenario %s cannot run (TAPESHARED_E2E=1): %s" % (scenario, result))
        pytest.skip("scenario %s cannot run here: %s" % (scenario, result))
    try:
        with open(os.path.join(result.results_dir, scenario + ".rc")) as handle:
            rc = int(handle.read().strip())
    except (OSError, ValueError):
        rc = result.rc if len(boot[2]) == 1 else -1
    assert rc == 0, "scenario %s (boot %s, %s kernel): exit %d (console: %s)\n%s" % (
        scenario, boot[0], kernel, rc, result.console_log, result.console_tail())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(lanes, scenario):
    _check(lanes, scenario, "default")


@pytest.mark.parametrize("scenario", [s for s in OLD_KERNEL_GROUP if s in SCENARIOS])
def test_scenario_old_kernel(lanes, scenario):
    _check(lanes, scenario, "old")
