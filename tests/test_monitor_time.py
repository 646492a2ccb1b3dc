"""Log timestamps are placed on the right minute whatever the app's and the host's time zones."""

import calendar
import logging
import os
import sys
import time

from conftest import ROLES
from peerquest_ops.monitors import scan

sys.path.insert(0, str(ROLES / "peerquest_logging" / "files"))
from peerquest_logging.formatters import ZonedFormatter  # noqa: E402

UTC_NOON = calendar.timegm(time.strptime("2026-11-28 12:00:00", "%Y-%m-%d %H:%M:%S"))


def test_a_line_with_an_offset_means_the_same_instant_in_any_zone():
    # 13:00 in Auckland's summer (+1300) is 00:00 UTC; 06:00 at -0600 is 12:00 UTC.
    assert scan.line_time("ERROR 2026-11-29 01:00:00,123+1300 views 1 2 x", None) == UTC_NOON
    assert scan.line_time("ERROR 2026-11-28 06:00:00,999-0600 views 1 2 x", None) == UTC_NOON
    assert scan.line_time("ERROR 2026-11-28 12:00:00Z views", None) == UTC_NOON


def test_a_line_without_an_offset_is_host_local_time():
    line = "ERROR 2026-11-28 12:00:00,000 views 1 2 x"
    assert scan.line_time(line, None) == time.mktime(time.strptime("2026-11-28 12:00:00", "%Y-%m-%d %H:%M:%S"))


def test_the_deployed_formatter_writes_the_offset_of_the_process_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        record = logging.LogRecord("quests", logging.ERROR, __file__, 1, "boom", None, None)
        record.created = UTC_NOON
        record.msecs = 0
        text = ZonedFormatter("{levelname} {asctime} {message}", style="{").format(record)
        assert text == "ERROR 2026-11-29 01:00:00,000+1300 boom"
        # The monitors read it back as the same instant, in the host's (other) zone.
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert scan.line_time(text, None) == UTC_NOON
    finally:
        monkeypatch.delenv("TZ", raising=False)
        os.environ.pop("TZ", None)
        time.tzset()


def test_a_stamp_is_placed_as_calendar_timegm_places_it():
    """The scan computes a stamp's instant from date ordinals (no calendar import per run): the same
    seconds as calendar.timegm, across leap days, year ends and a leap second."""
    for stamp in (
        "1970-01-01 00:00:00",
        "2000-02-29 23:59:59",
        "2024-12-31 23:59:60",
        "2026-11-28 12:00:00",
        "2100-03-01 00:00:01",
    ):
        expected = calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
        assert scan.line_time(f"ERROR {stamp},000+0000 views 1 2 x", None) == expected, stamp
        assert scan.line_time(f"ERROR {stamp}Z views", None) == expected, stamp
