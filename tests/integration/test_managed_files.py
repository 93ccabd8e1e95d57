"""Managed files on real file systems: symlinks, modes, xattrs, stale temps, faults.

The CLI runs as a real process against the IET stand-in; mounts with options
(a tiny or read-only tmpfs) live in a private mount namespace (support.mountns).
"""

import errno
import logging
import os
import re
import stat
import subprocess
import sys

import pytest
from support.mountns import in_mount_ns, mount_tmpfs, remount_ro
from support.paths import ROOT

from tapeshared.backends.iet import conf as ietconf
from tapeshared.core.errors import ManagedFileError
from tapeshared.host import atomicfile

EXPORT = """[export tape0]
serial = %s
initiators = %s
"""
FOREIGN = b"# site settings\r\nMaxConnections 1"  # CRLF, no final line break


def config(ietroot, initiators="192.0.2.10", chap=False, serial="HU19487TL1", **extra):
    text = EXPORT % (serial, initiators)
    if chap:
        text += "incoming_user = backup\nincoming_secret_file = %s\n" % ietroot.secret(
            "in", "s3cret-value-1")
    return ietroot.write_config(text, **extra)


def cli(ietroot, *args):
    out = subprocess.run([sys.executable, "-m", "tapeshared", "-c", ietroot.conf] +
                         list(args), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    return {"rc": out.returncode, "out": out.stdout, "err": out.stderr}


def temps(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def snapshot(*paths):
    return {p: open(p, "rb").read().decode("latin-1") for p in paths}


# --- symlinks -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["absolute", "relative", "chain"])
def test_a_symlinked_ietd_conf_is_written_through_and_stays_a_link(ietroot, kind):
    real_dir = ietroot.path("etc/iet")
    os.makedirs(real_dir)
    real = os.path.join(real_dir, "ietd.conf")
    with open(real, "wb") as handle:
        handle.write(FOREIGN)
    link = ietroot.ietd_conf
    if kind == "absolute":
        os.symlink(real, link)
    elif kind == "relative":
        os.symlink("iet/ietd.conf", link)
    else:  # /etc/ietd.conf -> /etc/iet/conf.link -> ietd.conf
        os.symlink("ietd.conf", os.path.join(real_dir, "conf.link"))
        os.symlink("iet/conf.link", link)
    before = os.readlink(link)
    config(ietroot)
    result = cli(ietroot, "apply")
    assert result["rc"] == 0, result
    assert os.path.islink(link) and os.readlink(link) == before
    data = open(real, "rb").read()
    assert data.startswith(FOREIGN + b"\n" + ietconf.JOINED.encode())
    assert b"Target iqn.2007-04.com.example:tape0\n" in data
    assert temps(real_dir) == [] and temps(ietroot.path("etc")) == []
    assert cli(ietroot, "apply")["out"].startswith("nothing to do")


def _write_through_a_read_only_link_dir(base):
    """/etc read-only holding the link; the target's directory writable."""
    link_dir, real_dir = os.path.join(base, "ro"), os.path.join(base, "rw")
    mount_tmpfs(link_dir)
    mount_tmpfs(real_dir)
    with open(os.path.join(real_dir, "ietd.conf"), "wb") as handle:
        handle.write(b"old\n")
    os.symlink(os.path.join(real_dir, "ietd.conf"), os.path.join(link_dir, "ietd.conf"))
    remount_ro(link_dir)
    changed = atomicfile.write_if_changed(os.path.join(link_dir, "ietd.conf"), b"new\n")
    return [changed, open(os.path.join(real_dir, "ietd.conf")).read(),
            os.path.islink(os.path.join(link_dir, "ietd.conf")), temps(real_dir)]


def test_the_temp_file_lives_in_the_targets_directory(tmp_path):
    # the link's directory is read-only: only a temp beside the target can work
    assert in_mount_ns(_write_through_a_read_only_link_dir, str(tmp_path)) == [
        True, "new\n", True, []]


def test_a_dangling_link_gets_its_target_created(ietroot):
    os.makedirs(ietroot.path("etc/iet"))
    os.symlink("iet/ietd.conf", ietroot.ietd_conf)
    config(ietroot)
    result = cli(ietroot, "apply")
    assert result["rc"] == 0, result
    assert os.path.islink(ietroot.ietd_conf)
    real = ietroot.path("etc/iet/ietd.conf")
    assert open(real).read().startswith(ietconf.BEGIN + "\n")
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600


def test_a_dangling_link_into_a_missing_directory_is_a_clean_error(ietroot):
    os.symlink("iet/ietd.conf", ietroot.ietd_conf)
    config(ietroot, manage_access="no")
    result = cli(ietroot, "apply")
    assert result["rc"] == 1, result
    assert "Traceback" not in result["err"]
    assert ("cannot write %s (a link to %s): No such file or directory (the directory "
            "%s does not exist)" % (ietroot.ietd_conf, ietroot.path("etc/iet/ietd.conf"),
                                    ietroot.path("etc/iet"))) in result["err"]
    assert os.readlink(ietroot.ietd_conf) == "iet/ietd.conf"


def test_a_symlink_loop_is_refused(ietroot):
    os.symlink("ietd.conf.b", ietroot.ietd_conf)
    os.symlink("ietd.conf", ietroot.ietd_conf + ".b")
    config(ietroot, manage_access="no")
    result = cli(ietroot, "apply")
    assert result["rc"] == 65, result
    assert "Traceback" not in result["err"] and "symbolic links" in result["err"]


# --- modes, owner, extended attributes ---------------------------------------------

def test_chap_secrets_tighten_a_readable_ietd_conf_once(ietroot, caplog):
    with open(ietroot.ietd_conf, "wb") as handle:
        handle.write(b"# site settings\n")
    os.chmod(ietroot.ietd_conf, 0o644)
    os.chown(ietroot.ietd_conf, 12345, 54321)
    for path in (ietroot.allow, ietroot.deny):
        open(path, "w").close()
        os.chmod(path, 0o644)
    config(ietroot, chap=True)
    result = cli(ietroot, "-v", "apply")
    assert result["rc"] == 0, result
    info = os.stat(ietroot.ietd_conf)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (12345, 54321)
    assert "IncomingUser backup s3cret-value-1" in open(ietroot.ietd_conf).read()
    warnings = [line for line in result["err"].splitlines() if "tightened" in line]
    assert warnings == ["tapeshared: WARNING: %s holds CHAP secrets but was readable by "
                        "others (mode 0644): tightened to 0600" % ietroot.ietd_conf]
    assert "s3cret" not in result["err"] + result["out"]
    # files without secrets keep their mode
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in (ietroot.allow, ietroot.deny)] == [
        0o644, 0o644]
    # said once: the next change finds the file private already
    config(ietroot, "192.0.2.11", chap=True, serial="HU19487TL2")  # ietd.conf changes
    again = cli(ietroot, "-v", "apply")
    assert again["rc"] == 0 and "wrote %s" % ietroot.ietd_conf in again["out"], again
    assert "tightened" not in again["err"]


def test_secrets_left_readable_by_an_older_version_are_made_private(ietroot):
    config(ietroot, chap=True)
    assert cli(ietroot, "apply")["rc"] == 0
    data = open(ietroot.ietd_conf, "rb").read()
    os.chmod(ietroot.ietd_conf, 0o644)  # as the old render left it
    plan = cli(ietroot, "plan")
    assert plan["rc"] == 2, plan
    assert "(same content; only the file's mode changes)" in plan["out"]
    assert "s3cret" not in plan["out"]
    result = cli(ietroot, "apply")
    assert result["rc"] == 0 and "tightened to 0600" in result["err"], result
    assert stat.S_IMODE(os.stat(ietroot.ietd_conf).st_mode) == 0o600
    assert open(ietroot.ietd_conf, "rb").read() == data
    assert cli(ietroot, "plan")["rc"] == 0


def test_a_file_without_secrets_keeps_a_readable_mode(ietroot):
    with open(ietroot.ietd_conf, "wb") as handle:
        handle.write(b"# site settings\n#\tIncomingUser joe secret\n")  # a comment
    os.chmod(ietroot.ietd_conf, 0o644)
    config(ietroot)
    assert cli(ietroot, "apply")["rc"] == 0
    assert stat.S_IMODE(os.stat(ietroot.ietd_conf).st_mode) == 0o644
    assert cli(ietroot, "plan")["rc"] == 0


def test_equal_bytes_holding_secrets_are_still_made_private(tmp_path, caplog):
    path = str(tmp_path / "ietd.conf")
    data = b"Target iqn.x:y\n\tOutgoingUser u secret\n"
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o640)
    inode = os.stat(path).st_ino
    with caplog.at_level(logging.WARNING):
        assert atomicfile.write_if_changed(path, data, private=True) is False
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.stat(path).st_ino == inode
    assert "tightened to 0600" in caplog.text


def _xattrs_kept(base, root):
    mount_tmpfs(base)
    path = os.path.join(base, "ietd.conf")
    with open(path, "wb") as handle:
        handle.write(b"old\n")
    names = {"user.backup": b"keep me", "user.empty": b""}
    if root:
        names["trusted.site"] = b"\x00\x01binary"
    try:
        for name, value in names.items():
            os.setxattr(path, name, value)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("this kernel's tmpfs has no %s xattrs: %s" % (name, exc))
        raise
    os.chmod(path, 0o640)
    inode = os.stat(path).st_ino
    assert atomicfile.write_if_changed(path, b"new\n")
    return {"replaced": os.stat(path).st_ino != inode, "data": open(path).read(),
            "mode": stat.S_IMODE(os.stat(path).st_mode),
            "xattrs": {n: os.getxattr(path, n).hex() for n in names},
            "wanted": {n: v.hex() for n, v in names.items()}}


def test_extended_attributes_are_kept_on_tmpfs(tmp_path):
    got = in_mount_ns(_xattrs_kept, str(tmp_path / "fs"), os.geteuid() == 0)
    assert got["replaced"] and got["data"] == "new\n" and got["mode"] == 0o640
    assert got["xattrs"] == got["wanted"]
    if os.geteuid() == 0:
        assert "trusted.site" in got["xattrs"]


# --- temp files a killed apply left ---------------------------------------------------

def test_stale_temps_are_removed_and_nothing_else(ietroot):
    config(ietroot)
    assert cli(ietroot, "apply")["rc"] == 0
    etc = ietroot.path("etc")
    ours = [".ietd.conf.tapeshared-abcd1234.tmp", ".initiators.allow.tapeshared-zz_9zz_9.tmp"]
    for name in ours:
        with open(os.path.join(etc, name), "w") as handle:
            handle.write("half a write")
    theirs = [".ietd.conf.abcd1234.tmp",  # another tool's temp, same file
              ".ietd.conf.tapeshared-toolong123.tmp", "ietd.conf.tapeshared-abcd1234.tmp",
              ".other.conf.tapeshared-abcd1234.tmp"]
    for name in theirs:
        open(os.path.join(etc, name), "w").close()
    foreign_owner = os.path.join(etc, ".ietd.conf.tapeshared-owner123.tmp")
    open(foreign_owner, "w").close()
    os.chown(foreign_owner, 12345, 12345)
    os.symlink("/etc/passwd", os.path.join(etc, ".ietd.conf.tapeshared-symlink1.tmp"))
    live = os.path.join(etc, ".initiators.deny.tapeshared-live1234.tmp")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl,sys,time\nf=open(sys.argv[1],'w')\n"
                               "fcntl.flock(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\n"
                               "time.sleep(60)", live], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        config(ietroot, "192.0.2.11")  # a change, so the next apply writes
        result = cli(ietroot, "apply")
        assert result["rc"] == 0, result
        left = sorted(n for n in os.listdir(etc) if n.startswith(".") or "tmp" in n)
        assert left == sorted(theirs + [os.path.basename(foreign_owner),
                                        ".ietd.conf.tapeshared-symlink1.tmp",
                                        os.path.basename(live)])
    finally:
        holder.kill()
        holder.wait()


# --- faults: clean errors, the old file whole -----------------------------------------

def _first_apply(ietroot, **extra):
    config(ietroot, **extra)
    result = cli(ietroot, "apply")
    assert result["rc"] == 0, result
    return snapshot(ietroot.ietd_conf, ietroot.allow, ietroot.deny)


def _read_only_etc(base):
    from support.ietroot import IetRoot
    mount_tmpfs(os.path.join(base, "etc"))
    ietroot = IetRoot(base)
    old = _first_apply(ietroot)
    config(ietroot, "192.0.2.11")
    remount_ro(ietroot.path("etc"))
    result = cli(ietroot, "apply")
    return {"result": result, "old": old,
            "now": snapshot(ietroot.ietd_conf, ietroot.allow, ietroot.deny)}


def test_a_read_only_etc_is_a_clean_error_and_loses_nothing(tmp_path):
    got = in_mount_ns(_read_only_etc, str(tmp_path))
    result = got["result"]
    assert result["rc"] == 1, result
    assert "Traceback" not in result["err"]
    assert re.search(r"tapeshared: failed: cannot write \S+/etc/initiators\.\w+: "
                     r"Read-only file system; the old file is unchanged", result["err"])
    assert got["now"] == got["old"]


def _full_disk(base):
    from support.ietroot import IetRoot
    mount_tmpfs(os.path.join(base, "etc"), "size=64k")
    ietroot = IetRoot(base)
    old = _first_apply(ietroot)
    config(ietroot, ", ".join("192.0.2.%d" % n for n in range(10, 200)))
    try:
        with open(ietroot.path("etc/filler"), "wb") as handle:
            while True:
                handle.write(b"x" * 4096)
                handle.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    result = cli(ietroot, "apply")
    return {"result": result, "old": old, "temps": temps(ietroot.path("etc")),
            "now": snapshot(ietroot.ietd_conf, ietroot.allow, ietroot.deny)}


def test_a_full_disk_is_a_clean_error_and_loses_nothing(tmp_path):
    got = in_mount_ns(_full_disk, str(tmp_path))
    result = got["result"]
    assert result["rc"] == 1, result
    assert "Traceback" not in result["err"]
    assert "No space left on device; the old file is unchanged" in result["err"]
    assert got["now"] == got["old"] and got["temps"] == []


@pytest.fixture
def immutable(ietroot):
    made = []

    def make(path):
        if subprocess.call(["chattr", "+i", path], stderr=subprocess.DEVNULL) != 0:
            pytest.skip("chattr +i is not supported on %s's file system" % path)
        made.append(path)

    yield make
    for path in made:
        subprocess.call(["chattr", "-i", path])


def test_an_immutable_ietd_conf_is_a_clean_error_and_loses_nothing(ietroot, immutable):
    old = _first_apply(ietroot)
    immutable(ietroot.ietd_conf)
    config(ietroot, "192.0.2.11", serial="HU19487TL2")
    result = cli(ietroot, "apply")
    assert result["rc"] == 1, result
    assert "Traceback" not in result["err"]
    assert ("cannot write %s: Operation not permitted (is it immutable? see lsattr); "
            "the old file is unchanged" % ietroot.ietd_conf) in result["err"]
    assert open(ietroot.ietd_conf, "rb").read().decode("latin-1") == old[ietroot.ietd_conf]
    assert temps(ietroot.path("etc")) == []


@pytest.mark.parametrize("command", ["apply", "plan"])
def test_ietd_conf_being_a_directory_is_refused_cleanly(ietroot, command):
    os.mkdir(ietroot.ietd_conf)
    config(ietroot)
    result = cli(ietroot, command)
    assert result["rc"] == 65, result
    assert "Traceback" not in result["err"]
    assert ("tapeshared: refused: %s is a directory, not a file; nothing was written"
            % ietroot.ietd_conf) in result["err"]
    assert os.listdir(ietroot.ietd_conf) == []


def test_writing_over_a_directory_is_refused(tmp_path):
    target = tmp_path / "ietd.conf"
    target.mkdir()
    with pytest.raises(ManagedFileError, match="is a directory, not a regular file"):
        atomicfile.write_if_changed(str(target), b"x")
    assert temps(str(tmp_path)) == []
