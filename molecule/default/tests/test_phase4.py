"""Phase 4 on real hosts: a threshold changed in the inventory and applied with `--tags phase4`
changes when the alert fires.

Every value comes from the deployed variables (pqtest), so custom_site runs this with its own
patterns and thresholds.
"""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    EPHEMERAL_DIR,
    PROJECT_DIR,
    V,
    app_log_writer,
    cron_paused,
    forget_dedup,
    host,
    host_name,
    log_through_django,
    marker,
    monitors_config,
    restart_scan_at_end_of_log,
    run_logged_job,
)

APP = host("app")
APP_NAME = host_name("app")
VARS = V("app")


def deploy_phase4(extra):
    """ansible-playbook site.yml --tags phase4 on the first app host, as a site applies tuned thresholds."""
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(PROJECT_DIR, "roles"), ANSIBLE_NOCOLOR="1")
    if os.path.exists(os.path.join(EPHEMERAL_DIR, "ansible.cfg")):
        env["ANSIBLE_CONFIG"] = os.path.join(EPHEMERAL_DIR, "ansible.cfg")
    command = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        *("-i", os.path.join(EPHEMERAL_DIR, "inventory"), "--limit", APP_NAME, "--tags", "phase4"),
        *("-e", json.dumps(extra), os.path.join(PROJECT_DIR, "site.yml")),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def deployed_threshold(name):
    return next(p["threshold"] for p in monitors_config()["errors"]["patterns"] if p["name"] == name)


def tunable_pattern():
    """A pattern with a threshold of at least 1 and a label that only its own regex matches."""
    patterns = [p for p in VARS["peerquest_monitors_error_patterns"] if p.get("state", "present") != "absent"]
    for pattern in patterns:
        line = f"ERROR 2000-01-01 00:00:00,000 views 1 1 {pattern['label']} x"
        if int(pattern["threshold"]) >= 1 and [p["name"] for p in patterns if re.search(p["regex"], line)] == [
            pattern["name"]
        ]:
            return pattern
    pytest.skip("no error pattern with a threshold and a label only it matches")


def fired(line):
    """The alerts an errors run's completion line lists ("alerts ['a', 'b']" or "alerts none")."""
    listed = line.rsplit(" alerts ", 1)[1]
    return [] if listed == "none" else ast.literal_eval(listed)


def test_a_lower_threshold_applied_with_tags_phase4_makes_the_same_lines_alert():
    pattern = tunable_pattern()
    count = int(pattern["threshold"])  # at the threshold: no alert ("more than")
    tuned = [
        dict(p, threshold=count - 1) if p["name"] == pattern["name"] else p
        for p in VARS["peerquest_monitors_error_patterns"]
    ]
    with cron_paused():
        forget_dedup()
        try:
            restart_scan_at_end_of_log("errors")
            log_through_django(
                APP, app_log_writer("ERROR"), "ERROR", f"{pattern['label']} {marker('tune')}", count=count
            )
            before = run_logged_job("errors")
            assert f'"{pattern["name"]}": {count}' in before, before
            assert pattern["name"] not in fired(before), before

            out = deploy_phase4({"peerquest_monitors_error_patterns": tuned})
            assert "peerquest_monitors : " in out, out  # the monitors' role ran under the phase 4 tag
            assert deployed_threshold(pattern["name"]) == count - 1

            after = run_logged_job("errors")  # the same lines, still in the window
            assert f'"{pattern["name"]}": {count}' in after, after
            assert pattern["name"] in fired(after), after
        finally:
            deploy_phase4({})
            assert deployed_threshold(pattern["name"]) == count
