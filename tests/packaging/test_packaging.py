"""Packaging: packaging/build.sh builds the .deb and the EL7 .rpm from a clean
copy of the checkout; their metadata is queried with rpm and dpkg-deb, rpmlint
and lintian check them, and the RPM, installed by rpm into a scratch root, runs
under Python 3.6 with only pyudev from outside it.

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
    for tool in ("rpm", "dpkg-deb"):
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
    # The private copies only as bundled() (no python3.6dist() or module provides).
    assert not [p for p in provides if re.search("pyroute2|tenacity|dataclasses", p)
                and not p.startswith("bundled(python3-")]


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
    # Installed by rpm itself into a scratch root with its own database: no
    # dependencies there to satisfy, and no scriptlets (they would run in a
    # chroot without a shell or systemd).
    run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--initdb"])
    run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--nodeps", "--noscripts",
         "-i", built["rpm"]])
    assert run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-q", "tapeshared"]
               ).stdout.startswith("tapeshared-")
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


# The commands run from the RPM installed into a scratch root, on Python 3.6:
# (argv, exit codes allowed, text the output must hold). {conf} is a sample
# configuration with one export, {state} its (empty) state directory. A new
# command joins with one line, e.g. ("doctor", ...) or ("import", "--help").
PAYLOAD_COMMANDS = [
    (("--version",), (0,), "tapeshared 0.1.0"),
    (("-c", "{conf}", "check-config"), (0,), "OK (1 export, backend lio"),
    (("-c", "{conf}", "status"), (3,), ""),  # no daemon: LSB 3, read-only
    (("-c", "{conf}", "status", "--json"), (3,), '"schema"'),
    (("--help",), (0,), "check-config"),
    (("-c", "{conf}", "doctor"), (2,), "fail"),  # no configfs in the scratch root
    (("import", "--help"), (0,), "--from-targetcli"),
]


@pytest.mark.parametrize("argv,codes,expected", PAYLOAD_COMMANDS,
                         ids=[" ".join(a for a in c[0] if a not in ("-c", "{conf}"))
                              for c in PAYLOAD_COMMANDS])
def test_rpm_installed_payload_runs_on_python36(payload36, tmp_path, argv, codes, expected):
    root, run36 = payload36
    state = tmp_path / "state"
    conf = tmp_path / "tapeshared.conf"
    conf.write_text("[global]\nbackend = lio\nstate_dir = %s\nlio_root = %s\n"
                    "[export tape0]\nserial = HU19487TL1\ninitiators = 192.0.2.10\n"
                    "initiator_iqns = iqn.1993-08.org.debian:01:initiator\n"
                    % (state, tmp_path / "no-configfs"))
    args = [a.format(conf=conf, state=state) for a in argv]
    proc = run36(os.path.join(root, "usr/bin/tapeshared"), *args, check=False)
    assert proc.returncode in codes, (args, proc.returncode, proc.stdout, proc.stderr)
    assert expected in proc.stdout, (args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr


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


def test_rpm_man_pages_completion_and_licence(built):
    files = set(rpmq(built, "--list").split())
    for path in ("/usr/share/man/man8/tapeshared.8.gz", "/usr/share/man/man5/tapeshared.conf.5.gz",
                 "/usr/share/bash-completion/completions/tapeshared",
                 "/usr/share/licenses/tapeshared-0.1.0/LICENSE"):  # EL7: name-version
        assert path in files, path
    assert rpmq(built, "--qf", "%{LICENSE}") == "ASL 2.0 and (GPLv2+ or ASL 2.0)"


def test_rpm_owns_the_byte_code_post_compiles(built):
    flags = dict(line.split(" ", 1)[::-1] for line in rpmq(
        built, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]").splitlines())
    sources = [f for f in flags if f.endswith(".py")]
    assert "/usr/lib/python3.6/site-packages/tapeshared/cli.py" in sources
    assert "/usr/lib/tapeshared/vendor/pyroute2/__init__.py" in sources
    for source in sources:
        folder, name = os.path.split(source)
        pyc = "%s/__pycache__/%s.cpython-36.pyc" % (folder, name[:-3])
        assert "g" in flags.get(pyc, ""), "%s is not a %%ghost of the package" % pyc
        assert "g" in flags.get(folder + "/__pycache__", ""), folder
    modes = dict(line.split(" ", 1)[::-1] for line in rpmq(
        built, "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]").splitlines())
    assert modes["/usr/lib/python3.6/site-packages/tapeshared/__pycache__/cli.cpython-36.pyc"] \
        == "-rw-r--r--"
    # rpm removes them on erase: %postun no longer deletes the package's trees.
    assert "rm -rf /run/tapeshared\n" in rpmq(built, "--scripts")


def test_rpm_provides_the_bundled_packages(built):
    provides = {p.strip() for p in rpmq(built, "--provides").splitlines() if p.strip()}
    assert {"bundled(python3-%s) = %s" % pin for pin in vendored_pins()} <= provides
    requires = rpmq(built, "--requires")
    assert "python3" in re.findall(r"(?m)^(\S+)", requires)
    post = run(["rpm", "-qp", "--qf", "[%{REQUIREFLAGS:deptype} %{REQUIRENAME}\n]",
                built["rpm"]]).stdout
    for name in ("systemd", "python3"):  # systemctl and tmpfiles, compileall
        assert "post %s" % name in post, post
    assert "preun systemd" in post and "postun systemd" in post, post


def test_rpmlint_clean_with_the_explained_filters(built):
    rpmlint = shutil.which("rpmlint", path=SYSTEM_PATH)
    if rpmlint is None:
        unavailable("rpmlint not installed (packaging/build-deps.txt)")
    proc = run([rpmlint, "-r", os.path.join(PACKAGING, "rpm", "tapeshared.rpmlintrc"),
                built["rpm"], built["srpm"]], check=False)
    sys.stderr.write("rpmlint:\n" + proc.stdout)
    assert re.search(r"0 errors, 0 warnings", proc.stdout), proc.stdout + proc.stderr
    # Each filter is explained by the comment above it.
    with open(os.path.join(PACKAGING, "rpm", "tapeshared.rpmlintrc")) as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("addFilter("):
            above = [text for text in lines[:number] if not text.startswith("addFilter(")]
            assert above and above[-1].startswith("# "), line


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
                 "/usr/lib/python3/dist-packages/tapeshared/cli.py",
                 "/usr/share/man/man8/tapeshared.8.gz", "/usr/share/man/man5/tapeshared.conf.5.gz",
                 "/usr/share/bash-completion/completions/tapeshared",
                 "/usr/share/doc/tapeshared/copyright"):
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
    # Clean: no error and no warning (informational tags are reported only).
    assert not re.findall(r"(?m)^[EW]: .*", proc.stdout), proc.stdout


# --- sources, without building

def test_shell_scripts_pass_shellcheck():
    if not shutil.which("shellcheck"):
        unavailable("shellcheck not installed")
    run(["shellcheck", os.path.join(PACKAGING, "build.sh"),
         os.path.join(PACKAGING, "e2e-deb-scenario.sh")])
    run(["shellcheck", "-s", "sh"] + sorted(
        glob.glob(os.path.join(PACKAGING, "debian", "tapeshared.p*"))))


def vendored_pins():
    """(name, version) of each hash-pinned vendored package."""
    with open(os.path.join(PACKAGING, "vendor-requirements.txt")) as f:
        return re.findall(r"(?m)^([a-z0-9]+)==([0-9.]+) --hash=sha256:[0-9a-f]{64}$", f.read())


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def test_spec_provides_bundled_match_the_pins():
    spec = read("packaging", "rpm", "tapeshared.spec")
    provides = re.findall(r"(?m)^Provides:\s+bundled\(python3-([a-z0-9]+)\) = ([0-9.]+)$", spec)
    assert sorted(provides) == sorted(vendored_pins())


def test_changelogs_agree_with_the_version():
    version = re.search(r'(?m)^version = "([^"]+)"$', read("pyproject.toml")).group(1)
    spec = read("packaging", "rpm", "tapeshared.spec")
    entry = re.search(r"(?m)^%changelog\n\* .* - ([0-9.]+)-[0-9]+(%\{\?dist\})?$", spec)
    assert entry, "no %changelog entry"
    debian = read("packaging", "debian", "changelog")
    assert re.match(r"tapeshared \(([^)]+)\) ", debian).group(1) == version
    assert entry.group(1) == version
    from tapeshared import __version__
    assert __version__ == version


def test_licence_is_the_same_everywhere():
    assert "Apache License" in read("LICENSE") and "Version 2.0" in read("LICENSE")
    assert re.search(r'(?m)^license = \{ text = "Apache-2.0" \}$', read("pyproject.toml"))
    copyright_ = read("packaging", "debian", "copyright")
    assert re.search(r"(?m)^Files: \*\n(.+\n)*License: Apache-2.0$", copyright_)
    for name in ("pyroute2", "tenacity", "dataclasses"):
        assert name in copyright_, name
    spec = read("packaging", "rpm", "tapeshared.spec")
    assert re.search(r"(?m)^%license LICENSE$", spec)
    assert re.search(r"(?m)^License:\s+ASL 2\.0 and \(GPLv2\+ or ASL 2\.0\)$", spec)


def test_vendored_at_build_time_from_the_pins():
    pins = vendored_pins()
    assert sorted(name for name, _ in pins) == sorted(VENDORED)
    spec = read("packaging", "rpm", "tapeshared.spec")
    # The source tarball is the only source: no prebuilt wheel in the .src.rpm.
    assert re.findall(r"(?m)^Source\d*:\s+(\S+)$", spec) == ["tapeshared-%{version}.tar.gz"]
    build = spec.split("\n%build\n", 1)[1].split("\n%install\n", 1)[0]
    command = re.sub(r"\\\n\s*", " ", build)
    pip = re.search(r"(?m)^%\{__python3\} -m pip install (.*)$", command)
    assert pip, build
    for flag in ("--require-hashes", "--no-deps", "--target vendor",
                 "-r packaging/vendor-requirements.txt", "--only-binary=:all:"):
        assert flag in pip.group(1), flag


def test_srpm_holds_only_the_source(built):
    files = run(["rpm", "-qpl", built["srpm"]]).stdout.split()
    assert sorted(files) == ["tapeshared-0.1.0.tar.gz", "tapeshared.spec"]
