"""The IET LUN memory (pure): when binding a LUN is a re-point, and its file."""

import json

import pytest

from tapeshared.backends import common
from tapeshared.backends.iet import memory
from tapeshared.backends.iet.memory import Record
from tapeshared.core.model import Hctl

A = Hctl.parse("1:0:6:0")
B = Hctl.parse("12:0:6:0")


@pytest.mark.parametrize("live, record, hctl, now, reset", [
    # the running LUN shows another address: a renumbering
    (A, Record(A, "i1"), B, "i2", True),
    (A, None, B, "i2", True),
    # same address: a re-point only when the recorded instance is not the one there
    (A, Record(A, "i1"), A, "i1", False),
    (A, Record(A, "i1"), A, "i2", True),
    (A, Record(A, "i1"), A, None, True),
    (A, None, A, "i1", False),            # running before the memory existed: adopted
    (A, Record(B, "i9"), A, "i1", False),  # the record is of another address
    # not live (ietd stopped, a LUN added): new unless this very instance was bound
    (None, None, A, "i1", True),
    (None, Record(A, "i1"), A, "i1", False),
    (None, Record(A, "i1"), A, "i2", True),
    (None, Record(B, "i1"), A, "i1", True),
])
def test_needs_reset(live, record, hctl, now, reset):
    lun = None if live is None else common.LiveLun(live, backing=str(live))
    assert memory.needs_reset(lun, record, hctl, now) is reset


def test_a_lun_holding_a_gone_instance_is_unhealthy_and_shows_no_reset():
    live = common.LiveLun(A, backing=str(A))
    gone = memory.annotate(live, Record(A, "i1", 5.0), "i2")
    assert not gone.healthy and gone.reset_at is None
    kept = memory.annotate(live, Record(A, "i1", 5.0), "i1")
    assert kept.healthy and (kept.reset_at, kept.reset_scope) == (5.0, "drive")
    assert memory.annotate(live, Record(A, "i1"), "i1").reset_at is None
    assert memory.annotate(live, None, "i1") == live


def test_the_file_round_trips_sorted_and_versioned():
    mem = {("iqn.b", 1): Record(B, "7", 1700000000.5), ("iqn.a", 0): Record(A, None)}
    blob = memory.render(mem)
    data = json.loads(blob.decode())
    assert data["schema"] == 1 and [e["iqn"] for e in data["luns"]] == ["iqn.a", "iqn.b"]
    assert memory.parse(blob.decode()) == mem
    assert memory.render(memory.parse(blob.decode())) == blob


@pytest.mark.parametrize("text", [
    '{"schema": 2, "luns": []}', '[]', '{"schema": 1}',
    '{"schema": 1, "luns": [5]}',
    '{"schema": 1, "luns": [{"iqn": "x", "lun": true, "hctl": "1:0:0:0"}]}',
    '{"schema": 1, "luns": [{"iqn": "x", "lun": 0, "hctl": "1:0:0"}]}',
    '{"schema": 1, "luns": [{"iqn": "x", "lun": 0, "hctl": "1:0:0:0", "reset_at": "now"}]}',
    '{"schema": 1, "luns": [{"iqn": "x", "lun": 0, "hctl": "1:0:0:0", "instance": 3}]}',
])
def test_a_malformed_file_is_refused(text):
    with pytest.raises(ValueError):
        memory.parse(text)
