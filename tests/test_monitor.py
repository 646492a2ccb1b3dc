"""peerquest-monitor logic: windows, offsets across rotation, thresholds, rates, baselines."""

import json
import os
import time
from pathlib import Path

import pytest
from conftest import ERROR_RATE, enable_follower, scratch_monitor, send_json, serve_http
from peerquest_ops.monitors import digest, errors, follow, integrity, performance, probes, scan, windows

# ------------------------------------------------------------ sliding window


def test_window_is_sliding_not_the_clock_hour():
    buckets = {}
    now = time.mktime(time.strptime("2026-11-28 14:01:00", "%Y-%m-%d %H:%M:%S"))
    windows.add_event(buckets, now - 3 * 60)  # 13:58, the plan's grep for "14" would miss it
    assert windows.window_count(buckets, now, 3600) == 1
    assert windows.window_count(buckets, now + 56 * 60, 3600) == 1  # 14:57: still within 60 minutes
    assert windows.window_count(buckets, now + 58 * 60, 3600) == 0  # 14:59: gone


def test_window_counts_every_event_once():
    buckets = {}
    now = 1_800_000_000
    for seconds_ago in (10, 70, 1800, 3590, 3700, 7200):
        windows.add_event(buckets, now - seconds_ago)
    assert windows.window_count(buckets, now, 3600) == 4
    windows.prune(buckets, now, 3600)
    assert windows.window_count(buckets, now, 86400) == 4


# ------------------------------------------------------ offsets and rotation


def write(path, text, mode="a"):
    with open(path, mode, encoding="utf-8") as handle:
        handle.write(text)


def drain(path, start, max_bytes=scan.CHUNK):
    """All new lines, as the monitors read them: chunk after chunk."""
    lines, position = [], start
    for chunk, position in scan.iter_new_lines(str(path), start, max_bytes):  # noqa: B007 - last one wanted
        lines += chunk
    return lines, position


def test_reads_only_new_lines(tmp_path):
    log = tmp_path / "django.log"
    write(log, "one\ntwo\n")
    lines, pos, _ = scan.read_new_lines(str(log), {})
    assert lines == ["one", "two"]
    write(log, "three\n")
    lines, pos, _ = scan.read_new_lines(str(log), pos)
    assert lines == ["three"]
    assert scan.read_new_lines(str(log), pos)[0] == []


def test_a_half_written_line_waits_for_the_next_run(tmp_path):
    log = tmp_path / "django.log"
    write(log, "complete\nhalf")
    lines, pos, _ = scan.read_new_lines(str(log), {})
    assert lines == ["complete"]
    write(log, " done\n")
    assert scan.read_new_lines(str(log), pos)[0] == ["half done"]


def test_rotation_loses_and_repeats_nothing(tmp_path):
    log = tmp_path / "django.log"
    write(log, "a1\na2\n")
    _, pos, _ = scan.read_new_lines(str(log), {})
    write(log, "a3\n")  # written before logrotate moved the file
    os.rename(log, tmp_path / "django.log-20261128-1790000000")
    write(log, "b1\n", "w")  # the app reopened the new file
    lines, pos = drain(log, pos)
    assert lines == ["a3", "b1"]
    write(log, "b2\n")
    assert drain(log, pos)[0] == ["b2"]


def test_a_large_backlog_is_read_in_bounded_chunks(tmp_path):
    log = tmp_path / "django.log"
    write(log, "".join(f"line {i:05d}\n" for i in range(1000)))  # 11 bytes a line
    _, pos, _ = scan.read_new_lines(str(log), {}, max_bytes=100)
    assert pos["offset"] == 99  # nine whole lines, never a partial one
    os.rename(log, tmp_path / "django.log-1")
    write(log, "new 1\n", "w")
    lines, _ = drain(log, pos, max_bytes=100)
    assert lines == [f"line {i:05d}" for i in range(9, 1000)] + ["new 1"]


def test_rotation_with_the_new_file_not_yet_created(tmp_path):
    log = tmp_path / "django.log"
    write(log, "a1\n")
    _, pos, _ = scan.read_new_lines(str(log), {})
    write(log, "a2\n")
    os.rename(log, tmp_path / "django.log-1")
    lines, pos = drain(log, pos)
    assert lines == ["a2"]
    write(log, "b1\n", "w")
    assert drain(log, pos)[0] == ["b1"]


def test_truncation_restarts_from_the_top(tmp_path):
    log = tmp_path / "django.log"
    write(log, "a1\na2\na3\n")
    _, pos, _ = scan.read_new_lines(str(log), {})
    write(log, "b1\n", "w")
    lines, _, note = scan.read_new_lines(str(log), pos)
    assert lines == ["b1"] and "truncated" in note


def test_compressed_rotated_copy_is_reported_not_silently_skipped(tmp_path):
    log = tmp_path / "django.log"
    write(log, "a1\n")
    _, pos, _ = scan.read_new_lines(str(log), {})
    os.rename(log, tmp_path / "django.log-1.gz")
    write(log, "b1\n", "w")
    lines, _, note = scan.read_new_lines(str(log), pos)
    assert lines == ["b1"] and "old copy is gone" in note


def test_line_time_reads_the_formatters_timestamp():
    when = scan.line_time("ERROR 2026-11-28 13:58:07,123 views 10 20 Application approval failed", 0)
    assert time.strftime("%H:%M:%S", time.localtime(when)) == "13:58:07"
    assert scan.line_time("no timestamp here", 42) == 42


# ----------------------------------------------------- rates and baselines


@pytest.mark.parametrize("failures, successes, percent", [(0, 0, 0.0), (5, 95, 5.0), (6, 94, 6.0), (3, 0, 100.0)])
def test_failure_rate(failures, successes, percent):
    assert windows.failure_rate(failures, successes) == pytest.approx(percent)


def test_baseline_moves_at_most_hourly_and_needs_samples():
    baseline = windows.update_baseline({}, 10, now=0)
    assert baseline == {"value": 10.0, "samples": 1, "updated": 0}
    assert windows.update_baseline(baseline, 1000, now=600) is baseline
    baseline = windows.update_baseline(baseline, 20, now=3600)
    assert baseline["value"] == pytest.approx(13.0) and baseline["samples"] == 2
    assert not windows.above_baseline(100, baseline, 50, min_samples=3, min_value=5)
    baseline = windows.update_baseline(baseline, 13, now=7200)
    assert windows.above_baseline(19.6, baseline, 50, 3, 5)  # > 13 * 1.5
    assert not windows.above_baseline(19.5, baseline, 50, 3, 5)  # exactly +50 % is not "> 50 %"
    assert not windows.above_baseline(4, {"value": 1.0, "samples": 9}, 50, 3, 5)  # too few events to judge


# ---------------------------------------------------- the monitors, end to end

PATTERNS = [
    {
        "name": "critical",
        "label": "CRITICAL:",
        "regex": "^(?!CRITICAL ).*CRITICAL:",
        "severity": "CRITICAL",
        "threshold": 0,
    },
    {
        "name": "approval_failed",
        "label": "Application approval failed",
        "regex": "Application approval failed",
        "severity": "WARNING",
        "threshold": 3,
    },
]


@pytest.fixture
def monitor(tmp_path):
    return scratch_monitor(
        tmp_path,
        lambda log: {
            "errors": {
                "log_file": log,
                "window_seconds": 3600,
                "patterns": PATTERNS,
                "rates": [
                    {
                        "name": "approval",
                        "label": "Application approval",
                        "failure": "Application approval failed",
                        "success": "Application approved",
                        "max_percent": 5,
                        "min_events": 20,
                        "severity": "WARNING",
                    }
                ],
                "error_rate": ERROR_RATE,
            },
            "follow": {"enabled": False, "patterns": []},
        },
    )


def stamp(seconds_ago=0):
    return time.strftime("%Y-%m-%d %H:%M:%S,000", time.localtime(time.time() - seconds_ago))


def lines(log, *entries):
    with open(log, "a", encoding="utf-8") as handle:
        for level, text, ago in entries:
            handle.write(f"{level} {stamp(ago)} views 1 2 {text}\n")


def keys(calls):
    return [c["argv"][c["argv"].index("--key") + 1] for c in calls]


@pytest.mark.parametrize("failures, alerted", [(3, False), (4, True)])
def test_threshold_at_and_above(monitor, failures, alerted):
    m, log, calls = monitor
    lines(log, *[("ERROR", "Application approval failed for 1", 60)] * failures)
    errors.run_errors(m)
    assert ("app1:errors:approval_failed" in keys(calls())) is alerted


def test_a_critical_text_below_critical_level_alerts_and_old_lines_do_not(monitor):
    m, log, calls = monitor
    lines(log, ("ERROR", "CRITICAL: old news", 2 * 3600))
    errors.run_errors(m)
    assert calls() == []
    lines(log, ("ERROR", "CRITICAL: database gone", 5))
    errors.run_errors(m)
    [call] = calls()
    assert call["argv"][:2] == ["--severity", "CRITICAL"] and "CRITICAL:" in call["stdin"]


def test_critical_records_are_left_to_the_follower(monitor):
    m, log, calls = monitor
    lines(log, ("CRITICAL", "CRITICAL: database gone", 5))
    errors.run_errors(m)
    assert calls() == []


@pytest.fixture
def follower(monitor, tmp_path):
    m, log, calls = monitor
    critical = enable_follower(m, tmp_path)
    return m, critical, calls


def test_a_scan_stands_in_for_a_silent_follower_and_nothing_is_alerted_twice(follower):
    m, critical, calls = follower
    follow.run_follow(m, iterations=1)  # starts at the end of the file, beats once
    lines(critical, ("CRITICAL", "payment ledger gone", 0))
    errors.run_errors(m)
    assert calls() == []  # the follower beat just now: its line, not the scan's
    beat = os.path.join(m.state_dir, "follow.heartbeat")
    os.utime(beat, (time.time() - 600, time.time() - 600))  # the follower died ten minutes ago
    errors.run_errors(m)
    [call] = calls()
    assert call["argv"][:2] == ["--severity", "CRITICAL"] and "payment ledger gone" in call["stdin"]
    errors.run_errors(m)  # the next scan: nothing new
    follow.run_follow(m, iterations=1)  # the follower comes back: the line is done
    assert len(calls()) == 1
    lines(critical, ("CRITICAL", "audit trail gone", 0))
    follow.run_follow(m, iterations=1)
    assert "audit trail gone" in calls()[1]["stdin"]


def test_a_follower_that_never_started_is_stood_in_for(follower):
    m, critical, calls = follower
    errors.run_errors(m)  # no heartbeat at all: the scan sets the cursor at the end
    lines(critical, ("CRITICAL", "queue stuck", 0))
    errors.run_errors(m)
    assert len(calls()) == 1


def test_a_line_is_counted_once_across_runs(monitor):
    m, log, calls = monitor
    lines(log, *[("ERROR", "Application approval failed", 30)] * 3)
    errors.run_errors(m)
    errors.run_errors(m)  # nothing new: still 3, at the threshold
    assert calls() == []
    lines(log, ("ERROR", "Application approval failed", 0))
    errors.run_errors(m)
    assert keys(calls()) == ["app1:errors:approval_failed"]


@pytest.mark.parametrize("failures, successes, alerted", [(1, 19, False), (1, 18, False), (2, 18, True)])
def test_failure_rate_needs_the_success_lines(monitor, failures, successes, alerted):
    m, log, calls = monitor
    m.config["errors"]["patterns"] = []
    lines(
        log,
        *[("INFO", "Application approved", 30)] * successes,
        *[("ERROR", "Application approval failed", 30)] * failures,
    )
    errors.run_errors(m)
    # 1 of 19 is 5.3 % but below the minimum of 20 events; 2 of 20 is 10 %.
    assert ("app1:errors:approval_rate" in keys(calls())) is alerted


def test_error_rate_increase_against_the_stored_baseline(monitor):
    m, log, calls = monitor
    m.config["errors"]["patterns"] = []
    state = {
        "position": {},
        "buckets": {},
        "values": {},
        "baselines": {"_errors": {"value": 10.0, "samples": 5, "updated": time.time()}},
    }
    with open(m.state_path("errors"), "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    lines(log, *[("ERROR", "something broke", 60)] * 15)
    errors.run_errors(m)
    assert calls() == []  # 15 is +50 %, not more
    lines(log, ("ERROR", "something broke", 0))
    errors.run_errors(m)
    assert keys(calls()) == ["app1:errors:error_rate"]


def test_info_waits_for_the_digest(monitor):
    m, log, calls = monitor
    m.alert("INFO", "selfcheck", "Monitoring self-check passed")
    assert calls() == []
    digest.run_digest(m)
    [call] = calls()
    assert call["argv"][:2] == ["--severity", "INFO"] and "Monitoring self-check passed" in call["stdin"]
    digest.run_digest(m)
    assert "Monitoring self-check passed" not in calls()[-1]["stdin"]


# ------------------------------------------- probes: health, integrity, follow


class Endpoint:
    """A loopback HTTP server answering like /health/quick/ and /health/."""

    def __init__(self):
        import http.server

        self.quick = (200, {"status": "OK"})
        self.full = (200, {"status": "healthy", "checks": {"database": "OK"}})
        self.seen_tokens = []
        self.seen_hosts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's hook name
                outer.seen_tokens.append(self.headers.get("Authorization"))
                outer.seen_hosts.append(self.headers.get("Host"))
                status, body = outer.quick if self.path.endswith("/quick/") else outer.full
                send_json(self, status, body)

            def log_message(self, *args):
                pass

        self.server, self.url = serve_http(Handler)


@pytest.fixture
def endpoint(monitor):
    m, _, _ = monitor
    server = Endpoint()
    m.config["health"] = {
        "quick_url": f"{server.url}/health/quick/",
        "full_url": f"{server.url}/health/",
        "token": "tok-123",
        "timeout": 3,
        "host_header": "questhub.internal",
    }
    yield server
    server.server.shutdown()


def test_health_down_is_critical_and_recovery_is_told(monitor, endpoint):
    m, _, calls = monitor
    endpoint.quick = (503, {"status": "ERROR"})
    assert probes.run_health(m, quick=True) == ["unavailable"]
    assert calls()[-1]["argv"][:2] == ["--severity", "CRITICAL"] and "service unavailable" in calls()[-1]["stdin"]
    endpoint.quick = (200, {"status": "OK"})
    assert probes.run_health(m, quick=True) == []
    assert "service available again" in calls()[-1]["stdin"]


def test_health_degraded_is_a_warning_with_the_failing_checks(monitor, endpoint):
    m, _, calls = monitor
    endpoint.full = (
        503,
        {"status": "degraded", "checks": {"database": "OK", "disk": {"result": "LOW"}, "models": {"quests": 3}}},
    )
    assert probes.run_health(m) == ["degraded"]
    call = calls()[-1]
    assert call["argv"][:2] == ["--severity", "WARNING"]
    assert '"disk": {"result": "LOW"}' in call["stdin"] and "database" not in call["stdin"].split("degraded:")[1]
    assert "Bearer tok-123" in endpoint.seen_tokens


def test_every_probe_sends_the_host_header_the_app_accepts(monitor, endpoint):
    m, _, _ = monitor
    probes.run_health(m)
    assert endpoint.seen_hosts == ["questhub.internal", "questhub.internal"]


def test_health_urls_not_routed_yet_is_a_warning_not_an_outage(monitor, endpoint):
    m, _, calls = monitor
    endpoint.quick = (404, {"detail": "not found"})
    assert probes.run_health(m, quick=True) == ["not_served"]
    assert calls()[-1]["argv"][:2] == ["--severity", "WARNING"]
    assert "peerquest_health.urls" in calls()[-1]["stdin"]


def test_health_down_service_refuses_connections(monitor):
    m, _, calls = monitor
    m.config["health"] = {
        "quick_url": "http://127.0.0.1:9/health/quick/",
        "full_url": "http://127.0.0.1:9/health/",
        "token": "",
        "timeout": 2,
    }
    assert probes.run_health(m) == ["unavailable"]
    assert "refused" in calls()[-1]["stdin"].lower()


def audit_script(tmp_path, body):
    script = tmp_path / "audit"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return [str(script)]


@pytest.mark.parametrize(
    "body, status, alerted",
    [
        ("echo 'TOTAL ISSUES: 0'", "ok", False),
        ("echo 'quest 3: approved application without participant'; echo 'TOTAL ISSUES: 1'; exit 1", "issues", True),
        ("echo 'database is locked' >&2; exit 1", "error", True),
        ("sleep 5", "error", True),
    ],
)
def test_integrity_records_the_result_and_alerts(monitor, tmp_path, body, status, alerted):
    m, _, calls = monitor
    result_file = tmp_path / "integrity.json"
    m.config["integrity"] = {
        "command": audit_script(tmp_path, body),
        "timeout": 2,
        "result_file": str(result_file),
        "severity": "CRITICAL",
    }
    integrity.run_integrity(m)
    result = json.loads(result_file.read_text())
    assert result["status"] == status and "checked_at" in result
    assert bool(calls()) is alerted
    if status == "issues":
        assert result["total_issues"] == 1 and "TOTAL ISSUES: 1" in calls()[0]["stdin"]


def test_follower_alerts_each_critical_line_once(follower):
    m, critical, calls = follower
    lines(critical, ("CRITICAL", "before the follower started", 0))
    follow.run_follow(m, iterations=1)
    assert calls() == []  # only what is written from now on
    lines(critical, ("CRITICAL", "ledger mismatch", 0), ("CRITICAL", "Traceback line without a level", 0))
    with open(critical, "a", encoding="utf-8") as handle:
        handle.write("  File x, line 1\n")
    follow.run_follow(m, iterations=2)
    assert [c["argv"][:2] for c in calls()] == [["--severity", "CRITICAL"]] * 2
    assert "ledger mismatch" in calls()[0]["stdin"]


PERFORMANCE = {
    "window_seconds": 3600,
    "slow_seconds": 5,
    "slow_threshold": 10,
    "slow_severity": "WARNING",
    "duration_regex": r"(?:took|duration[=:]?)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)\b",
    "degradation_percent": 200,
    "degradation_severity": "WARNING",
    "min_samples": 3,
}
T0 = 1_800_000_000  # a whole minute, far from a DST change: the clock run_performance is given


def lines_at(log, *entries):
    """Log lines stamped with a given time (not now), as the app writes them."""
    with open(log, "a", encoding="utf-8") as handle:
        for level, text, when in entries:
            stamp_ = time.strftime("%Y-%m-%d %H:%M:%S,000", time.localtime(when))
            handle.write(f"{level} {stamp_} views 1 2 {text}\n")


# Slow operations by duration and database failures: tests/test_thresholds.py.


@pytest.mark.parametrize(
    "hours, current, degraded",
    [
        (3, 1.5, False),  # below the threshold
        (3, 2.0, False),  # exactly 200 % of the 1.0 s baseline: not "more than"
        (3, 2.05, True),  # just above it
        (3, 3.0, True),  # 300 %: the old reading (+200 % on top, 3 x) missed it
        (3, 30.0, True),
        (2, 30.0, False),  # two hourly samples: the baseline is not trusted yet (min_samples 3)
    ],
)
def test_performance_degradation_against_the_hourly_baseline(monitor, hours, current, degraded):
    m, log, calls = monitor
    m.config["performance"] = dict(PERFORMANCE, log_file=str(log))
    # One sample per hour: timed operations averaging 1.0 s (in ms and s), none slow.
    for hour in range(hours):
        now = T0 + hour * 3600
        lines_at(log, ("INFO", "GET /quests/ took 800ms", now - 120), ("INFO", "POST /apply/ duration=1.2s", now - 60))
        assert performance.run_performance(m, now=now) == []
    baseline = json.loads(Path(m.state_path("performance")).read_text())["baselines"]["duration"]
    assert baseline["samples"] == hours and baseline["value"] == pytest.approx(1.0)
    now = T0 + hours * 3600
    lines_at(log, ("INFO", f"GET /quests/ took {current}s", now - 30))
    assert performance.run_performance(m, now=now) == (["degradation"] if degraded else [])
    alerts = [c for c in calls() if c["argv"][c["argv"].index("--key") + 1] == "app1:performance:degradation"]
    assert len(alerts) == int(degraded)
    if degraded:
        assert alerts[0]["argv"][:2] == ["--severity", "WARNING"]
        assert f"mean operation time {current:.2f}s over 1 timed operations" in alerts[0]["stdin"]
        assert "more than 200% of the baseline 1.00s" in alerts[0]["stdin"]


@pytest.mark.parametrize(
    ("command", "code", "said"),
    [("sleep 5", 124, "did not finish within 0.5 s"), (None, 127, "could not be run")],
    ids=["hangs", "missing"],
)
def test_an_alert_command_that_hangs_or_is_missing_is_a_failed_send_not_a_crash(tmp_path, command, code, said):
    monitor, _log, _calls = scratch_monitor(tmp_path, lambda log: {})
    program = tmp_path / "alert-command"
    if command:
        program.write_text(f"#!/bin/sh\n{command}\n")
        program.chmod(0o755)
    monitor.config["alert_command"] = str(program)
    result = monitor.send("CRITICAL", "app1:k", "text", timeout=0.5)
    assert result.returncode == code and said in result.stderr, result


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"threshold": -1}, "errors.patterns[0].threshold: must be a whole number >= 0"),
        ({"threshold": "3"}, "errors.patterns[0].threshold: must be a whole number >= 0"),
        ({"severity": "ERROR"}, "errors.patterns[0].severity: must be one of"),
        ({"regex": "("}, "errors.patterns[0].regex: not a valid regular expression"),
    ],
)
def test_check_config_names_a_bad_counted_pattern(change, problem):
    from peerquest_ops.monitors import schema

    item = {"name": "approval_failed", "regex": "Application approval failed", "severity": "WARNING", "threshold": 3}
    errors = {"patterns": [dict(item, **change)], "rates": [], "error_rate": {"regex": "^ERROR "}}
    assert schema._errors_problems(dict(errors, patterns=[item])) == []
    assert any(p.startswith(problem) for p in schema._errors_problems(errors)), schema._errors_problems(errors)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ([], "the following arguments are required: --config"),
        (["--config"], "argument --config: expected one argument"),
        (["--config", "x.json"], "the following arguments are required: command"),
        (["--config", "x.json", "errors", "health"], "give exactly one command"),
        (["--config", "x.json", "nope"], "argument command: invalid choice: 'nope'"),
        (["--config", "x.json", "--fast", "errors"], "unrecognized arguments: --fast"),
    ],
)
def test_a_bad_command_line_exits_2_with_the_usage_and_the_problem(argv, said, capsys):
    from peerquest_ops.monitors import cli

    with pytest.raises(SystemExit) as stop:
        cli.parse_args(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("usage: peerquest-monitor --config FILE") and said in err, err


def test_the_command_line_takes_its_options_in_any_order():
    from peerquest_ops.monitors import cli

    for argv in (["--quick", "health", "--config", "m.json"], ["--config=m.json", "health", "--quick"]):
        args = cli.parse_args(argv)
        assert (args.config, args.quick, args.command) == ("m.json", True, "health")
    assert cli.parse_args(["--config", "m.json", "check-config"]).quick is False
