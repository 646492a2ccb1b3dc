"""Phase 1 on real hosts: logs, rotation, health endpoints, email alerts."""

import json
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    APP_URL,
    LOG_DIR,
    captured_mail,
    file_lines,
    host,
    http_json,
    log_through_django,
    make_spool_due,
    marker,
    wait_for,
)

APP = host("app")
SINK = host("sink")
APP_HOST = f"pq-{os.environ.get('MOLECULE_SCENARIO_NAME', 'phase1')}-app"
LOG_FILES = ["django.log", "warnings.log", "errors.log", "critical.log", "audit.log"]
STATE_FILE = "/var/lib/peerquest-ops/integrity/result.json"


def where(text):
    """Log files (current ones) holding a line with text."""
    return sorted(name for name in LOG_FILES if any(text in line for line in file_lines(APP, f"{LOG_DIR}/{name}")))


def health_token():
    return json.loads(APP.check_output("cat /etc/peerquest-ops/health.json"))["token"]


# 1. Log directory and permissions


def test_log_directory_is_private_to_app_and_readers():
    directory = APP.file(LOG_DIR)
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == ("peerquest", "peerquest-logs", 0o2750)


def test_log_files_are_0640_and_nothing_is_open_to_others():
    for name in LOG_FILES:
        log = APP.file(f"{LOG_DIR}/{name}")
        assert (log.user, log.group, log.mode) == ("peerquest", "peerquest-logs", 0o640), name
    loose = APP.check_output(f"find {LOG_DIR} \\( -perm /o=rwx -o -perm /g=w \\) -print")
    assert loose == ""
    # Another account can't read; a member of the reader group can.
    assert APP.run(f"sudo -u nobody cat {LOG_DIR}/django.log").rc != 0


def test_reader_group_can_read_but_not_write():
    APP.check_output("id pq-reader >/dev/null 2>&1 || useradd --system --no-create-home -G peerquest-logs pq-reader")
    assert APP.run(f"sudo -u pq-reader cat {LOG_DIR}/errors.log").rc == 0
    assert APP.run(f"sudo -u pq-reader sh -c 'echo x >> {LOG_DIR}/errors.log'").rc != 0
    assert APP.run(f"sudo -u pq-reader touch {LOG_DIR}/new.log").rc != 0


# 2. Django LOGGING settings


def test_django_writes_each_level_to_the_files_that_keep_it():
    tag = marker()
    log_through_django(APP, "applications", "INFO", f"{tag} info")
    log_through_django(APP, "applications", "ERROR", f"{tag} Application approval failed for quest 4")
    log_through_django(APP, "quests", "CRITICAL", f"{tag} CRITICAL: assignment store unreachable")
    log_through_django(APP, "audit", "INFO", f"{tag} audit trail")
    wait_for(lambda: where(f"{tag} audit"), what="the audit line")
    assert where(f"{tag} info") == ["django.log"]
    assert where(f"{tag} Application approval failed") == ["django.log", "errors.log", "warnings.log"]
    assert where(f"{tag} CRITICAL:") == ["critical.log", "django.log", "errors.log", "warnings.log"]
    assert where(f"{tag} audit") == ["audit.log"]


def test_log_lines_use_the_plans_formats():
    tag = marker()
    log_through_django(APP, "quests", "WARNING", f"{tag} slow quest query")
    [line] = [x for x in file_lines(APP, f"{LOG_DIR}/warnings.log") if tag in x]
    level, day, clock, module, process, thread, *_ = line.split()
    assert (level, module) == ("WARNING", "views")
    datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S,%f")
    assert process.isdigit() and thread.isdigit()
    log_through_django(APP, "audit", "INFO", f"{tag} audit format")
    [audit] = [x for x in file_lines(APP, f"{LOG_DIR}/audit.log") if tag in x]
    assert audit.split()[0] == "INFO" and audit.split()[3] == "audit"


def test_secrets_never_reach_the_log_files():
    tag = marker()
    log_through_django(APP, "applications", "ERROR", f"{tag} login failed password=hunter2-{tag} token: tk-{tag}")
    [line] = [x for x in file_lines(APP, f"{LOG_DIR}/errors.log") if tag in x]
    assert f"hunter2-{tag}" not in line and f"tk-{tag}" not in line
    assert "password=********" in line


def test_deployed_settings_pass_the_check_and_a_broken_module_fails_it():
    check = "/srv/peerquest/venv/bin/python /opt/peerquest-ops/python/peerquest_logging/check.py"
    assert APP.run(f"{check} /opt/peerquest-ops/python/peerquest_logging/settings.py {LOG_DIR}").rc == 0
    APP.check_output(
        "sed 's/PrivateWatchedFileHandler/nosuchmodule.Handler/' "
        "/opt/peerquest-ops/python/peerquest_logging/settings.py > /tmp/bad_settings.py"
    )
    bad = APP.run(f"{check} /tmp/bad_settings.py {LOG_DIR}")
    assert bad.rc == 1 and "invalid LOGGING settings" in bad.stderr


def test_settings_module_is_root_owned_and_app_only_reads_it():
    settings = APP.file("/opt/peerquest-ops/python/peerquest_logging/settings.py")
    assert (settings.user, settings.mode) == ("root", 0o644)
    assert "Ansible" in settings.content_string.splitlines()[1] or "managed" in settings.content_string.lower()
    assert APP.run("sudo -u peerquest sh -c 'echo x >> /opt/peerquest-ops/python/peerquest_logging/settings.py'").rc


# 3. Log rotation


def test_rotation_rules_pass_logrotate_and_follow_the_policy():
    assert APP.run("logrotate -d /etc/logrotate.d/peerquest").rc == 0
    rules = APP.file("/etc/logrotate.d/peerquest").content_string
    assert "nginx" not in rules
    blocks = {
        line.split()[0]: block for block in rules.split("}") for line in block.splitlines() if line.startswith("/")
    }
    expected = {
        "django.log": "rotate 30",
        "warnings.log": "rotate 90",
        "errors.log": "rotate 365",
        "critical.log": "rotate -1",
        "audit.log": "rotate 30",
    }
    for name, rotate in expected.items():
        block = blocks[f"{LOG_DIR}/{name}"]
        assert rotate in block, name
        for directive in (
            "daily",
            "compress",
            "delaycompress",
            "missingok",
            "notifempty",
            "dateext",
            "su peerquest peerquest-logs",
            "create 0640 peerquest peerquest-logs",
        ):
            assert directive in block, f"{name}: {directive}"
    assert "maxage" not in blocks[f"{LOG_DIR}/critical.log"]


def test_forced_rotation_while_the_app_keeps_logging():
    tag = marker("rot")
    total = 120
    # Writer in the background, inside the app host: numbered lines through gunicorn.
    writer = (
        f"for i in $(seq 1 {total}); do curl -s -o /dev/null -X POST "
        f"--data-urlencode logger=applications --data-urlencode level=INFO "
        f"--data-urlencode message={tag}-$i {APP_URL}/standin/log/; sleep 0.02; done; touch /tmp/{tag}.done"
    )
    APP.check_output(f"nohup sh -c {shlex.quote(writer)} >/dev/null 2>&1 &")
    wait_for(lambda: where(f"{tag}-10 ") or where(f"{tag}-10"), what="the first lines")
    rotated = APP.run("logrotate -f /etc/logrotate.d/peerquest")
    assert rotated.rc == 0, rotated.stderr
    wait_for(lambda: APP.file(f"/tmp/{tag}.done").exists, timeout=120, what="the writer to finish")

    current = [x for x in file_lines(APP, f"{LOG_DIR}/django.log") if tag in x]
    old_files = APP.check_output(f"ls {LOG_DIR} | grep '^django.log-' || true").split()
    old = []
    for name in old_files:
        reader = "zcat" if name.endswith(".gz") else "cat"
        old += [x for x in APP.check_output(f"{reader} {LOG_DIR}/{name}").splitlines() if tag in x]
    numbers = sorted(int(x.rsplit("-", 1)[1]) for x in current + old)
    # Every line exactly once: none lost, none written into the rotated file twice.
    assert numbers == list(range(1, total + 1))
    # Lines after the rotation landed in the new file, earlier ones stayed in the old.
    assert current and old
    assert max(int(x.rsplit("-", 1)[1]) for x in current) == total
    new = APP.file(f"{LOG_DIR}/django.log")
    assert (new.user, new.group, new.mode) == ("peerquest", "peerquest-logs", 0o640)


def _fake_rotated(name, days_ago):
    when = datetime.now(UTC) - timedelta(days=days_ago)
    path = f"{LOG_DIR}/{name}-{when:%Y%m%d}-{int(when.timestamp())}.gz"
    stamp = when.strftime("%Y%m%d%H%M")
    return f"echo old | gzip > {path} && touch -t {stamp} {path} && chown peerquest:peerquest-logs {path}"


def test_retention_keeps_each_file_as_the_policy_says():
    ages = {"django.log": [5, 20, 29, 45, 60], "errors.log": [100, 300, 400], "critical.log": [400, 900, 2000]}
    APP.check_output(" && ".join(_fake_rotated(name, d) for name, days in ages.items() for d in days))
    for name in ages:
        log_through_django(APP, "quests", "CRITICAL", f"{marker()} keep {name} non-empty")
    assert APP.run("logrotate -f /etc/logrotate.d/peerquest").rc == 0

    def kept(name):
        listing = APP.check_output(f"find {LOG_DIR} -name '{name}-*' -mtime +1 -printf '%TY-%Tm-%Td\\n'")
        days = []
        for stamp in listing.split():
            delta = datetime.now() - datetime.strptime(stamp, "%Y-%m-%d")
            days.append(round(delta.total_seconds() / 86400))
        return days

    assert all(d <= 31 for d in kept("django.log")) and len(kept("django.log")) == 3  # INFO: 30 days
    assert all(d <= 366 for d in kept("errors.log")) and len(kept("errors.log")) == 2  # ERROR: 365 days
    assert len(kept("critical.log")) == 3  # CRITICAL: forever


# 4. Health check endpoints


def test_quick_health_answers_for_load_balancers():
    status, body = http_json(APP, "GET", f"{APP_URL}/health/quick/")
    assert (status, body) == (200, {"status": "OK"})


def test_full_health_requires_the_token():
    status, body = http_json(APP, "GET", f"{APP_URL}/health/")
    assert status == 401 and body["status"] == "unauthorized"
    status, _ = http_json(APP, "GET", f"{APP_URL}/health/", headers={"Authorization": "Bearer wrong-token"})
    assert status == 401


def test_full_health_reports_every_check():
    APP.run(f"rm -f {STATE_FILE}")
    status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers={"Authorization": f"Bearer {health_token()}"})
    assert status == 200, body
    assert body["status"] == "healthy"
    checks = body["checks"]
    assert checks["database"] == "OK"
    assert checks["log_dir"] == "OK"
    assert checks["disk"]["result"] == "OK" and checks["disk"]["free_mb"] > 0
    assert checks["data_integrity"] == "NO_DATA"
    assert set(checks["models"]) == {"applications", "quests", "participants"}
    assert all(isinstance(n, int) and n > 0 for n in checks["models"].values())
    datetime.fromisoformat(body["timestamp"])


@pytest.fixture
def integrity_state():
    def write(**state):
        APP.check_output(f"mkdir -p $(dirname {STATE_FILE}) && echo {shlex.quote(json.dumps(state))} > {STATE_FILE}")

    yield write
    APP.run(f"rm -f {STATE_FILE}")


def test_health_reads_the_recorded_integrity_result(integrity_state):
    token = {"Authorization": f"Bearer {health_token()}"}
    now = datetime.now(UTC).isoformat()
    integrity_state(checked_at=now, total_issues=0, status="ok")
    status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers=token)
    assert status == 200 and body["checks"]["data_integrity"]["result"] == "OK"

    integrity_state(checked_at=now, total_issues=3, status="issues")
    status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers=token)
    assert status == 503 and body["status"] == "degraded"
    assert body["checks"]["data_integrity"] == {"checked_at": now, "total_issues": 3, "result": "ISSUES_DETECTED"}

    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    integrity_state(checked_at=old, total_issues=0, status="ok")
    status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers=token)
    assert status == 503 and body["checks"]["data_integrity"]["result"] == "STALE"


def test_health_does_not_run_the_audit_per_request():
    views = APP.file("/opt/peerquest-ops/python/peerquest_health/views.py").content_string
    assert "subprocess" not in views and "call_command" not in views
    # Without a recorded result /health/ says so instead of running the audit.
    APP.run(f"rm -f {STATE_FILE}")
    token = {"Authorization": f"Bearer {health_token()}"}
    assert http_json(APP, "GET", f"{APP_URL}/health/", headers=token)[1]["checks"]["data_integrity"] == "NO_DATA"


def test_broken_database_gives_503():
    token = {"Authorization": f"Bearer {health_token()}"}
    APP.check_output("chmod 000 /srv/peerquest/db.sqlite3")
    try:
        status, body = http_json(APP, "GET", f"{APP_URL}/health/quick/")
        assert (status, body) == (503, {"status": "ERROR"})
        status, body = http_json(APP, "GET", f"{APP_URL}/health/", headers=token)
        assert status == 503 and body["status"] == "unhealthy"
        assert body["checks"]["database"].startswith("ERROR")
    finally:
        APP.check_output("chmod 640 /srv/peerquest/db.sqlite3")
    assert http_json(APP, "GET", f"{APP_URL}/health/quick/")[0] == 200


# 5. Email alerting


def test_settings_with_smtp_password_are_root_only():
    config = APP.file("/etc/peerquest-ops/alerting.json")
    # Root owns it; only the alert account's group may read it.
    assert (config.user, config.group, config.mode) == ("root", "peerquest-monitor", 0o640)
    assert APP.check_output("getent group peerquest-monitor").split(":")[3] == ""
    assert APP.run("sudo -u peerquest cat /etc/peerquest-ops/alerting.json").rc != 0
    health = APP.file("/etc/peerquest-ops/health.json")
    assert (health.user, health.group, health.mode) == ("root", "peerquest", 0o640)


def test_critical_alert_arrives_by_email():
    tag = marker("mail")
    result = APP.run(f"/usr/local/bin/peerquest-alert --severity CRITICAL --message 'Data integrity issues {tag}'")
    assert result.rc == 0, result.stderr
    mail = wait_for(lambda: [m for m in captured_mail(SINK) if tag in m["body"]], what="the alert mail")[0]
    assert mail["subject"] == "[CRITICAL] PeerQuest Alert"
    assert mail["rcpt_tos"] == ["oncall@peerquest.test"]
    assert mail["auth_user"] == "alerts@peerquest.test"
    body = mail["body"].splitlines()
    assert body[0].startswith("Time: ")
    assert body[1:5] == [
        "Severity: CRITICAL",
        f"Message: Data integrity issues {tag}",
        "",
        f"Check logs at: {LOG_DIR}/",
    ]


def test_warning_goes_to_the_warning_recipients():
    tag = marker("warn")
    assert APP.run(f"echo 'approval failure rate 7% {tag}' | peerquest-alert --severity WARNING").rc == 0
    mail = wait_for(lambda: [m for m in captured_mail(SINK) if tag in m["body"]], what="the warning mail")[0]
    assert mail["subject"] == "[WARNING] PeerQuest Alert" and mail["rcpt_tos"] == ["team@peerquest.test"]


def test_smtp_down_fails_with_a_clear_message_and_keeps_the_alert():
    tag = marker("down")
    SINK.check_output("systemctl stop pq-sink.service")
    try:
        result = APP.run(f"peerquest-alert --no-spool --severity CRITICAL --message 'nobody listening {tag}'")
        assert result.rc == 1
        assert "CRITICAL alert not delivered: email via pq-" in result.stderr
        assert "refused" in result.stderr.lower() or "timed out" in result.stderr.lower()
        queued = APP.run(f"peerquest-alert --severity CRITICAL --message 'queued while down {tag}'")
        assert queued.rc == 75 and "queued for retry" in queued.stderr
    finally:
        SINK.check_output("systemctl start pq-sink.service")
        wait_for(lambda: SINK.socket("tcp://0.0.0.0:25").is_listening, what="SMTP back")
    make_spool_due(APP)
    assert APP.run("peerquest-alert --flush-spool").rc == 0
    assert [m for m in captured_mail(SINK) if f"queued while down {tag}" in m["body"]]
    assert not [m for m in captured_mail(SINK) if f"nobody listening {tag}" in m["body"]]


# 6. Behaviour change through inventory


def test_a_changed_logging_setting_reloads_the_app_and_takes_effect():
    """Users change LOGGING by variables: the module is re-rendered, checked, and the app reloaded."""
    root = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    inventory = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "inventory")
    overrides = {
        "peerquest_logging_handlers_overrides": {
            "quest_debug": {"level": "DEBUG", "filename": "quests-debug.log", "formatter": "verbose"}
        },
        "peerquest_logging_loggers_overrides": {"quests": {"handlers": ["file", "quest_debug"], "level": "DEBUG"}},
    }

    def deploy(extra):
        return subprocess.run(
            [
                "ansible-playbook",
                "-i",
                inventory,
                "--limit",
                APP_HOST,
                "--tags",
                "preflight,app,logdir,logging",
                "-e",
                json.dumps(extra),
                "playbooks/phase1.yml",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )

    tag = marker("dbg")
    try:
        result = deploy(overrides)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "RUNNING HANDLER [peerquest_app : Reload the PeerQuest app]" in result.stdout
        log_through_django(APP, "quests", "DEBUG", f"{tag} debug detail")
        wait_for(lambda: any(tag in x for x in file_lines(APP, f"{LOG_DIR}/quests-debug.log")), what="DEBUG line")
        debug_log = APP.file(f"{LOG_DIR}/quests-debug.log")
        assert (debug_log.user, debug_log.group, debug_log.mode) == ("peerquest", "peerquest-logs", 0o640)
    finally:
        assert deploy({}).returncode == 0
    log_through_django(APP, "quests", "DEBUG", f"{tag} after restore")
    time.sleep(1)
    assert not any(f"{tag} after restore" in x for x in file_lines(APP, f"{LOG_DIR}/quests-debug.log"))
