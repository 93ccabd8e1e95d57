"""The host-side LU reset refuses every device but the one sysfs names at the address."""

import os

import pytest

from tapeshared.core.errors import TransientError
from tapeshared.core.model import Hctl
from tapeshared.host import scsireset

HCTL = Hctl(1, 0, 6, 0)


def _tree(tmp_path, dev_number):
    sysfs = tmp_path / "devices"
    sg = sysfs / "1:0:6:0" / "scsi_generic" / "sg3"
    os.makedirs(str(sg))
    (sg / "dev").write_text(dev_number + "\n")
    dev = tmp_path / "dev"
    os.makedirs(str(dev))
    return str(sysfs), str(dev)


def test_an_empty_address_is_not_reset(tmp_path):
    with pytest.raises(TransientError, match="holds no device"):
        scsireset.reset_lu(HCTL, sysfs_devices=str(tmp_path))


def test_another_instance_at_the_address_is_not_reset(tmp_path):
    sysfs, dev = _tree(tmp_path, "21:3")
    with pytest.raises(TransientError, match="another device than the one bound"):
        scsireset.reset_lu(HCTL, expect="1", sysfs_devices=sysfs, dev_dir=dev)


def test_a_device_without_an_sg_node_says_so(tmp_path):
    os.makedirs(str(tmp_path / "1:0:6:0"))
    with pytest.raises(TransientError, match="no sg node"):
        scsireset.reset_lu(HCTL, sysfs_devices=str(tmp_path))


def test_a_dev_node_that_is_not_the_named_sg_device_is_refused(tmp_path):
    null = os.stat("/dev/null").st_rdev
    # sysfs names sg3 with a number other than /dev/null's; /dev/sg3 is /dev/null
    sysfs, dev = _tree(tmp_path, "%d:%d" % (os.major(null) + 1, os.minor(null)))
    os.symlink("/dev/null", os.path.join(dev, "sg3"))
    with pytest.raises(TransientError, match="is not the sg device sysfs names"):
        scsireset.reset_lu(HCTL, sysfs_devices=sysfs, dev_dir=dev)
    # a regular file in its place is refused the same way
    os.unlink(os.path.join(dev, "sg3"))
    open(os.path.join(dev, "sg3"), "w").close()
    with pytest.raises(TransientError, match="is not the sg device sysfs names"):
        scsireset.reset_lu(HCTL, sysfs_devices=sysfs, dev_dir=dev)


def test_a_missing_dev_node_is_a_clear_error(tmp_path):
    sysfs, dev = _tree(tmp_path, "21:3")
    with pytest.raises(TransientError, match="cannot open .*sg3"):
        scsireset.reset_lu(HCTL, sysfs_devices=sysfs, dev_dir=dev)


def test_the_ioctl_reaching_a_device_that_refuses_it_is_a_clear_error(tmp_path):
    null = os.stat("/dev/null").st_rdev
    sysfs, dev = _tree(tmp_path, "%d:%d" % (os.major(null), os.minor(null)))
    os.symlink("/dev/null", os.path.join(dev, "sg3"))
    # /dev/null is the char device sysfs names here: the ioctl itself is refused
    with pytest.raises(TransientError, match=r"reset of the device at 1:0:6:0 \(.*sg3\)"):
        scsireset.reset_lu(HCTL, sysfs_devices=sysfs, dev_dir=dev)
