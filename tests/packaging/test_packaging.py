"""Packaging: packaging/build.sh builds the .deb and the EL7 .rpm from a clean
copy of the checkout; their metadata is queried with rpm and dpkg-deb, and the
RPM's payload runs under Python 3.6 with only pyudev from outside it.

Skipped when the build tools are missing, unless TAPESHARED_PACKAGING=1 (CI),
which turns a missing tool into a failure. Installing the .deb on a real systemd
host is the nested-VM tier's packaging/e2e-deb-scenario.sh.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
from support.paths import ROOT

pytestmark = pytest.mark.packaging


PACKAGING = os.path.join(ROOT, "packaging")
STRICT = os.environ.get("TAPESHARED_PACKAGING") == "1"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
IGNORED = shutil.ignore_patterns(".git", ".venv*", "dist", "build", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache")
VENDORED = ("pyroute2", "tenacity", "dataclasses")
# What EL7's base repositories (XCP-ng 8.x Dom0) provide, for Requires.
EL7_BASE = {"/bin/sh", "python3", "python(abi)", "python3-pyudev", "systemd"}


def run(argv, check=True, timeout=300, **kwargs):
    """Run argv, text output captured (Python 3.6: no capture_output)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(argv), proc.returncode,
                                                    proc.stdout, proc.stderr))
    return proc


def unavailable(reason):
    """Skip, or fail when TAPESHARED_PACKAGING=1 says the tools must be there."""
    if STRICT:
        pytest.fail("TAPESHARED_PACKAGING=1 but " + reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The three packages, built by packaging/build.sh from a copy of the checkout."""
    check = run(["bash", os.path.join(PACKAGING, "build.sh"), "--check"], check=False)
    if check.returncode != 0:
        unavailable("packaging build tools missing: " + check.stderr.strip())
    for tool in ("rpm", "rpm2cpio", "cpio", "dpkg-deb"):
        if not shutil.which(tool, path=SYSTEM_PATH):
            unavailable("%s not found (packages: packaging/build-deps.txt)" % tool)
    base = str(tmp_path_factory.mktemp("packaging"))
    src = os.path.join(base, "src")
    shutil.copytree(ROOT, src, ignore=IGNORED, symlinks=True)
    out = os.path.join(base, "out")
    start = time.time()
    proc = run(["bash", os.path.join(src, "packaging", "build.sh"), out], check=False,
               timeout=900)
    sys.stderr.write("packaging/build.sh: %.1f s\n%s" % (time.time() - start, proc.stdout))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = {}
    for key, pattern in (("rpm", "tapeshared-*.el7.noarch.rpm"),
                         ("srpm", "tapeshared-*.el7.src.rpm"), ("deb", "tapeshared_*_all.deb")):
        paths = glob.glob(os.path.join(out, pattern))
        assert len(paths) == 1, "%s: %s" % (pattern, os.listdir(out))
        found[key] = paths[0]
    found["base"] = base
    return found


def rpmq(built, *args):
    return run(["rpm", "-qp"] + list(args) + [built["rpm"]]).stdout


# --- the RPM

def test_rpm_files(built):
    files = set(rpmq(built, "--list").split())
    for path in ("/usr/bin/tapeshared",
                 "/usr/lib/python3.6/site-packages/tapeshared/cli.py",
                 "/usr/lib/python3.6/site-packages/tapeshared/daemon/loop.py",
                 "/usr/lib/tapeshared/vendor/pyroute2/__init__.py",
                 "/usr/lib/tapeshared/vendor/tenacity/__init__.py",
                 "/usr/lib/tapeshared/vendor/dataclasses.py",
                 "/usr/lib/tapeshared/vendor/pyroute2-0.7.11.dist-info/LICENSE",
                 "/usr/lib/systemd/system/tapeshared.service",
                 "/etc/rc.d/init.d/tapeshared",
                 "/etc/tapeshared/tapeshared.conf", "/etc/tapeshared/conf.d",
                 "/usr/lib/tmpfiles.d/tapeshared.conf", "/run/tapeshared",
                 "/usr/lib/modules-load.d/tapeshared.conf"):
        assert path in files, path
    # Nothing of the vendored packages is where EL7's own python3 would import it.
    assert not [f for f in files if re.search(r"site-packages/(pyroute2|tenacity|dataclasses)", f)]
    modes = dict(line.split(" ", 1)[::-1] for line in rpmq(
        built, "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]").splitlines())
    assert modes["/usr/bin/tapeshared"] == "-rwxr-xr-x"
    assert modes["/etc/rc.d/init.d/tapeshared"] == "-rwxr-xr-x"
    header = rpmq(built, "--qf", "%{ARCH} %{PAYLOADCOMPRESSOR} %{VERSION}")
    assert header.split()[:2] == ["noarch", "xz"]  # EL7's rpm 4.11 reads no zstd


def test_rpm_config_files(built):
    assert rpmq(built, "-c").split() == ["/etc/tapeshared/tapeshared.conf"]
    flags = rpmq(built, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
    assert "cn /etc/tapeshared/tapeshared.conf" in flags  # %config(noreplace)


def test_rpm_scriptlets_are_systemd_219s(built):
    scripts = rpmq(built, "--scripts")
    assert "systemctl preset tapeshared.service" in scripts           # %systemd_post
    assert "systemctl --no-reload disable tapeshared.service" in scripts  # %systemd_preun
    assert "systemctl stop tapeshared.service" in scripts
    assert "systemctl try-restart tapeshared.service" in scripts      # %systemd_postun_with_restart
    assert "systemd-update-helper" not in scripts  # newer macros' helper; systemd 219 lacks it
    assert "systemd-tmpfiles --create" in scripts
    assert "rm -rf /run/tapeshared" in scripts


def test_rpm_requires_only_el7_base(built):
    requires = [line.strip() for line in rpmq(built, "-R").splitlines() if line.strip()]
    names = {re.split(r"\s", r)[0] for r in requires if not r.startswith("rpmlib(")}
    assert names <= EL7_BASE, names - EL7_BASE
    assert "python(abi) = 3.6" in requires
    assert not [r for r in requires if re.search("pyroute2|tenacity|dataclasses|dist\\(", r)]
    assert "rpmlib(PayloadIsZstd)" not in " ".join(requires)
    provides = rpmq(built, "--provides").split("\n")
    assert not [p for p in provides if re.search("pyroute2|tenacity|dataclasses", p)]


def python36():
    """A bare Python 3.6 interpreter (a venv's base, so none of its packages)."""
    candidates = [os.environ.get("TAPESHARED_PY36", ""), shutil.which("python3.6") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")))
    candidates += [os.path.join(ROOT, ".venv36", "bin", "python")]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        proc = run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 6)); "
                    "print(sys.base_prefix)"], check=False)
        lines = proc.stdout.split()
        if proc.returncode == 0 and lines[0] == "True":
            base = os.path.join(lines[1], "bin", "python3.6")
            return base if os.access(base, os.X_OK) else candidate
    return None


def pyudev_for_36(dest):
    """pyudev (<= 0.23) and six for 3.6 in dest, standing in for EL7's python3-pyudev."""
    sites = [os.environ.get("TAPESHARED_PY36_SITE", "")]
    sites += glob.glob(os.path.join(ROOT, ".venv36", "lib", "python3.6", "site-packages"))
    for site in sites:
        if site and os.path.isdir(os.path.join(site, "pyudev")) \
                and os.path.isfile(os.path.join(site, "six.py")):
            shutil.copytree(os.path.join(site, "pyudev"), os.path.join(dest, "pyudev"))
            shutil.copy(os.path.join(site, "six.py"), dest)
            return "copied from " + site
    wheels = os.path.join(dest, ".wheels")
    proc = run(["/usr/bin/python3", "-m", "pip", "download", "--disable-pip-version-check",
                "-q", "--only-binary=:all:", "--python-version", "3.6", "--implementation",
                "cp", "--no-deps", "-d", wheels, "pyudev>=0.21,<=0.23", "six"], check=False)
    if proc.returncode != 0:
        unavailable("no pyudev for Python 3.6 (.venv36, TAPESHARED_PY36_SITE or pip): "
                    + proc.stderr.strip()[-300:])
    for wheel in glob.glob(os.path.join(wheels, "*.whl")):
        zipfile.ZipFile(wheel).extractall(dest)
    return "pip download of " + ", ".join(sorted(os.listdir(wheels)))


@pytest.fixture(scope="module")
def payload36(built):
    """The RPM's payload unpacked into a scratch root, and how to run it on 3.6."""
    py36 = python36()
    if py36 is None:
        unavailable("no Python 3.6 interpreter (pyenv 3.6, python3.6 or TAPESHARED_PY36)")
    root = os.path.join(built["base"], "rpmroot")
    os.makedirs(root)
    rpm2cpio = subprocess.Popen(["rpm2cpio", built["rpm"]], stdout=subprocess.PIPE)
    run(["cpio", "-idm", "--quiet"], cwd=root, stdin=rpm2cpio.stdout)
    assert rpm2cpio.wait() == 0
    stub = os.path.join(built["base"], "el7-site-packages")
    os.makedirs(stub)
    how = pyudev_for_36(stub)
    sys.stderr.write("python 3.6: %s; pyudev %s\n" % (py36, how))
    env = dict(os.environ, PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(
                   [os.path.join(root, "usr/lib/python3.6/site-packages"), stub]))

    def run36(*args, **kwargs):
        # The launcher's shebang is `/usr/bin/python3 -s`: the same flag here.
        return run([py36, "-s"] + list(args), env=env, cwd=built["base"], **kwargs)

    return root, run36


def test_rpm_launcher_runs_on_python36(payload36):
    root, run36 = payload36
    launcher = os.path.join(root, "usr/bin/tapeshared")
    assert run36(launcher, "--version").stdout.strip() == "tapeshared 0.1.0"
    # Not importable without the launcher: the interpreter itself has no backport.
    assert run36("-c", "import dataclasses", check=False).returncode != 0


def test_rpm_example_config_checks_on_python36(payload36, tmp_path):
    root, run36 = payload36
    launcher = os.path.join(root, "usr/bin/tapeshared")
    with open(os.path.join(root, "etc/tapeshared/tapeshared.conf")) as f:
        example = f.read()
    shipped = tmp_path / "shipped" / "tapeshared.conf"
    shipped.parent.mkdir()
    shipped.write_text(example)
    out = run36(launcher, "-c", str(shipped), "check-config").stdout
    assert "OK (0 exports" in out
    # Every commented-out key is a real one: uncommented, the file still validates.
    active = tmp_path / "active" / "tapeshared.conf"
    active.parent.mkdir()
    active.write_text(re.sub(r"(?m)^#(?=[a-z\[])", "", example))
    assert "OK (2 exports" in run36(launcher, "-c", str(active), "check-config").stdout
    # status without a daemon: LSB 3, read-only.
    state = tmp_path / "status.conf"
    state.write_text("[global]\nstate_dir = %s\n" % (tmp_path / "run"))
    assert run36(launcher, "-c", str(state), "status", check=False).returncode == 3


def test_rpm_vendored_packages_import_on_python36(payload36):
    root, run36 = payload36
    code = """
import runpy, sys
launcher = sys.argv[1]
sys.argv = [launcher, "--version"]
try:
    runpy.run_path(launcher, run_name="__main__")
except SystemExit:
    pass
import dataclasses, pyroute2, tenacity, pyudev
from pyroute2 import IPRoute
import tapeshared.host.addrwatch, tapeshared.host.retry
import tapeshared.daemon.loop, tapeshared.host.udev
for m in (dataclasses, pyroute2, tenacity, pyudev):
    print(m.__name__, m.__file__)
"""
    out = run36("-c", code, os.path.join(root, "usr/bin/tapeshared")).stdout
    where = dict(line.split(" ", 1) for line in out.splitlines())
    vendor = os.path.join(root, "usr/lib/tapeshared/vendor") + os.sep
    for name in VENDORED:
        assert where[name].startswith(vendor), (name, where[name])
    assert not where["pyudev"].startswith(root)


# --- the Debian package

def debq(built, *args):
    return run(["dpkg-deb"] + list(args)).stdout


def test_deb_control(built):
    fields = dict(re.findall(r"(?m)^ ([A-Za-z-]+): (.*)$", debq(built, "-I", built["deb"])))
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    for package in ("python3-pyudev", "python3-pyroute2", "python3-tenacity", "python3-systemd"):
        assert package in depends, fields["Depends"]
    assert fields["Architecture"] == "all"
    assert "init-system-helpers" in fields["Pre-Depends"]


def test_deb_conffiles(built):
    conffiles = debq(built, "-I", built["deb"], "conffiles").split()
    assert "/etc/tapeshared/tapeshared.conf" in conffiles


def test_deb_contents(built):
    files = {line.split()[-1].lstrip(".") for line in debq(built, "-c", built["deb"]).splitlines()}
    assert {"/lib/systemd/system/tapeshared.service",
            "/usr/lib/systemd/system/tapeshared.service"} & files
    for path in ("/etc/init.d/tapeshared", "/usr/bin/tapeshared",
                 "/etc/tapeshared/tapeshared.conf", "/etc/tapeshared/conf.d/",
                 "/usr/lib/tmpfiles.d/tapeshared.conf",
                 "/usr/lib/modules-load.d/tapeshared.conf",
                 "/usr/lib/python3/dist-packages/tapeshared/cli.py"):
        assert path in files, path
    assert not [f for f in files if "/vendor/" in f]  # Debian's own packages, not copies


def test_deb_maintainer_scripts(built):
    postinst = debq(built, "-I", built["deb"], "postinst")
    prerm = debq(built, "-I", built["deb"], "prerm")
    postrm = debq(built, "-I", built["deb"], "postrm")
    preinst = debq(built, "-I", built["deb"], "preinst")
    # Not enabled, not started on install; a running daemon restarted on upgrade.
    assert "update-rc.d tapeshared defaults-disabled" in postinst
    assert "deb-systemd-invoke try-restart 'tapeshared.service'" in postinst
    assert "deb-systemd-invoke start" not in postinst
    # dh_installsystemd --no-enable: enable only re-runs for a unit the admin enabled.
    assert "deb-systemd-helper debian-installed 'tapeshared.service'" in postinst
    assert "new installations run enable" not in postinst
    assert "stop" not in preinst  # upgrades are restarts, not a stop/start pair
    # Stopped on removal; purge removes the runtime state.
    assert "deb-systemd-invoke stop tapeshared.service" in prerm
    assert "rm -rf /run/tapeshared" in postrm
    assert "deb-systemd-helper purge 'tapeshared.service'" in postrm


def test_deb_lintian(built):
    if not shutil.which("lintian", path=SYSTEM_PATH):
        pytest.skip("lintian not installed (report only)")
    proc = run(["lintian", "--no-tag-display-limit", built["deb"]], check=False)
    sys.stderr.write("lintian:\n" + proc.stdout)
    # Warnings are reported, errors fail.
    assert not re.findall(r"(?m)^E: .*", proc.stdout), proc.stdout


# --- sources, without building

def test_shell_scripts_pass_shellcheck():
    if not shutil.which("shellcheck"):
        unavailable("shellcheck not installed")
    run(["shellcheck", os.path.join(PACKAGING, "build.sh"),
         os.path.join(PACKAGING, "e2e-deb-scenario.sh")])
    run(["shellcheck", "-s", "sh"] + sorted(
        glob.glob(os.path.join(PACKAGING, "debian", "tapeshared.p*"))))


def test_vendored_pins_match_the_spec():
    with open(os.path.join(PACKAGING, "vendor-requirements.txt")) as f:
        pins = re.findall(r"(?m)^([a-z0-9]+)==([0-9.]+) --hash=sha256:[0-9a-f]{64}$", f.read())
    with open(os.path.join(PACKAGING, "rpm", "tapeshared.spec")) as f:
        sources = re.findall(r"(?m)^Source[1-3]:\s+([a-z0-9]+)-([0-9.]+)-py3-none-any\.whl$",
                             f.read())
    assert sorted(pins) == sorted(sources)
    assert sorted(name for name, _ in pins) == sorted(VENDORED)
