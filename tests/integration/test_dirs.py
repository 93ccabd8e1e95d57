"""Lock and state directories the host does not let us create or open: a clean
error naming the path from every command, never a traceback (real files, a real
read-only mount, a real unprivileged user)."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from support.paths import ROOT

TAPE0 = """[export tape0]
serial = NOSUCHTAPE0
initiators = 192.0.2.10
"""


def tapeshared(conf, *argv, prefix=()):
    out = subprocess.run(list(prefix) + [sys.executable, "-m", "tapeshared", "-c", conf]
                         + list(argv), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, out.stdout + out.stderr


def blocked(ietroot, kind):
    """(state_dir, lock_file, what the message must say) for one way of failing."""
    afile = ietroot.path("afile")
    with open(afile, "w") as handle:
        handle.write("not a directory\n")
    if kind == "file-in-place":
        return afile, afile + ".lock", ["cannot create the state directory %s" % afile,
                                        "%s is not a directory" % afile]
    if kind == "file-above":
        return (afile + "/state", afile + "/lock/apply.lock",
                ["cannot create the state directory %s/state" % afile,
                 "%s is not a directory" % afile])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["file-in-place", "file-above"])
def test_run_with_a_state_dir_that_cannot_be_created(ietroot, kind):
    state_dir, lock_file, says = blocked(ietroot, kind)
    ietroot.write_config(TAPE0, state_dir=state_dir, lock_file=lock_file)
    code, text = tapeshared(ietroot.conf, "run", "--log-target", "stderr")
    assert code == 1, text
    for part in says:
        assert part in text, text


def test_apply_with_a_lock_dir_that_cannot_be_created_or_a_lock_that_is_a_dir(ietroot):
    afile = ietroot.path("afile")
    with open(afile, "w"):
        pass
    ietroot.write_config(TAPE0, lock_file=afile + "/apply.lock")
    code, text = tapeshared(ietroot.conf, "apply")
    assert code == 1 and ("cannot create the apply lock directory %s: %s is not a "
                          "directory" % (afile, afile)) in text, text
    os.mkdir(ietroot.path("lockdir"))
    ietroot.write_config(TAPE0, lock_file=ietroot.path("lockdir"))
    code, text = tapeshared(ietroot.conf, "apply")
    assert code == 1 and ("cannot open the apply lock %s: it is a directory"
                          % ietroot.path("lockdir")) in text, text


def test_a_read_only_parent(ietroot):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private read-only mount")
    ro = ietroot.path("ro")
    os.mkdir(ro)
    ietroot.write_config(TAPE0, state_dir=ro + "/state", lock_file=ro + "/lock/apply.lock")
    mount = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', ro]
    code, text = tapeshared(ietroot.conf, "run", "--log-target", "stderr", prefix=mount)
    assert code == 1 and ("cannot create the state directory %s/state: read-only file "
                          "system" % ro) in text, text
    code, text = tapeshared(ietroot.conf, "apply", prefix=mount)
    assert code == 1 and ("cannot create the apply lock directory %s/lock: read-only "
                          "file system" % ro) in text, text


@pytest.fixture
def open_dir():
    """A directory an unprivileged user can reach (pytest's tmp dirs are 0700)."""
    path = tempfile.mkdtemp(prefix="tapeshared-test-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_permission_denied_as_an_unprivileged_user(ietroot, open_dir):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to become an unprivileged user")
    closed = os.path.join(open_dir, "closed")
    os.mkdir(closed, 0o700)
    conf = os.path.join(open_dir, "tapeshared.conf")
    with open(conf, "w") as handle:
        handle.write(ietroot.global_section(state_dir=closed + "/state") + "\n" + TAPE0)
    os.chmod(conf, 0o644)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    code, text = tapeshared(conf, "run", "--log-target", "stderr", prefix=nobody)
    if code != 1 and "tapeshared" not in text:
        pytest.skip("the unprivileged user cannot run the checkout here: %s" % text)
    assert code == 1 and ("cannot create the state directory %s/state: permission denied"
                          % closed) in text, text


def test_a_tgt_state_dir_blocked_by_a_file_is_a_clean_error_naming_it(tmp_path):
    # tgt remembers its LUNs' addresses under state_dir: a file in the way is the
    # same retried PathError as for the lock and state directories, not an OSError
    from tapeshared.backends.tgt.backend import TgtBackend
    from tapeshared.backends.tgt.plan import TgtSettings
    from tapeshared.host.lock import PathError
    from tapeshared.host.runner import Runner

    blocker = tmp_path / "afile"
    blocker.write_text("not a directory\n")
    state = str(blocker / "state")
    backend = TgtBackend(TgtSettings(tgtadm=("tgtadm",), state_dir=state), Runner())
    with pytest.raises(PathError) as raised:
        backend._save({"schema": 1, "luns": {}, "accounts": {}})
    assert "cannot create the tgt state directory %s" % state in str(raised.value)
    assert "%s is not a directory" % blocker in str(raised.value)
