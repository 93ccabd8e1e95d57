"""In test processes only: the logical-unit reset, faked where it cannot run.

A umockdev testbed (and a test's fake device list) has sysfs but no SCSI device
that can take SG_SCSI_RESET. With TAPESHARED_TEST_RESET_LOG set (the test
fixtures set it together with this directory on PYTHONPATH), every process of
the test (the daemon, the CLI) gets a reset_lu that keeps the adapter's
contract where sysfs can answer: a missing device or another instance than
expected is refused the same way; a reset done is logged to that file as
"reset H:C:T:L", so a test sees it in order with the IET stand-in's restarts.
"""

import os


def fake_reset_lu(log_path):
    """A reset_lu that checks sysfs as the real one does and logs instead."""
    from tapeshared.core.errors import TransientError
    from tapeshared.host import scsireset

    def reset_lu(hctl, expect=None, sysfs_devices="/sys/bus/scsi/devices", dev_dir="/dev"):
        where = "reset of the device at %s" % hctl
        now = scsireset.instance(hctl, sysfs_devices)
        if now is None:
            raise TransientError("%s: the address holds no device now" % where)
        if expect is not None and now != expect:
            raise TransientError("%s: the address holds another device than the one "
                                 "bound; not reset" % where)
        with open(log_path, "a") as handle:
            handle.write("reset %s\n" % hctl)
        return os.path.join(dev_dir, "sg-fake")

    return reset_lu


if os.environ.get("TAPESHARED_TEST_RESET_LOG"):
    from tapeshared.host import scsireset as _scsireset
    _scsireset.reset_lu = fake_reset_lu(os.environ["TAPESHARED_TEST_RESET_LOG"])
