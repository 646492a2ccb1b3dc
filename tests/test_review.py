"""The weekly threshold review and the monthly review: the whole period from the alert history, rotated and
compressed copies included; false positives and the threshold suggestion, MTTD, MTTR, acknowledgements."""

import gzip
import json
import os
import time

import pytest
from conftest import scratch_monitor
from peerquest_ops.history import review as history_review
from peerquest_ops.history import store
from peerquest_ops.monitors import review, schedule

DAY = 86400
# A fixed "now" on a whole hour, so the period's edges are plain.
NOW = 1_795_000_000.0 - 1_795_000_000.0 % 3600
APPROVAL = "app1:errors:approval_failed"
ROLLBACK = "app1:errors:rollback"
FALSE_POSITIVE_DAYS = {4, 11, 25}
TARGETS = {
    "false_positive_max_percent": 5,
    "acknowledged_min_percent": 95,
    "uptime_min_percent": 99.9,
    "detect_max_seconds": 300,
    "resolve_max_seconds": 3600,
    "retention_days": 400,
}


class Ids:
    def __init__(self):
        self.number = 0

    def __call__(self):
        self.number += 1
        return f"{self.number:012x}"


def rec(ids, when, outcome, key, severity, **fields):
    return {
        "id": ids(),
        "time": when,
        "outcome": outcome,
        "key": key,
        "severity": severity,
        "channel": "email",
        "host": "app1",
        **fields,
    }


def day_records(ids, day):
    """One day of an app host's history, `day` days before NOW, an hour before NOW's time of day."""
    start = NOW - day * DAY - 3600
    out = []
    # The approval pattern over its threshold: sent, raised again at the next two runs (suppressed), then clear.
    sent = rec(ids, start, "sent", APPROVAL, "WARNING")
    out += [sent]
    out += [rec(ids, start + 300 * n, "suppressed", APPROVAL, "WARNING", count=n) for n in (1, 2)]
    answer = "false-positive" if day in FALSE_POSITIVE_DAYS else "ack"
    out.append(rec(ids, start + 400, answer, APPROVAL, "WARNING", alert=sent["id"], by="oncall", channel="-"))
    out.append(rec(ids, start + 20 * 60, "resolved", APPROVAL, "WARNING", channel="-", job="errors"))
    if day % 3 == 0:
        # A rollback seen a minute after it happened; the gateway fails once, the retry delivers it.
        begin = start + 30
        queued = rec(ids, begin, "queued", ROLLBACK, "CRITICAL", event_time=begin - 60, error="HTTP 503")
        queued["alert"] = queued["id"]
        out.append(queued)
        out.append(rec(ids, begin + 60, "retry-failed", ROLLBACK, "CRITICAL", alert=queued["id"], attempts=2))
        out.append(rec(ids, begin + 120, "retry-sent", ROLLBACK, "CRITICAL", alert=queued["id"], attempts=3))
        out.append(rec(ids, begin + 600, "ack", ROLLBACK, "CRITICAL", alert=queued["id"], by="oncall"))
        out.append(rec(ids, begin + 40 * 60, "resolved", ROLLBACK, "CRITICAL", job="errors"))
    return sorted(out, key=lambda r: r["time"])


def write_rotated(directory, days=35):
    """The history as logrotate leaves it after `days` daily rotations: today's file, yesterday's copy
    uncompressed (delaycompress), older copies compressed; each copy last changed at its last record."""
    ids = Ids()
    path = directory / store.FILE_NAME
    for day in range(days - 1, -1, -1):
        lines = "".join(json.dumps(r) + "\n" for r in day_records(ids, day))
        last = max(json.loads(x)["time"] for x in lines.splitlines())
        stamp = time.strftime("%Y%m%d", time.localtime(NOW - day * DAY))
        if day == 0:
            target = path
            target.write_text(lines)
        elif day == 1:
            target = directory / f"{store.FILE_NAME}-{stamp}-{int(last)}"
            target.write_text(lines)
        else:
            target = directory / f"{store.FILE_NAME}-{stamp}-{int(last)}.gz"
            with gzip.open(target, "wt", encoding="utf-8") as handle:
                handle.write(lines)
        os.utime(target, (last, last))
    # A crash left half a record at the end of today's file.
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"id": "torn", "time": ')
    return str(path)


def monthly(path):
    since = NOW - 30 * DAY
    return history_review.figures(store.read(path, since=since, until=NOW), since, NOW)


def row(result, key):
    [found] = [r for r in result["rows"] if r["key"] == key]
    return found


def test_the_monthly_review_counts_every_day_of_its_period_compressed_or_not(tmp_path):
    path = write_rotated(tmp_path)
    assert len(list(tmp_path.glob("*.gz"))) == 33
    result = monthly(path)
    # 30 days in the period (days 0-29; the five older days are outside it), one approval alert a day.
    approval = row(result, APPROVAL)
    assert approval["alerts"] == 30
    assert (approval["sent"], approval["suppressed"]) == (30, 60)
    assert row(result, ROLLBACK)["alerts"] == 10
    assert result["overall"]["alerts"] == 40


def test_retries_are_counted(tmp_path):
    rollback = row(monthly(write_rotated(tmp_path)), ROLLBACK)
    # Each rollback: queued once, then retry-failed and retry-sent.
    assert (rollback["queued"], rollback["retried"], rollback["sent"]) == (10, 20, 0)


def test_mttd_and_mttr(tmp_path):
    result = monthly(write_rotated(tmp_path))
    rollback = row(result, ROLLBACK)
    # From the event (a minute before the first record) to the retry that delivered it: 60 + 120 s.
    assert rollback["mttd"] == pytest.approx(180)
    # From the first alert record to the resolution 40 minutes later.
    assert rollback["mttr"] == pytest.approx(40 * 60)
    assert row(result, APPROVAL)["mttr"] == pytest.approx(20 * 60)
    # Without an event time, detection counts from the first record: delivered at once.
    assert row(result, APPROVAL)["mttd"] == pytest.approx(0)
    assert result["severities"]["CRITICAL"]["mttr"] == pytest.approx(40 * 60)


def test_false_positive_rate_and_acknowledgements(tmp_path):
    result = monthly(write_rotated(tmp_path))
    approval = row(result, APPROVAL)
    assert approval["false_positives"] == 3
    assert approval["false_positive_percent"] == pytest.approx(10.0)
    # A false positive was answered too: every alert was.
    assert approval["acked"] == 30 and approval["acked_percent"] == pytest.approx(100.0)
    assert row(result, ROLLBACK)["false_positive_percent"] == pytest.approx(0.0)
    assert result["overall"]["false_positive_percent"] == pytest.approx(100 * 3 / 40)


def answered_share(acked, alerts):
    ids = Ids()
    records = []
    for number in range(alerts):
        when = NOW - DAY + number * 3600
        sent = rec(ids, when, "sent", f"app1:security:event_{number}", "WARNING")
        records.append(sent)
        if number < acked:
            records.append(rec(ids, when + 60, "ack", sent["key"], "WARNING", alert=sent["id"]))
    result = history_review.figures(records, NOW - 7 * DAY, NOW)
    up = {"jobs": {}, "follower": [0, 0], "percent": None}
    return review.checks(result, TARGETS, up)["acknowledged"]


def test_acknowledgements_against_the_95_percent_target():
    assert answered_share(19, 20) == (pytest.approx(95.0), True)
    assert answered_share(18, 20) == (pytest.approx(90.0), False)


@pytest.fixture
def monitor(tmp_path):
    def settings(log):
        return {
            "errors": {
                "patterns": [
                    {"name": "approval_failed", "threshold": 3, "severity": "WARNING"},
                    {"name": "rollback", "threshold": 0, "severity": "CRITICAL"},
                ]
            },
            "selfcheck": {"max_age_seconds": {"errors": schedule.max_age("5m"), "review": schedule.max_age("1mo")}},
        }

    found, _, calls = scratch_monitor(tmp_path, settings)
    history_dir = tmp_path / "alert-state"
    history_dir.mkdir()
    found.config["history"] = {"file": write_rotated(history_dir)}
    found.config["review"] = dict(TARGETS, report_dir=str(tmp_path / "reviews"))
    return found, calls


def test_the_review_suggests_the_threshold_to_raise_and_is_sent_and_kept(monitor, tmp_path):
    found, calls = monitor
    reports = tmp_path / "reviews"
    reports.mkdir()
    old = reports / "review-20250101-0600.txt"
    old.write_text("an old report")
    os.utime(old, (NOW - 500 * DAY, NOW - 500 * DAY))

    data = review.run_review(found, now=NOW)
    expected = (
        f"{APPROVAL}: 3 of 30 alert(s) were false positives (10.0%, over 5%): raise "
        "peerquest_monitors_error_patterns (name approval_failed) threshold from 3 to 5 in the inventory."
    )
    assert data["suggestions"] == [expected]
    [call] = calls()
    assert call["argv"][:3] == ["--severity", "INFO", "--key"] and call["argv"][3].startswith("app1:review:")
    text = call["stdin"]
    assert text.startswith("Monthly monitoring review for app1:")
    assert f"  - {expected}" in text
    assert "  false positives: 7.5%  [MISSED]" in text
    assert "  acknowledged: 100.0%  [ok]" in text
    assert "  MTTD (CRITICAL): 3.0 min  [ok]" in text
    assert "  MTTR (CRITICAL): 40.0 min  [ok]" in text
    kept = sorted(p.name for p in reports.iterdir())
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(NOW))
    assert kept == [f"review-{stamp}.json", f"review-{stamp}.txt"]
    assert (reports / f"review-{stamp}.txt").read_text() == text + "\n"
    assert json.loads((reports / f"review-{stamp}.json").read_text())["overall"]["alerts"] == 40


def test_the_weekly_threshold_review_reads_seven_days(monitor):
    found, calls = monitor
    data = review.run_threshold_review(found, now=NOW)
    # Days 0-6: seven approval alerts, one of them (day 4) a false positive; rollbacks on days 0, 3 and 6.
    assert row(data, APPROVAL)["alerts"] == 7 and row(data, APPROVAL)["false_positives"] == 1
    assert row(data, ROLLBACK)["alerts"] == 3
    assert len(data["suggestions"]) == 1 and "from 3 to 5" in data["suggestions"][0]
    assert calls()[0]["stdin"].startswith("Weekly alert threshold review for app1:")
