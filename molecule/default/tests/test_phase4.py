"""Phase 4 on real hosts: a threshold changed in the inventory and applied with `--tags phase4`
changes when the alert fires; the alert history records each alert, its acknowledgement and the
resolution a recovering check writes; the weekly and monthly reviews read the whole history,
rotated and compressed copies included, keep their reports and mail them.

Every value comes from the deployed variables (pqtest), so custom_site runs this with its own
patterns and thresholds.
"""

import ast
import json
import os
import re
import shlex
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    VIA_ALERTMANAGER,
    V,
    alert_cmd,
    app_is_up,
    app_log_writer,
    app_service,
    cron_paused,
    delivered,
    forget_dedup,
    host,
    host_name,
    log_through_django,
    marker,
    monitor_user,
    monitors_config,
    output,
    restart_scan_at_end_of_log,
    routes,
    run_job,
    run_logged_job,
    run_playbook,
    wait_for,
)

APP = host("app")
APP_NAME = host_name("app")
VARS = V("app")


def deploy_phase4(extra):
    """ansible-playbook site.yml --tags phase4 on the first app host, as a site applies tuned thresholds."""
    result = run_playbook("site.yml", extra, tags="phase4")
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


# ------------------------------------------------------------ alert history

HISTORY = VARS["peerquest_monitors_history_file"]
HISTORY_CMD = shlex.quote(VARS["peerquest_alerting_history_command_path"])
# Where Alertmanager delivers, peerquest-alert's record of a handed-over alert says so.
DELIVERED = "handed" if VIA_ALERTMANAGER else "sent"


def history(tag=None):
    """The history's current file, as records (those whose key carries tag)."""
    records = [json.loads(line) for line in output(APP, f"cat {shlex.quote(HISTORY)}").splitlines() if line]
    return [r for r in records if tag is None or tag in r.get("key", "")]


def history_lines_in_every_copy():
    """Records in the history and its rotated copies, compressed ones included."""
    pattern = shlex.quote(HISTORY) + "*"
    return int(output(APP, f"sh -c 'for f in {pattern}; do zcat -f \"$f\"; done | grep -c .'").strip())


def test_an_alert_and_its_acknowledgement_are_one_alert_in_the_history():
    if not routes("WARNING"):
        pytest.skip("WARNING is routed nowhere in this inventory")
    key = f"{APP_NAME}:{marker('hist')}"
    happened = int(time.time()) - 120
    forget_dedup()
    result = APP.run(f"{alert_cmd()} --severity WARNING --key {key} --message history --event-time {happened}")
    assert result.rc == 0, result.stdout + result.stderr
    records = history(key)
    delivered = [r for r in records if r["outcome"] == DELIVERED]
    expected = 1 if VIA_ALERTMANAGER else len(routes("WARNING"))
    assert len(delivered) >= expected, records
    if not VIA_ALERTMANAGER:
        assert sorted(r["channel"] for r in delivered) == sorted(routes("WARNING")), records
    assert {r["alert"] for r in records} == {delivered[0]["alert"]}, records  # one alert, one id
    assert all(r["event_time"] == happened and r["severity"] == "WARNING" for r in delivered), records

    answer = APP.run(f"{HISTORY_CMD} ack {shlex.quote(key)} --note checked")
    assert answer.rc == 0, answer.stdout + answer.stderr
    acks = [r for r in history(key) if r["outcome"] == "ack"]
    assert len(acks) == 1 and acks[0]["alert"] == delivered[0]["alert"], history(key)
    listed = output(APP, f"{HISTORY_CMD} list --key {shlex.quote(key)}")
    assert "acked" in listed, listed


def test_a_recovered_service_is_recorded_resolved_once():
    unit = shlex.quote(app_service())
    key = f"{APP_NAME}:health:unavailable"

    def resolutions():
        return [r for r in history() if r["key"] == key and r["outcome"] == "resolved"]

    with cron_paused():
        forget_dedup()
        before = len(resolutions())
        seen = len(history())
        APP.check_output(f"systemctl stop {unit}")
        try:
            run_job("health_quick")  # the quick probe, as cron runs it every minute
            raised = [r["outcome"] for r in history()[seen:] if r["key"] == key]
            assert DELIVERED in raised and "resolved" not in raised, history()[seen:]
        finally:
            APP.check_output(f"systemctl start {unit}")
            wait_for(app_is_up, timeout=60, what="the app answering again")
        run_job("health_quick")
        found = resolutions()
        assert len(found) == before + 1, history()[-10:]
        assert found[-1]["job"] == "health_quick", found[-1]
        run_job("health_quick")
        assert len(resolutions()) == before + 1  # recorded once, not on every healthy run


def test_the_reviews_read_every_rotated_copy_keep_their_reports_and_mail_them():
    if not routes("INFO"):
        pytest.skip("INFO is routed nowhere in this inventory")
    rotate = f"logrotate -f {shlex.quote(V('app')['peerquest_logrotate_config_path'])}"
    with cron_paused():
        for index in range(2):  # two rotations: one copy stays plain (delaycompress), the older one is gzipped
            tag = marker(f"rot{index}")
            assert APP.run(f"{alert_cmd()} --severity WARNING --key {APP_NAME}:{tag} --message {tag}").rc == 0
            # A rotated copy is named by the second (dateformat %s): two in one second would collide.
            time.sleep(1.1)
            APP.check_output(rotate)
        copies = output(APP, f"ls -1 {shlex.quote(HISTORY)}*").split()
        assert any(c.endswith(".gz") for c in copies) and len(copies) >= 3, copies
        report_dir = VARS["peerquest_monitors_review_dir"]
        for kind, title in (
            ("threshold_review", "Weekly alert threshold review"),
            ("review", "Monthly monitoring review"),
        ):
            total = history_lines_in_every_copy()
            done = run_logged_job(kind)
            assert f" {kind}: {total} history record(s)" in done, (total, done)
            kept = re.search(r"kept (\S+\.txt)", done)[1]
            assert kept.startswith(report_dir + "/"), done
            mode, owner = output(APP, f"stat -c '%a %U' {shlex.quote(kept)}").split()
            assert (mode, owner) == ("640", monitor_user()), (mode, owner)
            assert title in output(APP, f"cat {shlex.quote(kept)}")
            wait_for(
                lambda title=title: all(delivered(channel, title) for channel in routes("INFO")),
                timeout=60,
                what=f"the {kind} report at every INFO channel",
            )
