"""Each scheduled job run once on a real host, as cron runs it, and what it produced.

A job runs through its own line of the installed schedule (the monitoring
account, the lock, the wrapper on PATH, output appended to the monitoring log);
each test feeds it what it watches (log lines through the running app, a
broken database, a failed audit, alerts) and asserts what arrived at the
capture sink, with its figures. The CRITICAL follower is stopped, restarted
and restarted again in the middle of catching up: every line is alerted
exactly once. Every value comes from the deployed variables, so the same
tests hold in custom_site.
"""

import os
import re
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    alert_events,
    app_database,
    app_is_up,
    app_json,
    app_log_writer,
    captured_hooks,
    captured_mail,
    cron_paused,
    delivered,
    delivered_text,
    direct_delivery,
    files_receiving,
    forget_dedup,
    health_auth,
    host,
    host_name,
    line_count,
    lines_after,
    log_through_django,
    manage,
    marker,
    monitor_user,
    monitoring_log,
    monitors_config,
    reset_sink,
    restart_scan_at_end_of_log,
    routes,
    run_logged_job,
    subject,
    wait_for,
)

APP = host("app")
APP_NAME = host_name("app")
VARS = V("app")
AS_MONITOR = f"sudo -u {shlex.quote(monitor_user())}"
APP_LOG = VARS["peerquest_monitors_app_log"]
STATE_DIR = VARS["peerquest_monitors_state_dir"]
WINDOW_MINUTES = int(VARS["peerquest_monitors_window_minutes"])
MONITORING_LOG = monitoring_log()
SEVERITY_OF = {"unhealthy": "CRITICAL", "degraded": "WARNING"}


@pytest.fixture(scope="module", autouse=True)
def quiet():
    """No scheduled run races these for log lines and alerts; no earlier alert suppresses one here."""
    with cron_paused():
        forget_dedup()
        yield


def received(severity, text):
    """{channel: records carrying text} for every channel severity is routed to."""
    channels = routes(severity)
    if not channels:
        pytest.skip(f"{severity} is routed nowhere in this inventory")
    return {channel: delivered(channel, text) for channel in channels}


def wait_received(severity, text, what):
    """Every channel of severity received text: {channel: records}."""
    return wait_for(lambda: (lambda got: got if all(got.values()) else None)(received(severity, text)), what=what)


def assert_alerted_once(severity, text, what):
    got = wait_received(severity, text, what)
    for channel, records in got.items():
        assert len(records) == 1, (channel, [delivered_text(r) for r in records])
        if channel == "email":
            assert records[0]["subject"] == subject(severity)
    return got


def message_matching(regex, candidates, avoid=(), flags=0):
    """The first candidate message whose log line matches regex and none of avoid."""
    for text in candidates:
        line = f"WARNING 2000-01-01 00:00:00,000+0000 views 1 1 {text}"
        if re.search(regex, line, flags) and not any(re.search(a, line, re.IGNORECASE) for a in avoid):
            return text
    pytest.skip(f"no test message matches {regex!r} alone")


# ------------------------------------------------------------ performance


def test_performance_alerts_slow_operations_with_their_figures():
    # A slow operation is a timed one over peerquest_monitors_slow_seconds (database failures:
    # test_thresholds.py, the follower's).
    duration_regex = VARS["peerquest_monitors_duration_regex"]
    tag = marker("perf")
    millis = int((float(VARS["peerquest_monitors_slow_seconds"]) + 1) * 1000)
    slow_text = message_matching(
        duration_regex, [f"GET /quests/ took {millis}ms {tag}", f"{tag} duration={millis}ms"], avoid=()
    )
    slow_count = int(VARS["peerquest_monitors_slow_threshold"]) + 1
    logger = app_log_writer("WARNING")
    restart_scan_at_end_of_log("performance")
    reset_sink()
    log_through_django(APP, logger, "WARNING", slow_text, count=slow_count)
    line = run_logged_job("performance")
    assert f"slow={slow_count} " in line, line
    assert_alerted_once(
        "WARNING",
        f"{slow_count} slow operations (over {float(VARS['peerquest_monitors_slow_seconds']):g}s) "
        f"in the last {WINDOW_MINUTES} minutes (threshold {int(VARS['peerquest_monitors_slow_threshold'])})",
        "the slow operations alert",
    )
    # The next run reads on from where this one stopped: the window holds the same lines, not twice as many.
    assert f"slow={slow_count} " in run_logged_job("performance")


# ----------------------------------------------------------------- health


@direct_delivery
def test_health_alerts_a_broken_database():
    database = shlex.quote(app_database())
    mode = APP.check_output(f"stat -c %a {database}")
    reset_sink()
    APP.check_output(f"chmod 000 {database}")
    try:
        line = run_logged_job("health")
    finally:
        APP.check_output(f"chmod {mode} {database}")
    assert "quick=down" in line, line
    got = assert_alerted_once("CRITICAL", "service unavailable", "the health alert")
    quick_url = VARS["peerquest_monitors_health_quick_url"]
    for channel, records in got.items():
        assert quick_url in delivered_text(records[0]) and "503" in delivered_text(records[0]), channel
    wait_for(app_is_up, timeout=60, what="the app back")
    # Back up: the next run tells so, and nothing more.
    reset_sink()
    line = run_logged_job("health")
    assert "quick=up" in line, line
    assert_alerted_once("WARNING", "service available again", "the recovery notice")


def test_health_alerts_what_the_full_probe_reports():
    """/health/ (with the token) unhappy while /health/quick/ is fine: the last audit found an inconsistency."""
    if not VARS["peerquest_monitors_integrity_enabled"]:
        pytest.skip("the integrity audit is off in this inventory")
    auditor = VARS["peerquest_monitors_integrity_host"]
    assert run_logged_job("health", auditor).endswith(" health: quick=up full=healthy, alerts none")
    manage(auditor, "standin_break_sync")
    try:
        run_logged_job("integrity", auditor)
        status, body = app_json("GET", "/health/", h=auditor, headers=health_auth(auditor))
        assert status == 503 and body["status"] in SEVERITY_OF, body
        reset_sink()
        assert f"full={body['status']}" in run_logged_job("health", auditor)
        got = assert_alerted_once(SEVERITY_OF[body["status"]], "ISSUES_DETECTED", "the health alert")
        full_url = V(auditor)["peerquest_monitors_health_url"]
        for channel, records in got.items():
            text = delivered_text(records[0])
            assert f"reports {body['status']}" in text and full_url in text and "data_integrity" in text, channel
            assert "database" not in text.split(f"reports {body['status']}")[1], channel  # only what fails
    finally:
        manage(auditor, "standin_fix_sync")
        run_logged_job("integrity", auditor)
    assert app_json("GET", "/health/", h=auditor, headers=health_auth(auditor))[0] == 200


# -------------------------------------------------------- digest and review


def digest_for_today():
    """Run the digest job; the one digest message the INFO channel received."""
    channel = routes("INFO")[0] if routes("INFO") else pytest.skip("INFO is routed nowhere in this inventory")
    reset_sink()
    before = line_count(APP, MONITORING_LOG)
    run_logged_job("digest")
    heading = f"PeerQuest daily digest for {APP_NAME}"
    try:
        records = wait_for(lambda: delivered(channel, heading), what="the digest")
    except AssertionError as err:
        raise AssertionError(f"{err}; monitoring.log since: {lines_after(APP, MONITORING_LOG, before)}") from None
    assert len(records) == 1, records
    if channel == "email":
        assert records[0]["subject"] == subject("INFO")
    return delivered_text(records[0])


def test_digest_counts_the_days_events_from_the_log():
    """Lines of a pattern below its threshold (no alert) are still counted in the next digest."""
    patterns = [
        p
        for p in VARS["peerquest_monitors_error_patterns"]
        if p.get("state", "present") != "absent" and int(p["threshold"]) >= 1
    ]
    others = [p for p in VARS["peerquest_monitors_error_patterns"] if p.get("state", "present") != "absent"]

    def matched_by(label):
        line = f"ERROR 2000-01-01 00:00:00,000 views 1 1 {label} x"
        return [o["name"] for o in others if re.search(o["regex"], line)]

    pattern = next((p for p in patterns if matched_by(p["label"]) == [p["name"]]), None)
    if pattern is None:
        pytest.skip("no error pattern with a threshold and a label only it matches")
    count = int(pattern["threshold"])
    restart_scan_at_end_of_log("errors")
    log_through_django(APP, app_log_writer("ERROR"), "ERROR", f"{pattern['label']} {marker('dig')}", count=count)
    line = run_logged_job("errors")
    assert f'"{pattern["name"]}": {count}' in line, line
    text = digest_for_today()
    events = next(x for x in text.splitlines() if x.startswith("Events in the last 24 hours: "))
    assert f"{pattern['name']}={count}" in events.split(": ", 1)[1].split(", "), events


# ------------------------------------------------------ the CRITICAL follower


def follower_unit():
    if not VARS["peerquest_monitors_follow_enabled"]:
        pytest.skip("the CRITICAL follower is off in this inventory")
    return shlex.quote(monitors_config()["follow"]["unit"])


def log_criticals(tag, count):
    """count CRITICAL records through the app, each with its own token; the tokens."""
    assert VARS["peerquest_monitors_critical_log"].endswith(
        tuple("/" + f for f in files_receiving("quests", "CRITICAL"))
    ), "quests CRITICAL records do not reach the critical log"
    log_through_django(APP, "quests", "CRITICAL", f"ledger store unreachable {tag}n{{i}}z", count=count)
    return [f"{tag}n{i}z" for i in range(count)]


def delivered_per_token(tokens, channel):
    records = captured_mail() if channel == "email" else captured_hooks(channel)
    texts = [delivered_text(r) for r in records]
    return {token: sum(token in text for text in texts) for token in tokens}


def assert_each_alerted_exactly_once(tokens):
    channels = routes("CRITICAL")
    assert channels, "CRITICAL is routed nowhere"
    for channel in channels:
        wait_for(
            lambda channel=channel: all(delivered_per_token(tokens, channel).values()),
            timeout=60,
            what=f"every line on {channel}",
        )
    for channel in channels:
        counts = delivered_per_token(tokens, channel)
        assert set(counts.values()) == {1}, (channel, counts)
    for token in tokens:
        # Once each, and never tried twice (dedup would hide a second try from the channels).
        assert sorted(alert_events(token)) == sorted(("sent", c) for c in channels), (token, alert_events(token))


@direct_delivery
def test_the_follower_catches_up_after_a_stop():
    unit = follower_unit()
    reset_sink()
    APP.check_output(f"systemctl stop {unit}")
    try:
        tokens = log_criticals(marker("down"), 5)
    finally:
        APP.check_output(f"systemctl start {unit}")
    assert_each_alerted_exactly_once(tokens)


@direct_delivery
def test_a_restart_in_the_middle_of_catching_up_repeats_and_loses_nothing():
    unit = follower_unit()
    first = routes("CRITICAL")[0]
    reset_sink()
    APP.check_output(f"systemctl stop {unit}")
    try:
        tokens = log_criticals(marker("mid"), 12)
    finally:
        APP.check_output(f"systemctl start {unit}")
    wait_for(lambda: any(delivered_per_token(tokens, first).values()), interval=0.1, what="the catch-up to begin")
    APP.check_output(f"systemctl stop {unit}")
    try:
        done = sum(1 for n in delivered_per_token(tokens, first).values() if n)
        assert 0 < done < len(tokens), f"{done} of {len(tokens)} lines were alerted before the stop: not the middle"
    finally:
        APP.check_output(f"systemctl start {unit}")
    assert_each_alerted_exactly_once(tokens)
