"""Security events (peerquest_monitors_security_events): the default patterns on realistic lines,
the security job's counting and alerts, and the LOGGING that puts each record into one file it reads."""

import json
import logging
import logging.config
import re
import sys
import time

import pytest
import yaml
from conftest import ROLES, fake_alert_command, load_module
from peerquest_ops.monitors import base, logline, schema, security

MONITORS = yaml.safe_load((ROLES / "peerquest_monitors" / "defaults" / "main.yml").read_text())
LOGGING = yaml.safe_load((ROLES / "peerquest_logging" / "defaults" / "main.yml").read_text())
EVENTS = {event["name"]: event for event in MONITORS["peerquest_monitors_security_events"]}
plugin = load_module(ROLES / "peerquest_logging" / "filter_plugins" / "peerquest_logging.py", "pq_logging_plugin_sec")
sys.path.insert(0, str(ROLES / "peerquest_logging" / "files"))

STAMP = "2026-11-28 06:10:11,123+0000"
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/opt/peerquest/venv/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner\n'
    "    response = get_response(request)\n"
)
# (event or None, record text as the verbose/standard formats write it)
LINES = [
    (
        "disallowed_host",
        f"ERROR {STAMP} exception 12 140 Invalid HTTP_HOST header: 'evil.example.com'. You may need to add "
        f"'evil.example.com' to ALLOWED_HOSTS.\n{TRACE}django.core.exceptions.DisallowedHost: Invalid HTTP_HOST "
        "header: 'evil.example.com'. You may need to add 'evil.example.com' to ALLOWED_HOSTS.",
    ),
    ("csrf_failure", f"WARNING {STAMP} log 12 140 Forbidden (CSRF cookie not set.): /applications/7/approve/"),
    ("csrf_failure", f"WARNING {STAMP} log 12 140 Forbidden (CSRF token missing.): /login/"),
    (
        "csrf_failure",
        f"WARNING {STAMP} log 12 140 Forbidden (Origin checking failed - https://evil.example does not match any "
        "trusted origins.): /login/",
    ),
    (
        "permission_denied",
        f"WARNING {STAMP} log 12 140 Forbidden (Permission denied): /quests/3/edit/\n{TRACE}"
        "django.core.exceptions.PermissionDenied",
    ),
    ("failed_login", f"WARNING {STAMP} audit Failed login for user 'bob' from 10.0.0.7"),
    ("failed_login", f"WARNING {STAMP} accounts 12 140 Login failed for admin@peerquest.example.com"),
    (
        "suspicious_operation",
        f"ERROR {STAMP} exception 12 140 Detected path traversal attempt in '/opt/media/../etc/passwd'\n{TRACE}"
        "django.core.exceptions.SuspiciousFileOperation: Detected path traversal attempt in '/opt/media/../etc/passwd'",
    ),
    (
        "suspicious_operation",
        f"ERROR {STAMP} exception 12 140 Unsafe redirect to URL with protocol 'javascript'\n{TRACE}"
        "django.http.response.DisallowedRedirect: Unsafe redirect to URL with protocol 'javascript'",
    ),
    (None, f"INFO {STAMP} audit Login succeeded for user 'bob' from 10.0.0.7"),
    (None, f"INFO {STAMP} audit Password changed for user 'bob'"),
    (None, f"WARNING {STAMP} log 12 140 Not Found: /wp-login.php"),
    (None, f"INFO {STAMP} views 12 140 GET /security/csrf-explained/ took 120ms"),
    (None, f"ERROR {STAMP} log 12 140 Internal Server Error: /quests/\n{TRACE}KeyError: 'permission'"),
    (None, f"INFO {STAMP} views 12 140 Quest 'Forbidden forest' created by user 7"),
]


def as_json(text):
    """The same record as peerquest_logging_format: json writes it."""
    first, _, rest = text.partition("\n")
    level, _date, _time, *words = first.split(" ")
    logger = {"audit": "audit", "log": "django.request", "exception": "django.security.X"}.get(words[0], "quests")
    if words[0] == "log" and "CSRF" in first or "Origin checking" in first:
        logger = "django.security.csrf"
    if "HTTP_HOST" in first:
        logger = "django.security.DisallowedHost"
    if "path traversal" in first:
        logger = "django.security.SuspiciousFileOperation"
    if "Unsafe redirect" in first:
        logger = "django.security.DisallowedRedirect"
    message = " ".join(words[1:] if words[0] == "audit" else words[3:])
    record = {"time": "2026-11-28T06:10:11.123+00:00", "level": level, "logger": logger, "message": message}
    if rest:
        record["exception"] = rest
    return json.dumps(record)


def matches(text):
    """Names of the default events matching a record: as the job searches it, any line of it."""
    found = set()
    for line in text.split("\n"):
        entry = logline.parse(line)
        found |= {name for name, event in EVENTS.items() if re.search(event["regex"], entry.text)}
    return sorted(found)


@pytest.mark.parametrize("event, text", LINES, ids=[t.split("\n")[0][len(STAMP) + 6 :][:60] for _, t in LINES])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_default_events_match_what_django_and_the_app_log(event, text, log_format):
    record = text if log_format == "text" else as_json(text)
    assert matches(record) == ([event] if event else [])


def test_the_defaults_are_valid_settings():
    cfg = {"log_files": ["/var/log/peerquest/django.log"], "events": list(EVENTS.values())}
    assert schema._security_problems(cfg) == []
    assert set(EVENTS) == {
        "failed_login",
        "disallowed_host",
        "csrf_failure",
        "permission_denied",
        "suspicious_operation",
    }
    assert MONITORS["peerquest_monitors_jobs"]["security"]["every"] == "5m"


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"regex": "("}, "security.events[0].regex: not a valid regular expression"),
        ({"window": 0}, "security.events[0].window: must be a whole number of minutes >= 1"),
        ({"threshold": "4"}, "security.events[0].threshold: must be a whole number >= 0"),
        ({"severity": "ERROR"}, "security.events[0].severity: must be one of"),
    ],
)
def test_check_config_names_a_broken_event(change, problem):
    cfg = {"log_files": [], "events": [dict(EVENTS["failed_login"], **change)]}
    assert any(p.startswith(problem) for p in schema._security_problems(cfg)), schema._security_problems(cfg)


# ---------------------------------------------------------------- the job


@pytest.fixture
def monitor(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    alert, sent = fake_alert_command(tmp_path)
    app_log, audit_log = tmp_path / "django.log", tmp_path / "audit.log"
    app_log.write_text("")
    config = {
        "state_dir": str(state),
        "alert_command": str(alert),
        "host": "app1",
        "security": {"log_files": [str(app_log), str(audit_log)], "events": list(EVENTS.values())},
    }

    def calls():
        return [json.loads(x) for x in sent.read_text().splitlines()] if sent.exists() else []

    return base.Monitor(config), app_log, audit_log, calls


def stamp(seconds_ago=0):
    return time.strftime("%Y-%m-%d %H:%M:%S,000%z", time.localtime(time.time() - seconds_ago))


def append(path, *texts):
    with open(path, "a", encoding="utf-8") as handle:
        for text in texts:
            handle.write(text + "\n")


def failed_login(user, ago=0):
    return f"WARNING {stamp(ago)} audit Failed login for user {user!r} from 10.0.0.7"


def disallowed_host(host, ago=0):
    text = f"Invalid HTTP_HOST header: '{host}'. You may need to add '{host}' to ALLOWED_HOSTS."
    return f"ERROR {stamp(ago)} exception 12 140 {text}\n{TRACE}django.core.exceptions.DisallowedHost: {text}"


def keys(calls):
    return [c["argv"][c["argv"].index("--key") + 1] for c in calls]


def test_failed_logins_alert_above_their_threshold_within_their_window(monitor):
    m, _app_log, audit_log, calls = monitor
    limit, window = EVENTS["failed_login"]["threshold"], EVENTS["failed_login"]["window"]
    # Older than the window: history, not an attack in progress.
    append(audit_log, *[failed_login("old", ago=window * 60 + 120) for _ in range(limit + 5)])
    append(audit_log, *[failed_login(f"user{i}") for i in range(limit)])
    assert security.run_security(m) == []
    append(audit_log, failed_login("mallory"))
    assert security.run_security(m) == ["failed_login"]
    [call] = calls()
    assert call["argv"][:4] == ["--severity", EVENTS["failed_login"]["severity"], "--key", "app1:security:failed_login"]
    assert f"failed_login: {limit + 1} in the last {window} minutes (threshold {limit})" in call["stdin"]
    assert "Failed login for user 'mallory' from 10.0.0.7" in call["stdin"].split("latest: ")[1]


def test_a_record_counts_once_however_many_of_its_lines_match(monitor):
    """A DisallowedHost record repeats its message on its traceback's exception line."""
    m, app_log, _audit_log, calls = monitor
    EVENTS_ONE = dict(EVENTS["disallowed_host"], threshold=1)  # noqa: N806
    m.config["security"]["events"] = [EVENTS_ONE]
    append(app_log, disallowed_host("evil.example"))
    assert security.run_security(m) == []  # one record, though two of its lines match
    append(app_log, disallowed_host("evil2.example"))
    assert security.run_security(m) == ["disallowed_host"]
    assert "latest: Invalid HTTP_HOST header: 'evil2.example'" in calls()[0]["stdin"]


def test_each_line_is_read_once_and_both_files_are_read(monitor):
    m, app_log, audit_log, calls = monitor
    append(app_log, disallowed_host("evil.example"))
    security.run_security(m)
    security.run_security(m)
    state = m.read_state("security", {})
    assert sum(state["buckets"]["disallowed_host"].values()) == 1
    append(audit_log, *[failed_login("x") for _ in range(EVENTS["failed_login"]["threshold"] + 1)])
    assert set(security.run_security(m)) == {"disallowed_host", "failed_login"}


def test_json_lines_give_the_same_alerts(monitor, tmp_path):
    m, app_log, audit_log, calls = monitor
    append(app_log, as_json(disallowed_host("evil.example")).replace("2026-11-28T06:10:11.123+00:00", _iso()))
    append(audit_log, *[as_json(failed_login("x")).replace("2026-11-28T06:10:11.123+00:00", _iso())] * 5)
    assert sorted(security.run_security(m)) == ["disallowed_host", "failed_login"]
    assert "latest: Invalid HTTP_HOST header: 'evil.example'" in " ".join(c["stdin"] for c in calls())


def _iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())


def test_a_missing_log_is_no_error(monitor):
    m, _app_log, _audit_log, calls = monitor
    assert security.run_security(m) == []
    assert calls() == []


# ------------------------------------------ where the records land (LOGGING)


def test_each_security_record_reaches_exactly_one_security_log(tmp_path):
    """The rendered LOGGING: django.security.* and django.request propagate to django's app log,
    audit stays in the audit log; the default security logs are those two, so nothing counts twice."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    config = plugin.logging_config(
        LOGGING["peerquest_logging_formatters"],
        LOGGING["peerquest_logging_handlers"],
        LOGGING["peerquest_logging_loggers"],
        LOGGING["peerquest_logging_root"],
        str(log_dir),
        "0640",
        LOGGING["peerquest_logging_mask_keys"],
    )
    logging.config.dictConfig(config)
    try:
        logging.getLogger("django.security.DisallowedHost").error("Invalid HTTP_HOST header: 'evil.example'.")
        logging.getLogger("django.security.csrf").warning("Forbidden (CSRF cookie not set.): /login/")
        logging.getLogger("django.request").warning("Forbidden (Permission denied): /quests/3/edit/")
        logging.getLogger("audit").warning("Failed login for user 'bob' from 10.0.0.7")
    finally:
        logging.shutdown()
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    # The default security logs: the monitors' app log and the audit log, in this directory.
    app_log = MONITORS["peerquest_monitors_app_log"].split("/")[-1]
    logs = [app_log if "app_log" in p else p.split("/")[-1] for p in MONITORS["peerquest_monitors_security_logs"]]
    assert logs == ["django.log", "audit.log"]
    texts = {name: (log_dir / name).read_text() for name in logs}
    for event, words in [
        ("disallowed_host", "Invalid HTTP_HOST header"),
        ("csrf_failure", "Forbidden (CSRF"),
        ("permission_denied", "Forbidden (Permission denied)"),
        ("failed_login", "Failed login for user"),
    ]:
        holding = [name for name, text in texts.items() if words in text]
        assert len(holding) == 1, (event, holding)
