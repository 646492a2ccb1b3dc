"""The plan's thresholds as it states them.

- "Slow operations (>5 seconds)": a timed operation over peerquest_monitors_slow_seconds,
  counted per operation, the slowest named; a line that only says "slow" is no evidence.
- Database connection failures: real failures only (a table of benign and failing lines),
  paged when more than peerquest_monitors_db_error_threshold persist within the window,
  within seconds by the follower.
- "Performance degradation > 200% of baseline": more than 200 % OF the baseline (2 x).
- "DEBUG logs: 7 days": an optional DEBUG file rotated with its own 7-day rule.
"""

import getpass
import grp
import gzip
import json
import logging.config
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import pytest
import yaml
from conftest import ROLES, enable_follower, load_module, scratch_monitor
from peerquest_ops.monitors import dbwatch, durations, errors, follow, performance, windows

MONITORS_DEFAULTS = yaml.safe_load((ROLES / "peerquest_monitors" / "defaults" / "main.yml").read_text())
LOGGING_DEFAULTS = yaml.safe_load((ROLES / "peerquest_logging" / "defaults" / "main.yml").read_text())
LOGROTATE_DEFAULTS = yaml.safe_load((ROLES / "peerquest_logrotate" / "defaults" / "main.yml").read_text())
DURATION_REGEX = MONITORS_DEFAULTS["peerquest_monitors_duration_regex"]
DB_REGEX = MONITORS_DEFAULTS["peerquest_monitors_db_error_regex"]
DB_THRESHOLD = MONITORS_DEFAULTS["peerquest_monitors_db_error_threshold"]
DB_WINDOW = MONITORS_DEFAULTS["peerquest_monitors_db_error_window_seconds"]
SLOW_SECONDS = MONITORS_DEFAULTS["peerquest_monitors_slow_seconds"]
SLOW_THRESHOLD = MONITORS_DEFAULTS["peerquest_monitors_slow_threshold"]
T0 = 1_800_000_000


def stamp(when):
    return time.strftime("%Y-%m-%d %H:%M:%S,000", time.localtime(when))


def write_lines(log, *entries):
    """(level, text, when) as the verbose formatter writes them; text may hold more lines (a traceback)."""
    with open(log, "a", encoding="utf-8") as handle:
        for level, text, when in entries:
            handle.write(f"{level} {stamp(when)} views 1 2 {text}\n")


@pytest.fixture
def monitor(tmp_path):
    return scratch_monitor(
        tmp_path,
        lambda log: {
            "performance": {
                "log_file": log,
                "window_seconds": 3600,
                "duration_regex": DURATION_REGEX,
                "slow_seconds": SLOW_SECONDS,
                "slow_threshold": SLOW_THRESHOLD,
                "slow_severity": "WARNING",
                "degradation_percent": MONITORS_DEFAULTS["peerquest_monitors_degradation_percent"],
                "degradation_severity": "WARNING",
                "min_samples": 3,
            },
            "database": {
                "log_file": log,
                "regex": DB_REGEX,
                "threshold": DB_THRESHOLD,
                "window_seconds": DB_WINDOW,
                "severity": "CRITICAL",
            },
        },
    )


def keyed(calls, key):
    return [c for c in calls if c["argv"][c["argv"].index("--key") + 1] == f"app1:{key}"]


# ------------------------------------------------------- slow operations


def test_the_defaults_are_the_plans():
    assert SLOW_SECONDS == 5 and SLOW_THRESHOLD == 10
    assert MONITORS_DEFAULTS["peerquest_monitors_degradation_percent"] == 200
    assert "peerquest_monitors_slow_regex" not in MONITORS_DEFAULTS


@pytest.mark.parametrize(
    "text, seconds, op",
    [
        ("GET /quests/12/ took 6200ms", 6.2, "GET /quests/N/"),
        ("POST /applications/7/approve/ duration=5.5s", 5.5, "POST /applications/N/approve/"),
        ("approve_application took 7s", 7.0, "approve_application"),
        ("Quest assignment for user 12 duration: 800ms", 0.8, "Quest assignment for user N"),
        ("slow query on quests_quest", None, None),
        ("SLOW request, please investigate", None, None),
    ],
)
def test_durations_and_operations_are_read_from_what_the_app_logs(text, seconds, op):
    parsed = durations.Durations(DURATION_REGEX).parse(f"INFO {stamp(T0)} views 1 2 {text}")
    if seconds is None:
        assert parsed is None
    else:
        assert parsed == (pytest.approx(seconds), op)


def test_a_line_that_only_says_slow_is_not_evidence(monitor):
    m, log, calls = monitor
    write_lines(log, *[("WARNING", "slow query on quests_quest", T0 - 60)] * (SLOW_THRESHOLD * 3))
    assert performance.run_performance(m, now=T0) == []
    assert calls() == []


@pytest.mark.parametrize("seconds, slow", [(SLOW_SECONDS, False), (SLOW_SECONDS + 0.01, True)])
def test_slow_means_longer_than_the_threshold_seconds(monitor, seconds, slow):
    m, log, calls = monitor
    write_lines(log, *[("INFO", f"GET /quests/ took {seconds * 1000:.0f}ms", T0 - 60)] * (SLOW_THRESHOLD + 1))
    assert performance.run_performance(m, now=T0) == (["slow"] if slow else [])


def test_slow_operations_alert_above_the_threshold_per_operation_with_the_slowest(monitor):
    m, log, calls = monitor
    write_lines(log, *[("INFO", f"GET /quests/{i}/ took 6.{i}s", T0 - 120) for i in range(SLOW_THRESHOLD - 2)])
    write_lines(log, ("INFO", "POST /applications/3/approve/ duration=9500ms", T0 - 90))
    write_lines(log, ("INFO", "GET /quests/ took 4.9s", T0 - 90), ("INFO", "GET /health/ took 12ms", T0 - 90))
    write_lines(log, ("WARNING", "slow query", T0 - 90))
    assert performance.run_performance(m, now=T0) == []  # SLOW_THRESHOLD - 1 slow operations
    write_lines(log, ("INFO", "approve_application took 8s", T0 - 30))
    assert performance.run_performance(m, now=T0) == []  # exactly SLOW_THRESHOLD: not more
    write_lines(log, ("INFO", "GET /quests/99/ took 5001ms", T0 - 10))
    assert performance.run_performance(m, now=T0 + 1) == ["slow"]
    [alert] = keyed(calls(), "performance:slow")
    assert alert["argv"][:2] == ["--severity", "WARNING"]
    text = alert["stdin"]
    assert f"{SLOW_THRESHOLD + 1} slow operations (over {SLOW_SECONDS:g}s) in the last 60 minutes" in text
    assert f"(threshold {SLOW_THRESHOLD}) in 3 operations" in text
    # The slowest first, each operation once with its count.
    assert text.index("POST /applications/N/approve/ 9.50s (1 slow)") < text.index("approve_application 8.00s (1 slow)")
    assert text.index("approve_application 8.00s") < text.index(f"GET /quests/N/ 6.{SLOW_THRESHOLD - 3}0s ")
    assert f"GET /quests/N/ 6.{SLOW_THRESHOLD - 3}0s ({SLOW_THRESHOLD - 1} slow)" in text


def test_slow_seconds_is_a_setting(monitor):
    m, log, calls = monitor
    m.config["performance"]["slow_seconds"] = 2
    write_lines(log, *[("INFO", "GET /quests/ took 2.5s", T0 - 60)] * (SLOW_THRESHOLD + 1))
    assert performance.run_performance(m, now=T0) == ["slow"]


# ------------------------------------------------- 200 % of the baseline


@pytest.mark.parametrize(
    "current, alerts",
    [(1.99, False), (2.0, False), (2.01, True), (3.0, True)],  # 3.0: the old "+200 %" (3 x) reading missed it
)
def test_200_percent_of_baseline_means_more_than_twice_it(current, alerts):
    baseline = {"value": 1.0, "samples": 3}
    assert windows.above_share_of_baseline(current, baseline, 200, 3) is alerts


def test_the_error_rates_50_percent_from_baseline_stays_an_increase():
    baseline = {"value": 10.0, "samples": 3}
    assert windows.above_baseline(15, baseline, 50, 3, 5) is False
    assert windows.above_baseline(16, baseline, 50, 3, 5) is True


# ------------------------------------------------------ database failures

TRACEBACK = 'Traceback (most recent call last):\n  File "/app/quests/views.py", line 41, in detail\n'
BENIGN = [
    ("INFO", "database connection opened"),
    ("INFO", "Database connection pool ready: 10 connections"),
    ("INFO", "closed idle database connection after 120s"),
    ("INFO", "database timeout set to 30s"),
    ("INFO", "Retried database transaction after a deadlock: committed"),
    ("INFO", "GET /quests/?q=database+error took 12ms"),
    ("WARNING", "Quest assignment failed: user 5 is not a participant"),
    ("ERROR", "Application approval failed for application 12: quest is full"),
    ("INFO", "health: database OK (SELECT 1 in 2ms)"),
    ("INFO", "Quest 'Fix the connection error page' created"),
]
FAILING = [
    (
        "ERROR",
        "Internal Server Error: /quests/\n" + TRACEBACK + "django.db.utils.OperationalError: could not connect to "
        'server: Connection refused\n\tIs the server running on host "db" (10.0.0.5) and accepting',
    ),
    (
        "ERROR",
        "Internal Server Error: /applications/\n" + TRACEBACK + "sqlite3.OperationalError: unable to open database "
        "file\n\nThe above exception was the direct cause of the following exception:\n\n"
        + TRACEBACK
        + "django.db.utils.OperationalError: unable to open database file",
    ),
    (
        "ERROR",
        "Internal Server Error: /quests/\n" + TRACEBACK + "django.db.utils.InterfaceError: connection already closed",
    ),
    (
        "ERROR",
        'psycopg2.OperationalError: connection to server at "db.internal" (10.0.0.5), port 5432 failed: '
        "Connection timed out",
    ),
    ("ERROR", "django.db.utils.OperationalError: (2003, \"Can't connect to MySQL server on 'db' (111)\")"),
    ("ERROR", "could not connect to the database server at db.internal:5432"),
    ("WARNING", "database unreachable: connection refused by db.internal:5432, retrying"),
]


@pytest.mark.parametrize("level, text", BENIGN, ids=[t for _, t in BENIGN])
def test_benign_database_lines_never_page(monitor, level, text):
    m, log, calls = monitor
    dbwatch.db_pass(m, now=T0)  # the cursor starts at the end of the log
    write_lines(log, *[(level, text, T0 + i) for i in range(10)])
    assert dbwatch.db_pass(m, now=T0 + 10) is None
    assert calls() == []


@pytest.mark.parametrize("level, text", FAILING, ids=[t.splitlines()[-1][:60] for _, t in FAILING])
def test_real_database_failures_page_once_they_persist(monitor, level, text):
    m, log, calls = monitor
    dbwatch.db_pass(m, now=T0)
    write_lines(log, *[(level, text, T0 + i) for i in range(DB_THRESHOLD)])
    assert dbwatch.db_pass(m, now=T0 + DB_THRESHOLD) is None  # tolerated: one record counts once
    assert calls() == []
    write_lines(log, (level, text, T0 + DB_THRESHOLD))
    assert dbwatch.db_pass(m, now=T0 + DB_THRESHOLD + 1) == "paged"
    [alert] = calls()
    assert alert["argv"][:2] == ["--severity", "CRITICAL"]
    assert f"database failures persist: {DB_THRESHOLD + 1} in the last {DB_WINDOW}s" in alert["stdin"]
    first_failing_line = next(line for line in text.splitlines() if re.search(DB_REGEX, line))
    assert first_failing_line.strip()[:40] in alert["stdin"]


def test_failures_spread_wider_than_the_window_do_not_page_and_an_episode_pages_once(monitor):
    m, log, calls = monitor
    dbwatch.db_pass(m, now=T0)
    failure = FAILING[0]
    step = DB_WINDOW // DB_THRESHOLD + 1  # never more than DB_THRESHOLD within the window
    for i in range(DB_THRESHOLD * 3):
        when = T0 + i * step
        write_lines(log, (*failure, when))
        assert dbwatch.db_pass(m, now=when + 1) is None
    assert calls() == []
    start = T0 + DB_THRESHOLD * 3 * step + DB_WINDOW
    for i in range(DB_THRESHOLD + 10):  # an outage: pages once, not on every failure
        write_lines(log, (*failure, start + i))
        dbwatch.db_pass(m, now=start + i)
    assert len(calls()) == 1
    assert dbwatch.db_pass(m, now=start + DB_THRESHOLD + 10 + DB_WINDOW) == "ended"
    # The episode's end is told to the alert command (its alert ends, its dedup window clears).
    assert [c["argv"] for c in calls()[1:]] == [["--resolve", "--key", "app1:database:failures"]]
    later = start + 10 * DB_WINDOW
    write_lines(log, *[(*failure, later + i) for i in range(DB_THRESHOLD + 1)])
    assert dbwatch.db_pass(m, now=later + DB_THRESHOLD + 1) == "paged"  # the next outage pages again
    assert [c["argv"][:2] for c in calls()] == [
        ["--severity", "CRITICAL"],
        ["--resolve", "--key"],
        ["--severity", "CRITICAL"],
    ]


def test_the_follower_pages_on_database_failures_and_a_scan_stands_in_when_it_is_silent(monitor, tmp_path):
    m, log, calls = monitor
    enable_follower(m, tmp_path)
    m.config["errors"] = {
        "log_file": str(log),
        "window_seconds": 3600,
        "patterns": [],
        "rates": [],
        "error_rate": {"regex": "^ERROR ", "increase_percent": 50, "min_events": 5, "min_samples": 3},
    }
    follow.run_follow(m, iterations=1)
    now = time.time()
    write_lines(log, *[(*FAILING[0], now) for _ in range(DB_THRESHOLD + 1)])
    errors.run_errors(m)
    assert calls() == []  # the follower is alive: its lines
    follow.run_follow(m, iterations=1)
    assert [c["argv"][:2] for c in keyed(calls(), "database:failures")] == [["--severity", "CRITICAL"]]
    # The follower goes quiet; the next outage is the errors scan's.
    dbwatch_state = Path(m.state_path("database"))
    state = json.loads(dbwatch_state.read_text())
    dbwatch_state.write_text(json.dumps(dict(state, failures=[], paged=None)))
    beat = os.path.join(m.state_dir, "follow.heartbeat")
    os.utime(beat, (time.time() - 600, time.time() - 600))
    write_lines(log, *[(*FAILING[1], time.time()) for _ in range(DB_THRESHOLD + 1)])
    errors.run_errors(m)
    assert len(keyed(calls(), "database:failures")) == 2


# ------------------------------------------------------ the DEBUG file

LOGGING_PLUGIN = load_module(ROLES / "peerquest_logging" / "filter_plugins" / "peerquest_logging.py", "pq_thr_logging")
LOGROTATE_PLUGIN = load_module(
    ROLES / "peerquest_logrotate" / "filter_plugins" / "peerquest_logrotate.py", "pq_thr_logrotate"
)
sys.path.insert(0, str(ROLES / "peerquest_logging" / "files"))


def logging_config(log_dir, enabled):
    d = LOGGING_DEFAULTS
    handlers = LOGGING_PLUGIN.debug_handlers(
        d["peerquest_logging_handlers"], enabled, d["peerquest_logging_debug_filename"]
    )
    loggers = LOGGING_PLUGIN.debug_loggers(
        d["peerquest_logging_loggers"], enabled, d["peerquest_logging_debug_loggers"]
    )
    assert (
        LOGGING_PLUGIN.logging_problems(
            d["peerquest_logging_formatters"], handlers, loggers, d["peerquest_logging_root"], "critical_file"
        )
        == []
    )
    return LOGGING_PLUGIN.logging_config(
        d["peerquest_logging_formatters"],
        handlers,
        loggers,
        d["peerquest_logging_root"],
        str(log_dir),
        "0640",
        d["peerquest_logging_mask_keys"],
        False,
        "critical_file",
    )


def test_the_debug_file_is_off_by_default(tmp_path):
    assert LOGGING_DEFAULTS["peerquest_logging_debug_enabled"] is False
    files = LOGGING_PLUGIN.logging_files(logging_config(tmp_path, False))
    assert all(f["level"] != "DEBUG" for f in files)


def test_the_debug_file_receives_debug_lines_and_no_other_file_does(tmp_path):
    config = logging_config(tmp_path, True)
    config["handlers"] = {k: v for k, v in config["handlers"].items() if k != "console"}
    for spec in config["loggers"].values():
        spec["handlers"] = [h for h in spec.get("handlers", []) if h != "console"]
    logging.config.dictConfig(config)
    try:
        for name in LOGGING_DEFAULTS["peerquest_logging_debug_loggers"]:
            logging.getLogger(name).debug("debug detail from %s", name)
        logging.getLogger("applications").info("an info line")
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    debug = (tmp_path / LOGGING_DEFAULTS["peerquest_logging_debug_filename"]).read_text()
    for name in LOGGING_DEFAULTS["peerquest_logging_debug_loggers"]:
        assert f"debug detail from {name}" in debug
    assert "an info line" in debug
    for other in tmp_path.iterdir():
        if other.name != LOGGING_DEFAULTS["peerquest_logging_debug_filename"]:
            assert "debug detail" not in other.read_text(), other.name


def test_rotation_keeps_seven_days_of_the_debug_file(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    files = LOGGING_PLUGIN.logging_files(logging_config(log_dir, True))
    retention = LOGROTATE_DEFAULTS["peerquest_logrotate_retention_days"]
    rules = LOGROTATE_PLUGIN.logrotate_rules(files, retention, {})
    debug_path = str(log_dir / LOGGING_DEFAULTS["peerquest_logging_debug_filename"])
    [rule] = [r for r in rules if r["path"] == debug_path]
    assert rule["retention"] == 7 and rule["rotate"] == 7 and rule["maxage"] == 7  # its own 7-day rule
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLES / "peerquest_logrotate" / "templates")), trim_blocks=True
    )
    env.filters["comment"] = lambda text: "# " + text
    text = env.get_template("peerquest.logrotate.j2").render(
        ansible_managed="managed",
        peerquest_logrotate_retention_days=retention,
        _peerquest_logrotate_rules=[rule],
        peerquest_logrotate_frequency="daily",
        peerquest_logrotate_dateformat="-%Y%m%d-%s",
        peerquest_logrotate_postrotate="",
        peerquest_app_user=getpass.getuser(),
        peerquest_logdir_group=grp.getgrgid(os.getgid()).gr_name,
        peerquest_logdir_file_mode="0640",
    )
    config = tmp_path / "peerquest"
    config.write_text(text)
    # Ten days of DEBUG, rotated daily: day 1 still plain (delaycompress), older ones compressed.
    now = time.time()
    debug = Path(debug_path)
    for day in range(1, 11):
        when = now - day * 86400
        name = f"{debug.name}-{time.strftime('%Y%m%d', time.localtime(when))}-{int(when)}"
        path = log_dir / (name if day == 1 else name + ".gz")
        data = f"DEBUG day -{day}\n".encode()
        path.write_bytes(data if day == 1 else gzip.compress(data))
        os.utime(path, (when, when))
    debug.write_text("DEBUG today\n")
    result = subprocess.run(
        ["logrotate", "-f", "-s", str(tmp_path / "state"), str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in log_dir.iterdir() if p.name.startswith(debug.name + "-"))
    assert len(kept) == 7, kept  # today's rotation and six days before it
    ages = [(now - p.stat().st_mtime) / 86400 for p in log_dir.iterdir() if p.name.startswith(debug.name + "-")]
    assert max(ages) < 7, ages
