"""Shared fixtures. pytest puts this directory on sys.path (rootdir conftest, no
__init__.py), so the helpers import as the `support` package."""

import pytest
from hypothesis import settings
from support.ietroot import IetRoot

# Tests assert behaviour, never timings: no per-example deadline (a loaded CI
# machine would otherwise fail a property test for being slow).
settings.register_profile("tapeshared", deadline=None)
settings.load_profile("tapeshared")


@pytest.fixture
def ietroot(tmp_path, monkeypatch):
    """A temporary root whose config drives the IET stand-in; the host's
    logical-unit reset is faked (IetRoot.fake_host_reset)."""
    root = IetRoot(str(tmp_path))
    root.fake_host_reset(monkeypatch)
    return root
