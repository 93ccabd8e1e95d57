"""Shared fixtures."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ietroot import IetRoot  # noqa: E402


@pytest.fixture
def ietroot(tmp_path):
    """A temporary root whose config drives the IET stand-in."""
    return IetRoot(str(tmp_path))
