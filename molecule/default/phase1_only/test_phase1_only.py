"""Roadmap phase 1 alone (playbooks/phase1.yml): in place, and nothing of phase 2.

A site rolls the plan out phase by phase; this runs after phase1.yml and
before site.yml adds phase 2 on the same hosts.
"""

import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    alert_command,
    app_hosts,
    app_json,
    app_service,
    file_lines,
    files_receiving,
    host,
    log_path,
    log_through_django,
    marker,
    monitor_command,
    wait_for,
)

# Verified in the default scenario too (molecule/default/molecule.yml selects by this mark).
pytestmark = pytest.mark.default_scenario


def test_phase1_serves_health_and_logs_through_the_deployed_logging():
    for name in app_hosts():
        assert host(name).service(app_service(name)).is_running
        assert app_json("GET", "/health/quick/", h=name) == (200, {"status": "OK"})
    app = host("app")
    tag = marker()
    log_through_django(app, "quests", "ERROR", f"{tag} phase one")
    files = files_receiving("quests", "ERROR")
    assert files
    for name in files:
        wait_for(lambda name=name: any(tag in x for x in file_lines(app, log_path(name))), what=name)


def test_phase1_installs_the_alert_command():
    for name in app_hosts():
        assert host(name).file(alert_command(name)).is_file


def test_nothing_of_phase2_is_on_the_hosts():
    for name in app_hosts():
        target = host(name)
        vars_ = V(name)
        assert not target.file(monitor_command(name)).exists
        assert not target.file(vars_["peerquest_monitors_config_path"]).exists
        units = target.run("systemctl list-unit-files --no-legend 'peerquest-monitor*'").stdout
        assert units.strip() == "", units
        crons = target.run("grep -l -r -F -- " + shlex.quote(monitor_command(name)) + " /etc/cron.d").stdout
        assert crons.strip() == "", crons
