"""Which uevents restart the debounce: only those that can change a pass's view."""

from types import SimpleNamespace

import pytest

from tapeshared.host.udev import relevant


def event(action, subsystem, sys_name, device_type=None):
    return SimpleNamespace(action=action, subsystem=subsystem, sys_name=sys_name,
                           device_type=device_type)


@pytest.mark.parametrize("evt, wanted", [
    (event("add", "scsi", "1:0:6:0", "scsi_device"), True),
    (event("remove", "scsi", "1:0:6:0", "scsi_device"), True),
    (event("change", "scsi", "1:0:6:0", "scsi_device"), True),
    (event("bind", "scsi", "1:0:6:0", "scsi_device"), False),
    (event("add", "scsi", "target1:0:6", "scsi_target"), False),
    (event("add", "scsi", "host1", "scsi_host"), False),
    (event("add", "scsi_tape", "nst0"), True),
    (event("add", "scsi_tape", "st12"), True),
    (event("add", "scsi_tape", "st0l"), False),
    (event("add", "scsi_tape", "nst3a"), False),
    (event("add", "scsi_generic", "sg4"), True),
    (event("remove", "scsi_generic", "sg4"), True),
])
def test_relevant(evt, wanted):
    assert relevant(evt) is wanted
