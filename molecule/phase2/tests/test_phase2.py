"""Phase 2 on real hosts: scheduled monitors, routing, dedup, spool, follower, MTTD."""

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    APP_URL,
    SCENARIO,
    captured_mail,
    host,
    http,
    http_json,
    log_through_django,
    make_spool_due,
    marker,
    output,
    spooled,
    wait_for,
)

APP = host("app")
SINK = host("sink")
SINK_URL = "http://127.0.0.1:8025"
MONITOR = "sudo -u peerquest-monitor /usr/local/bin/peerquest-monitor"
ALERT = "sudo -u peerquest-monitor /usr/local/bin/peerquest-alert"
MONITORING_LOG = "/var/log/peerquest-monitoring/monitoring.log"
SECRETS = [
    "sandbox-slack-secret",
    "sandbox-discord-secret",
    "sandbox-pager-token-0123456789",
    "sandbox-smtp-secret",
    "sandbox-health-token-0123456789",
]


def hooks(name):
    status, items = http_json(SINK, "GET", f"{SINK_URL}/_captured/hooks/{name}")
    assert status == 200
    return items


def mails_with(tag):
    return [m for m in captured_mail(SINK) if tag in m["body"]]


def hooks_with(name, tag):
    return [h for h in hooks(name) if tag in json.dumps(h["body"])]


def reset_sink():
    assert http(SINK, "POST", f"{SINK_URL}/_control/reset")[0] == 200


@pytest.fixture(scope="module", autouse=True)
def quiet_cron():
    """Scheduled runs would race the tests for new log lines: pause cron meanwhile.

    Dedup state from an earlier verify of the same hosts would swallow the
    alerts these tests expect; start from none.
    """
    APP.check_output("systemctl stop cron.service")
    APP.check_output("rm -f /var/lib/peerquest-alert/dedup.json")
    yield
    APP.check_output("systemctl start cron.service")


# ------------------------------------------------------------- the schedule


def test_schedule_has_every_row_of_the_plan_with_a_lock_each():
    cron = APP.file("/etc/cron.d/peerquest-monitoring")
    assert (cron.user, cron.group, cron.mode) == ("root", "root", 0o644)
    jobs = {}
    for line in cron.content_string.splitlines():
        if line and not line.startswith(("#", "SHELL", "PATH", "MAILTO")):
            fields = line.split(None, 6)
            jobs[line.split("locks/")[1].split(".lock")[0]] = (fields[:5], fields[5], fields[6])
    assert set(jobs) == {
        "alert_retry",
        "health_quick",
        "errors",
        "performance",
        "health",
        "integrity",
        "digest",
        "selfcheck",
        "review",
    }
    for name, (_schedule, user, command) in jobs.items():
        assert user == "peerquest-monitor", name
        assert command.startswith(f"/usr/bin/flock -n -E 98 /var/lib/peerquest-monitoring/locks/{name}.lock"), name
        assert f">> {MONITORING_LOG} 2>&1" in command
    assert jobs["errors"][0][0].endswith("-59/5") and jobs["performance"][0][0].endswith("-59/15")
    assert jobs["integrity"][0][1:] == ["*", "*", "*", "*"]
    assert jobs["digest"][0][1:] == ["6", "*", "*", "*"]
    assert jobs["selfcheck"][0][4] == "1" and jobs["review"][0][2] == "1"


def test_monitoring_account_reads_logs_but_cannot_change_what_it_runs():
    assert APP.run("sudo -u peerquest-monitor cat /var/log/peerquest/django.log >/dev/null").rc == 0
    assert APP.run("sudo -u peerquest-monitor cat /etc/peerquest-ops/alerting.json >/dev/null").rc == 0
    for path in (
        "/usr/local/bin/peerquest-monitor",
        "/usr/local/bin/peerquest-alert",
        "/etc/cron.d/peerquest-monitoring",
        "/etc/peerquest-ops/monitors.json",
        "/usr/local/lib/peerquest-ops/peerquest-audit",
    ):
        assert APP.run(f"sudo -u peerquest-monitor sh -c 'echo x >> {path}'").rc != 0, path
    assert APP.run("sudo -u peerquest-monitor sh -c 'echo x >> /var/log/peerquest/django.log'").rc != 0
    # sudo grants the audit, as the app account, and nothing else.
    assert APP.run("sudo -u peerquest-monitor sudo -n -u peerquest /bin/true").rc != 0
    assert APP.run("sudo -u peerquest-monitor sudo -n /bin/true").rc != 0


def test_overlapping_runs_one_works_one_skips():
    cron = APP.file("/etc/cron.d/peerquest-monitoring").content_string
    line = next(x for x in cron.splitlines() if "locks/errors.lock" in x)
    command = line.split(None, 6)[6].replace("\\%", "%")  # as cron hands it to /bin/sh
    lock = "/var/lib/peerquest-monitoring/locks/errors.lock"
    APP.check_output(f"sudo -u peerquest-monitor flock {lock} sleep 6 >/dev/null 2>&1 &")
    time.sleep(1)
    started = time.monotonic()
    assert APP.run(f"sudo -u peerquest-monitor sh -c {shlex.quote(command)}").rc == 0
    assert time.monotonic() - started < 5  # the second run gave up at once
    tail = output(APP, f"tail -n 5 {MONITORING_LOG}")
    assert "peerquest-monitor errors: skipped, the previous run still holds the lock" in tail
    time.sleep(6)
    assert APP.run(f"sudo -u peerquest-monitor sh -c {shlex.quote(command)}").rc == 0
    assert "errors:" in output(APP, f"tail -n 3 {MONITORING_LOG}")


# ---------------------------------------------------- error monitor, routing


def test_log_lines_trigger_exactly_the_expected_alerts():
    # Start the error monitor's window empty, at the end of the log, with no
    # dedup memory: earlier tests (or an earlier verify of these hosts) logged
    # and alerted failures too.
    APP.check_output("rm -f /var/lib/peerquest-alert/dedup.json")
    APP.check_output(
        "sudo -u peerquest-monitor python3 -c \"import json, os; st = os.stat('/var/log/peerquest/django.log'); "
        "json.dump({'position': {'inode': st.st_ino, 'offset': st.st_size}, 'buckets': {}, 'baselines': {}, "
        "'values': {}}, open('/var/lib/peerquest-monitoring/errors.json', 'w'))\""
    )
    reset_sink()
    tag = marker("thr")
    log_through_django(APP, "applications", "ERROR", f"Application approval failed {tag}", count=4)
    log_through_django(APP, "quests", "ERROR", f"Quest assignment failed {tag}", count=2)
    APP.check_output(f"{MONITOR} errors")
    mails = captured_mail(SINK)
    assert [m["subject"] for m in mails] == ["[WARNING] PeerQuest Alert"]
    assert mails[0]["rcpt_tos"] == ["team@peerquest.test"]
    assert '4 x "Application approval failed" in the last 60 minutes (threshold 3)' in mails[0]["body"]
    [slack] = hooks("slack")
    attachment = slack["body"]["attachments"][0]
    assert attachment["color"] == "#ff9900" and attachment["title"] == "WARNING: PeerQuest Alert"
    assert attachment["footer"] == "PeerQuest Monitoring" and isinstance(attachment["ts"], int)
    assert hooks("discord") == [] and hooks("pager") == []  # WARNING is routed to email and Slack only
    # The same lines are never counted again, and the alert is not repeated within the window.
    APP.check_output(f"{MONITOR} errors")
    log_through_django(APP, "applications", "ERROR", f"Application approval failed {tag} again")
    APP.check_output(f"{MONITOR} errors")
    assert len(captured_mail(SINK)) == 1
    assert "suppressed duplicate" in output(APP, f"tail -n 20 {MONITORING_LOG}")


# ------------------------------------------------------ follower: CRITICAL


def test_critical_line_reaches_every_critical_channel_within_seconds():
    reset_sink()
    tag = marker("crit")
    log_through_django(APP, "quests", "CRITICAL", f"CRITICAL: assignment store unreachable {tag}")
    mail = wait_for(lambda: mails_with(tag), timeout=60, what="the CRITICAL mail")[0]
    assert mail["subject"] == "[CRITICAL] PeerQuest Alert" and mail["rcpt_tos"] == ["oncall@peerquest.test"]
    slack = wait_for(lambda: hooks_with("slack", tag), what="Slack")[0]["body"]
    assert slack["attachments"][0]["color"] == "#ff0000"
    discord = wait_for(lambda: hooks_with("discord", tag), what="Discord")[0]["body"]
    embed = discord["embeds"][0]
    assert embed["color"] == 0xFF0000 and embed["title"] == "CRITICAL: PeerQuest Alert"
    datetime.fromisoformat(embed["timestamp"].replace("Z", "+00:00"))
    assert len(embed["description"]) <= 4096
    pager = wait_for(lambda: hooks_with("pager", tag), what="the pager webhook")[0]
    assert pager["headers"].get("Authorization") == "Bearer sandbox-pager-token-0123456789"
    assert pager["body"]["severity"] == "CRITICAL" and pager["body"]["host"]


def test_a_failing_channel_gets_the_alert_once_later_and_survives_a_restart():
    reset_sink()
    tag = marker("spool")
    assert http(SINK, "POST", f"{SINK_URL}/_control/fail?path=pager&count=2&status=500")[0] == 200
    log_through_django(APP, "quests", "CRITICAL", f"CRITICAL: ledger mismatch {tag}")
    wait_for(lambda: mails_with(tag), what="the mail (a working channel)")
    pending = wait_for(lambda: spooled(APP), what="the spooled delivery")
    assert len(pending) == 1 and hooks_with("pager", tag) == []
    # A host restart loses nothing: the spool is on disk.
    subprocess.run(["podman", "restart", "-t", "5", f"pq-{SCENARIO}-app"], check=True, capture_output=True)
    wait_for(
        lambda: APP.run("systemctl is-system-running").stdout.strip() in ("running", "degraded"),
        timeout=90,
        what="the app host to boot",
    )
    APP.check_output("systemctl stop cron.service")
    assert spooled(APP) == pending
    for _ in range(2):  # the receiver still fails once, then recovers
        make_spool_due(APP)
        APP.run(f"{ALERT} --flush-spool")
    assert spooled(APP) == []
    assert len(hooks_with("pager", tag)) == 1  # delivered exactly once
    assert len(mails_with(tag)) == 1 and len(hooks_with("slack", tag)) == 1  # working channels not repeated
    log = output(APP, f"grep -a '{tag[-12:]}' {MONITORING_LOG} || tail -n 40 {MONITORING_LOG}")
    assert "spool" in log or "queued" in log


# ------------------------------------------------------ integrity & health


def test_inconsistency_makes_the_integrity_monitor_alert_and_health_report_it():
    reset_sink()
    manage = "cd /srv/peerquest && sudo -u peerquest env PYTHONPATH=/opt/peerquest-ops/python venv/bin/python manage.py"
    token = {"Authorization": "Bearer sandbox-health-token-0123456789"}
    APP.check_output(f"{manage} standin_break_sync")
    try:
        APP.check_output(f"{MONITOR} integrity")
        mail = wait_for(
            lambda: [m for m in captured_mail(SINK) if "Data integrity issues" in m["body"]], what="the integrity mail"
        )[0]
        assert mail["subject"] == "[CRITICAL] PeerQuest Alert" and "TOTAL ISSUES: 1" in mail["body"]
        status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers=token)
        assert status == 503 and body["checks"]["data_integrity"]["result"] == "ISSUES_DETECTED"
    finally:
        APP.check_output(f"{manage} standin_fix_sync")
    APP.check_output(f"{MONITOR} integrity")
    status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers=token)
    assert status == 200 and body["checks"]["data_integrity"]["result"] == "OK"


def test_service_down_is_critical():
    reset_sink()
    APP.check_output("systemctl stop peerquest.service")
    try:
        APP.check_output(f"{MONITOR} --quick health")
    finally:
        APP.check_output("systemctl start peerquest.service")
    mail = wait_for(lambda: [m for m in captured_mail(SINK) if "service unavailable" in m["body"]], what="mail")[0]
    assert mail["subject"] == "[CRITICAL] PeerQuest Alert"
    wait_for(lambda: http(APP, "GET", f"{APP_URL}/health/quick/")[0] == 200, what="the app back")


def test_selfcheck_tests_the_channels():
    reset_sink()
    APP.check_output(f"{MONITOR} selfcheck")
    assert any("alert channel test" in json.dumps(h["body"]) for h in hooks("slack"))


# --------------------------------------------------------------- secrets


def test_secrets_stay_out_of_processes_logs_and_readable_files():
    processes = APP.check_output("ps -eo args")
    logs = output(APP, f"cat {MONITORING_LOG} /var/log/peerquest/*.log")
    readable = APP.run(
        "find /etc /var /usr/local /opt /srv /tmp -xdev -type f -perm -o=r -size -2M 2>/dev/null "
        f"| xargs -r grep -l -F -e {' -e '.join(SECRETS)} 2>/dev/null"
    ).stdout
    for secret in SECRETS:
        assert secret not in processes and secret not in logs, secret
    assert readable.strip() == ""


# ------------------------------------------------------------ cron and MTTD


def test_cron_runs_the_schedule():
    APP.check_output("systemctl start cron.service")
    lock = "/var/lib/peerquest-monitoring/locks/alert_retry.lock"
    APP.check_output(f"rm -f {lock}")
    wait_for(lambda: APP.file(lock).exists, timeout=75, interval=2, what="cron to run alert_retry")
    APP.check_output("systemctl stop cron.service")


def test_critical_detection_time():
    """MTTD from the log line to the message received (written to .cache/mttd-<scenario>.json)."""
    reset_sink()
    injections = int(os.environ.get("PQ_MTTD_INJECTIONS", "20"))
    sent = {}
    for index in range(injections):
        tag = marker(f"mttd{index}")
        sent[tag] = time.time()
        log_through_django(APP, "quests", "CRITICAL", f"CRITICAL: injected failure {tag}")
        time.sleep(0.5)
    deadline = time.time() + 120
    delays = {}
    while time.time() < deadline and len(delays) < injections:
        for mail in captured_mail(SINK):
            for tag, at in sent.items():
                if tag in mail["body"] and tag not in delays:
                    received = datetime.fromisoformat(mail["received_at"].replace("Z", "+00:00")).timestamp()
                    delays[tag] = received - at
        time.sleep(1)
    values = sorted(delays.values())
    result = {
        "injections": injections,
        "detected": len(values),
        "detection_rate": len(values) / injections,
        "p50_seconds": round(statistics.median(values), 2) if values else None,
        "p95_seconds": round(values[max(0, int(len(values) * 0.95 + 0.5) - 1)], 2) if values else None,
        "max_seconds": round(values[-1], 2) if values else None,
    }
    out = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".cache", f"mttd-{SCENARIO}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"MTTD: {json.dumps(result)}")
    assert result["detection_rate"] == 1.0, result
