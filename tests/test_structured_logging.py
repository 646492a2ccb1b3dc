"""peerquest_logging_format: json, one JSON object per line, and the monitors reading either format.

The LOGGING the role renders is loaded with dictConfig, once with the text
format and once with json; the same records are logged through both, and
the monitors (errors, performance, the follower, the database watch) run on
each set of files must send the same alerts.
"""

import calendar
import json
import logging
import logging.config
import re
import sys
import time
from datetime import datetime

import pytest
import yaml
from conftest import ROLES, fake_alert_command, load_module
from peerquest_ops.monitors import base, durations, errors, follow, logline, performance, scan

ROLE = ROLES / "peerquest_logging"
plugin = load_module(ROLE / "filter_plugins" / "peerquest_logging.py", "pq_logging_plugin_json")
sys.path.insert(0, str(ROLE / "files"))
from peerquest_logging.filters import MASK  # noqa: E402

DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
MONITORS = yaml.safe_load((ROLES / "peerquest_monitors" / "defaults" / "main.yml").read_text())
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")


def build(log_dir, log_format):
    return plugin.logging_config(
        DEFAULTS["peerquest_logging_formatters"],
        DEFAULTS["peerquest_logging_handlers"],
        DEFAULTS["peerquest_logging_loggers"],
        DEFAULTS["peerquest_logging_root"],
        str(log_dir),
        "0640",
        DEFAULTS["peerquest_logging_mask_keys"],
        False,
        DEFAULTS["peerquest_logging_critical_handler"],
        log_format,
    )


@pytest.fixture
def configure(tmp_path):
    """configure(format) -> the log directory the rendered LOGGING writes into."""

    def _configure(log_format):
        log_dir = tmp_path / f"log-{log_format}"
        log_dir.mkdir()
        logging.config.dictConfig(build(log_dir, log_format))
        return log_dir

    yield _configure
    logging.shutdown()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------ the formatter


def test_the_default_is_text():
    assert DEFAULTS["peerquest_logging_format"] == "text"
    config = build("/var/log/peerquest", "text")
    assert plugin.JSON_FORMATTER not in config["formatters"]
    assert config["handlers"]["file"]["formatter"] == "verbose"


def test_json_gives_every_file_handler_the_json_formatter_and_leaves_the_console():
    config = build("/var/log/peerquest", "json")
    assert config["formatters"][plugin.JSON_FORMATTER] == {"class": plugin.JSON_FORMATTER_CLASS}
    for name, handler in config["handlers"].items():
        expected = (
            plugin.JSON_FORMATTER
            if "filename" in handler
            else DEFAULTS["peerquest_logging_handlers"][name]["formatter"]
        )
        assert handler["formatter"] == expected, name


def test_every_file_line_is_one_json_object_with_the_fields(configure):
    log_dir = configure("json")
    before = time.time()
    logging.getLogger("quests").warning("Quest assignment failed for %s\nsecond line", "user 7")
    logging.getLogger("audit").info("role changed for user 7")
    files = sorted(p.name for p in log_dir.iterdir() if p.stat().st_size)
    assert files == ["audit.log", "django.log", "warnings.log"]
    [record] = records(log_dir / "warnings.log")
    assert {"time", "level", "logger", "module", "process", "thread", "message"} <= set(record)
    assert "exception" not in record and "stack" not in record
    assert (record["level"], record["logger"]) == ("WARNING", "quests")
    assert record["message"] == "Quest assignment failed for user 7\nsecond line"
    assert isinstance(record["process"], int) and isinstance(record["thread"], int)
    assert ISO_WITH_OFFSET.match(record["time"]), record["time"]
    assert abs(datetime.fromisoformat(record["time"]).timestamp() - before) < 5
    # One record, one line, whatever newlines its message holds.
    assert len((log_dir / "warnings.log").read_text().splitlines()) == 1
    assert records(log_dir / "audit.log")[0]["logger"] == "audit"


def test_exception_and_stack_are_in_the_record_and_masked(configure):
    log_dir = configure("json")
    try:
        raise ValueError("password=inner-secret")
    except ValueError:
        logging.getLogger("quests").exception("retry with %s", "token=outer-secret")
    logging.getLogger("quests").error("dump api_key=stack-secret", stack_info=True)
    text = (log_dir / "errors.log").read_text()
    assert "inner-secret" not in text and "outer-secret" not in text
    first, second = records(log_dir / "errors.log")
    assert first["exception"].startswith("Traceback") and "ValueError: password=" + MASK in first["exception"]
    assert first["message"] == "retry with token=" + MASK
    assert second["stack"].startswith("Stack (most recent call last)")
    assert "stack-secret" not in second["message"]


def test_the_rendered_module_loads_with_json(tmp_path):
    """The settings module as the role renders it, through the role's own check."""
    from test_logging_config import check, render

    log_dir = tmp_path / "log"
    log_dir.mkdir()
    result = check(render(build(log_dir, "json")), tmp_path, log_dir)
    assert result.returncode == 0, result.stderr
    assert list(log_dir.iterdir()) == []


# ------------------------------------------------------- reading either format


def json_line(level, logger, message, when=1_800_000_000.5, **extra):
    stamp = datetime.fromtimestamp(when).astimezone().isoformat(timespec="milliseconds")
    return json.dumps({"time": stamp, "level": level, "logger": logger, "message": message, **extra})


def test_a_json_line_is_searched_as_level_logger_message():
    entry = logline.parse(json_line("ERROR", "quests", "Quest assignment failed", exception="Traceback\nKeyError: 3"))
    assert entry.text == "ERROR quests Quest assignment failed\nTraceback\nKeyError: 3"
    assert entry.body == "Quest assignment failed" and entry.starts_record
    assert entry.when(None) == pytest.approx(1_800_000_000.5)
    assert re.search(MONITORS["peerquest_monitors_error_rate_regex"], entry.text)
    assert not re.search(MONITORS["peerquest_monitors_follow_patterns"][0]["regex"], entry.text)


def test_a_json_time_with_another_offset_is_placed_right():
    line = json.dumps({"time": "2026-11-29T01:00:00.000+13:00", "level": "INFO", "logger": "q", "message": "x"})
    assert scan.line_time(line, None) == calendar.timegm((2026, 11, 28, 12, 0, 0))


@pytest.mark.parametrize(
    "line",
    ["{not json", '{"level": "INFO"}', "[1, 2]", "INFO 2026-11-28 06:10:11,123 views 1 2 {i} braces"],
)
def test_other_lines_are_read_as_text(line):
    entry = logline.parse(line)
    assert entry.text == line and entry.record is None


def test_durations_read_the_message_of_a_json_line():
    timed = durations.Durations(MONITORS["peerquest_monitors_duration_regex"])
    assert timed.parse(json_line("INFO", "views", "approve_application took 7s")) == (7.0, "approve_application")
    assert timed.parse(json_line("INFO", "views", "GET /quests/12/ took 6200ms")) == (6.2, "GET /quests/N/")


# ------------------------------------- the same records, the same alerts, either format


def scenario():
    """Records as the app logs them: patterns, a rate, slow operations, a CRITICAL, database failures."""
    for i in range(4):
        logging.getLogger("applications").error("Application approval failed for %d", i)
    logging.getLogger("quests").error("CRITICAL: payment queue stuck")
    for _ in range(11):
        logging.getLogger("quests").warning("GET /quests/12/ took 6200ms")
    logging.getLogger("django").critical("ledger gone")
    for _ in range(3):
        try:
            raise ConnectionError("could not connect to server: Connection refused")
        except ConnectionError:
            logging.getLogger("django.request").exception("Internal Server Error: /quests/")


def monitor_on(log_dir, tmp_path, name):
    state = tmp_path / f"state-{name}"
    state.mkdir()
    (tmp_path / name).mkdir()
    alert, sent = fake_alert_command(tmp_path / name)
    app_log, critical = str(log_dir / "django.log"), str(log_dir / "critical.log")
    config = {
        "state_dir": str(state),
        "alert_command": str(alert),
        "host": "app1",
        "digest": {"enabled": False},
        "errors": {
            "log_file": app_log,
            "window_seconds": 3600,
            "patterns": MONITORS["peerquest_monitors_error_patterns"],
            "rates": MONITORS["peerquest_monitors_rates"],
            "error_rate": {
                "regex": MONITORS["peerquest_monitors_error_rate_regex"],
                "increase_percent": 50,
                "min_samples": 3,
                "min_events": 5,
                "severity": "WARNING",
            },
        },
        "performance": {
            "log_file": app_log,
            "window_seconds": 3600,
            "duration_regex": MONITORS["peerquest_monitors_duration_regex"],
            "slow_seconds": 5,
            "slow_threshold": 10,
            "slow_severity": "WARNING",
            "degradation_percent": 200,
            "degradation_severity": "WARNING",
            "min_samples": 3,
        },
        "database": {
            "log_file": str(log_dir / "warnings.log"),
            "regex": MONITORS["peerquest_monitors_db_error_regex"],
            "threshold": 2,
            "window_seconds": 120,
            "severity": "CRITICAL",
        },
        "follow": {
            "enabled": True,
            "log_file": critical,
            "poll_seconds": 0,
            "takeover_seconds": 120,
            "severity": "CRITICAL",
            "patterns": MONITORS["peerquest_monitors_follow_patterns"],
        },
    }
    m = base.Monitor(config)
    follow.run_follow(m, iterations=1)  # the follower and the database watch start at the end of the files
    return m, sent


def alerts(sent, log_dir):
    calls = [json.loads(x) for x in sent.read_text().splitlines()] if sent.exists() else []
    return sorted((c["argv"], c["stdin"].replace(str(log_dir), "LOGDIR")) for c in calls)


def test_the_monitors_send_the_same_alerts_for_text_and_json(configure, tmp_path):
    sent_by_format = {}
    for log_format in ("text", "json"):
        log_dir = configure(log_format)
        m, sent = monitor_on(log_dir, tmp_path, log_format)
        scenario()
        follow.run_follow(m, iterations=1)
        errors.run_errors(m)
        performance.run_performance(m)
        sent_by_format[log_format] = alerts(sent, log_dir)
        logging.shutdown()

    def without_event_time(sent):
        """The two runs log at different moments: their lines' times differ, nothing else may."""
        out = []
        for argv, stdin in sent:
            if argv[argv.index("--key") + 1].split(":")[1] in ("follow", "database"):
                assert "--event-time" in argv, argv  # the history's MTTD runs from the line's time
            if "--event-time" in argv:
                at = argv.index("--event-time")
                assert abs(float(argv[at + 1]) - time.time()) < 60, argv
                argv = argv[:at] + argv[at + 2 :]
            out.append((argv, stdin))
        return out

    text, structured = (without_event_time(sent_by_format[f]) for f in ("text", "json"))
    keys = sorted(argv[argv.index("--key") + 1].split(":")[1] for argv, _ in text)
    assert keys == ["database", "errors", "errors", "follow", "performance"], text
    assert structured == text
    # What the page quotes: the first failing line of the traceback, in both.
    [database] = [stdin for argv, stdin in structured if "app1:database:failures" in argv]
    assert 'latest: raise ConnectionError("could not connect to server' in database
