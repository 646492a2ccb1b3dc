"""Structured logging and security events on a real host.

- peerquest_logging_format json, deployed over the running site: every file
  the app writes gets JSON lines with the documented fields (secrets masked,
  tracebacks included), and a CRITICAL still reaches a channel through the
  follower; the inventory's format is restored afterwards.
- Security events: a request with a Host header Django refuses (DisallowedHost)
  and failed logins through the running app reach a channel through the
  security job.

Every value (paths, thresholds, routes, patterns) comes from the deployed
variables; each deploy costs a minute, so the format is switched once.
"""

import json
import os
import re
import sys
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    app_http,
    app_is_up,
    cron_paused,
    delivered,
    delivered_text,
    file_lines,
    files_receiving,
    forget_dedup,
    host,
    host_name,
    line_count,
    lines_after,
    log_path,
    log_through_django,
    marker,
    monitors_config,
    routes,
    run_job,
    run_playbook,
    wait_for,
)

APP = host("app")
APP_NAME = host_name("app")
VARS = V("app")
MASK = "********"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
FIELDS = {"time", "level", "logger", "module", "process", "thread", "message"}


def deploy(extra, tags="app,logging"):
    """ansible-playbook site.yml on the app host with -e extra: only the roles LOGGING needs (and the
    checks); phase 2's monitors read either format as they run."""
    return run_playbook("site.yml", extra, tags=tags)


def new_lines_with(tag, counts):
    """{file name: [lines holding tag]} written since counts ({file name: line count})."""
    return {name: [x for x in lines_after(APP, log_path(name), n) if tag in x] for name, n in counts.items()}


def test_json_format_writes_json_lines_and_a_critical_still_pages():
    tag = marker("json")
    secret = "hunter2-" + tag
    warning_files = files_receiving("quests", "WARNING")
    critical_files = files_receiving("quests", "CRITICAL")
    assert warning_files and critical_files, "no log file receives quests' WARNING and CRITICAL"
    channel = routes("CRITICAL")[0]
    result = deploy({"peerquest_logging_format": "json"})
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(app_is_up, timeout=60, what="the app after the reload")
        counts = {name: line_count(APP, log_path(name)) for name in set(warning_files + critical_files)}
        log_through_django(APP, "quests", "WARNING", f"{tag} assignment retry password={secret}")
        status, _ = app_http("GET", "/standin/error/")
        assert status == 500
        with cron_paused():
            forget_dedup()
            log_through_django(APP, "quests", "CRITICAL", f"{tag} ledger gone")
            alert = wait_for(lambda: delivered(channel, tag), timeout=60, what=f"the CRITICAL on {channel}")
        assert "ledger gone" in delivered_text(alert[0])
        found = new_lines_with(tag, counts)
        for name in warning_files:
            [line] = [x for x in found[name] if "assignment retry" in x]
            record = json.loads(line)
            assert FIELDS <= set(record), (name, record)
            assert (record["level"], record["logger"]) == ("WARNING", "quests"), record
            assert record["message"] == f"{tag} assignment retry password={MASK}", record
            assert secret not in line
            assert ISO_WITH_OFFSET.match(record["time"]), record["time"]
            assert abs(datetime.fromisoformat(record["time"]).timestamp() - datetime.now().timestamp()) < 300
            assert isinstance(record["process"], int) and isinstance(record["thread"], int)
        for name in critical_files:
            [line] = [x for x in found[name] if "ledger gone" in x]
            assert json.loads(line)["level"] == "CRITICAL"
        # Django's own request error, its traceback inside the record.
        errors = [
            json.loads(x)
            for name in files_receiving("django.request", "ERROR")
            for x in file_lines(APP, log_path(name))[-50:]
            if x.startswith("{") and "standin: deliberate error" in x
        ]
        assert errors and all(e["exception"].startswith("Traceback") for e in errors), errors
        assert all("RuntimeError: standin: deliberate error" in e["exception"] for e in errors)
    finally:
        restored = deploy({})
        assert restored.returncode == 0, restored.stdout + restored.stderr
        wait_for(app_is_up, timeout=60, what="the app after the reload")
    name = warning_files[0]
    count = line_count(APP, log_path(name))
    log_through_django(APP, "quests", "WARNING", f"{tag} back to text")
    line = wait_for(lambda: new_lines_with(tag, {name: count})[name], what="the text line")[0]
    assert not line.startswith("{") and line.startswith("WARNING "), line


def security_lines(tag):
    return [x for path in monitors_config()["security"]["log_files"] for x in file_lines(APP, path) if tag in x]


def events_matching(lines):
    events = monitors_config()["security"]["events"]
    return [e for e in events if any(re.search(e["regex"], x) for x in lines)]


def test_disallowed_host_and_failed_logins_reach_a_channel():
    # The stand-in logs failed logins to its audit logger: one of its files must be a security log.
    audit_files = {log_path(name) for name in files_receiving("audit", "WARNING")}
    security_logs = set(monitors_config()["security"]["log_files"])
    assert audit_files & security_logs, (
        f"peerquest_monitors_security_logs {sorted(security_logs)} holds none of the audit logger's files "
        f"{sorted(audit_files)}: failed logins would never be read"
    )
    bad_host = f"evil_{marker('host')}.example"  # "_" is never a valid host name, whatever ALLOWED_HOSTS says
    user = marker("login")
    with cron_paused():
        run_job("security")  # read up to now: what earlier tests logged is alerted (or not) before this one
        forget_dedup()
        status, _ = app_http("GET", "/standin/ping/", headers={"Host": bad_host})
        assert status == 400
        status, _ = app_http("POST", "/standin/login/", data={"username": user, "password": "wrong-password"})
        assert status == 401
        host_events = events_matching(wait_for(lambda: security_lines(bad_host), what="the DisallowedHost record"))
        login_events = events_matching(wait_for(lambda: security_lines(user), what="the failed login record"))
        assert host_events, f"no peerquest_monitors_security_events entry matches {security_lines(bad_host)}"
        assert login_events, f"no peerquest_monitors_security_events entry matches {security_lines(user)}"
        # Past each event's threshold (one record of each is there already).
        host_event = min(host_events, key=lambda e: e["threshold"])
        login_event = min(login_events, key=lambda e: e["threshold"])
        for _ in range(host_event["threshold"]):
            app_http("GET", "/standin/ping/", headers={"Host": bad_host})
        for _ in range(login_event["threshold"]):
            app_http("POST", "/standin/login/", data={"username": user, "password": "wrong-password"})
        result = run_job("security")
        assert result.rc == 0, result.stdout + result.stderr
        for tag, event in [(bad_host, host_event), (user, login_event)]:
            channel = routes(event["severity"])[0]
            alert = wait_for(lambda t=tag, c=channel: delivered(c, t), timeout=60, what=f"{event['name']} on {channel}")
            assert f"security event {event['name']}" in delivered_text(alert[0])
