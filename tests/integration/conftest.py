"""Fixtures the integration tests share."""

import pytest
from support.daemonrun import DaemonRun
from support.udevbed import Bed


@pytest.fixture
def daemon_run(ietroot):
    """make(**kw) -> a DaemonRun on its own umockdev testbed; all closed at the end."""
    made = []

    def make(**kw):
        bed = Bed()
        daemon = DaemonRun(bed, ietroot, **kw)
        made.append((bed, daemon))
        return daemon

    yield make
    for bed, daemon in made:
        try:
            daemon.close()
        finally:
            bed.close()
