"""A recurring problem (hostile uevents) is counted and warned about once a minute."""

import logging

from tapeshared.host.tally import Tally


def test_one_warning_per_minute_with_the_count(caplog):
    now = [1000.0]
    tally = Tally("uevents that are not UTF-8", every=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING)
    tally.add("byte 0xff")
    assert [r.getMessage() for r in caplog.records] == [
        "uevents that are not UTF-8: 1 since start (last: byte 0xff); "
        "repeated at most every 60s"]
    for _ in range(59):
        now[0] += 1
        tally.add("byte 0xfe")
    tally.flush()
    assert len(caplog.records) == 1, "at most one warning a minute"
    now[0] += 1
    tally.flush()
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage().startswith(
        "uevents that are not UTF-8: 59 since the last warning (last: byte 0xfe)")
    assert caplog.records[1].levelno == logging.WARNING
    now[0] += 600
    tally.flush()
    assert len(caplog.records) == 2, "nothing new: nothing to say"
    assert tally.total == 60
