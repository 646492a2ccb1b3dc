"""site.yml as a whole: every deployed phase answers on the same hosts."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    APP_URL,
    LOG_DIR,
    captured_mail,
    file_lines,
    host,
    http_json,
    log_through_django,
    marker,
    wait_for,
)

APP = host("app")
SINK = host("sink")


def test_app_runs_with_the_deployed_logging_and_health_app():
    assert APP.service("peerquest.service").is_running
    assert http_json(APP, "GET", f"{APP_URL}/health/quick/") == (200, {"status": "OK"})


def test_an_error_in_the_app_lands_in_errors_log():
    tag = marker()
    log_through_django(APP, "quests", "ERROR", f"{tag} Quest assignment failed")
    wait_for(lambda: any(tag in line for line in file_lines(APP, f"{LOG_DIR}/errors.log")), what="the error line")


def test_alert_reaches_the_sink():
    tag = marker()
    assert APP.run(f"peerquest-alert --severity CRITICAL --message {tag}").rc == 0
    wait_for(lambda: [m for m in captured_mail(SINK) if tag in m["body"]], what="the alert mail")


def test_rotation_rules_are_installed_and_valid():
    assert APP.run("logrotate -d /etc/logrotate.d/peerquest").rc == 0
