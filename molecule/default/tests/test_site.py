"""site.yml as a whole: every deployed phase answers on the same hosts.

Paths, accounts, URLs and routes come from the deployed variables (pqtest).
"""

import json
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    alert_cmd,
    app_json,
    app_service,
    captured_hooks,
    captured_mail,
    file_lines,
    files_receiving,
    host,
    log_path,
    log_through_django,
    marker,
    routes,
    wait_for,
)

# Verified in the default scenario too (molecule/default/molecule.yml selects by this mark).
pytestmark = pytest.mark.default_scenario

APP = host("app")
SINK = host("sink")


def test_app_runs_with_the_deployed_logging_and_health_app():
    assert APP.service(app_service()).is_running
    assert app_json("GET", "/health/quick/") == (200, {"status": "OK"})


def test_an_error_in_the_app_lands_in_every_file_that_keeps_errors():
    tag = marker()
    log_through_django(APP, "quests", "ERROR", f"{tag} Quest assignment failed")
    files = files_receiving("quests", "ERROR")
    assert files
    for name in files:
        wait_for(lambda name=name: any(tag in x for x in file_lines(APP, log_path(name))), what=f"the line in {name}")


def test_alert_reaches_the_sink():
    tag = marker()
    assert APP.run(f"{alert_cmd()} --severity CRITICAL --message {tag}").rc == 0
    channel = routes("CRITICAL")[0]
    if channel == "email":
        wait_for(lambda: [m for m in captured_mail(SINK) if tag in m["body"]], what="the alert mail")
    else:
        wait_for(lambda: [h for h in captured_hooks(channel, SINK) if tag in json.dumps(h["body"])], what=channel)


def test_rotation_rules_are_installed_and_valid():
    assert APP.run(f"logrotate -d {shlex.quote(V()['peerquest_logrotate_config_path'])}").rc == 0
