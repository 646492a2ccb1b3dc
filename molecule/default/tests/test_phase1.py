"""Phase 1 on real hosts: logs, rotation, health endpoints, email alerts.

Every path, account, URL, recipient and secret comes from the deployed
variables (pqtest reads deployed-vars.json), so the same tests hold on a site
whose inventory changes every value.
"""

import json
import math
import os
import re
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    alert_cmd,
    alert_user,
    app_curl,
    app_dir,
    app_group,
    app_json,
    app_service,
    app_user,
    captured_mail,
    direct_delivery,
    file_handler,
    file_lines,
    files_receiving,
    host,
    host_name,
    log_dir,
    log_files,
    log_group,
    log_path,
    log_through_django,
    logging_handlers,
    logging_loggers,
    make_spool_due,
    manage,
    marker,
    monitoring_log_dir,
    ops_python_dir,
    recipients,
    retention_days,
    routes,
    run_playbook,
    secrets,
    smtp_port,
    subject,
    wait_for,
)

APP = host("app")
SINK = host("sink")
APP_NAME = host_name("app")
VARS = V("app")
LOG_DIR = log_dir()
DIR_MODE = int(VARS["peerquest_logdir_dir_mode"], 8)
FILE_MODE = int(VARS["peerquest_logdir_file_mode"], 8)
OWNERSHIP = (app_user(), log_group(), FILE_MODE)
STATE_FILE = VARS["peerquest_health_integrity_state_file"]
TOKEN = VARS["peerquest_health_token"]
LOGGING_PACKAGE = f"{ops_python_dir()}/peerquest_logging"
LOGROTATE_RULES = VARS["peerquest_logrotate_config_path"]


def where(text):
    """Log files (current ones) holding a line with text."""
    return sorted(name for name in log_files() if any(text in line for line in file_lines(APP, log_path(name))))


def auth():
    return {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}


def files_for(logger, level):
    files = files_receiving(logger, level)
    assert files, f"the deployed LOGGING sends {level} from {logger!r} to no file"
    return files


# 1. Log directory and permissions


def test_log_directory_is_private_to_app_and_readers():
    directory = APP.file(LOG_DIR)
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == (app_user(), log_group(), DIR_MODE)


def test_log_files_are_private_and_nothing_is_open_to_others():
    for name in log_files():
        log = APP.file(log_path(name))
        assert (log.user, log.group, log.mode) == OWNERSHIP, name
    loose = APP.check_output(f"find {shlex.quote(LOG_DIR)} \\( -perm /o=rwx -o -perm /g=w \\) -print")
    assert loose == ""
    # Another account can't read; a member of the reader group can (next test).
    for name in log_files():
        assert APP.run(f"sudo -u nobody cat {shlex.quote(log_path(name))}").rc != 0, name


def test_reader_group_can_read_but_not_write():
    readers = VARS["peerquest_logdir_readers"]
    if not readers:
        pytest.skip("peerquest_logdir_readers is empty in this inventory: no reader account to test with")
    reader = shlex.quote(readers[0])
    assert log_group() in APP.check_output(f"id -nG {reader}").split()
    for name in log_files():
        target = shlex.quote(log_path(name))
        assert APP.run(f"sudo -u {reader} cat {target}").rc == 0, name
        assert APP.run(f"sudo -u {reader} sh -c 'echo x >> {target}'").rc != 0, name
    assert APP.run(f"sudo -u {reader} touch {shlex.quote(log_path('new-by-reader.log'))}").rc != 0
    assert not APP.file(log_path("new-by-reader.log")).exists


# 2. Django LOGGING settings


def test_django_writes_each_level_to_the_files_that_keep_it():
    tag = marker()
    records = [
        ("applications", "INFO", f"{tag} info"),
        ("applications", "ERROR", f"{tag} Application approval failed for quest 4"),
        ("quests", "CRITICAL", f"{tag} CRITICAL: assignment store unreachable"),
        ("audit", "INFO", f"{tag} audit trail"),
        ("audit", "CRITICAL", f"{tag} audit critical"),
    ]
    for logger, level, message in records:
        log_through_django(APP, logger, level, message)
    wait_for(lambda: where(f"{tag} audit critical"), what="the last line")
    for logger, level, message in records:
        assert where(message) == files_for(logger, level), (logger, level)
    # More severe records are kept at least where milder ones from the same logger are.
    assert set(files_for("applications", "INFO")) <= set(files_for("applications", "ERROR"))
    # Every CRITICAL record, from a logger that propagates or not, reaches the CRITICAL handler's file.
    critical = VARS.get("peerquest_logging_critical_handler")
    if critical:
        critical_file = logging_handlers()[critical]["filename"]
        assert critical_file in where(f"{tag} CRITICAL:") and critical_file in where(f"{tag} audit critical")


FIELD_PATTERNS = {
    # The deployed formatter adds the UTC offset of the app's time zone.
    "asctime": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}[+-]\d{4}",
    "levelname": r"[A-Z]+",
    "process": r"\d+",
    "thread": r"\d+",
    "lineno": r"\d+",
    "message": r".*",
}
NON_SPACE = r"\S+"


def format_regex(spec):
    """A regex matching a line written with a formatter spec ({ or % style)."""
    fmt, style = spec["format"], spec.get("style", "%")
    field = r"\{(\w+)(?:[:!][^}]*)?\}" if style == "{" else r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdfrx]"
    out, last = "", 0
    for match in re.finditer(field, fmt):
        name = match.group(1)
        pattern = FIELD_PATTERNS.get(name, NON_SPACE)
        out += re.escape(fmt[last : match.start()]) + f"(?P<{name}>{pattern})"
        last = match.end()
    return re.compile(out + re.escape(fmt[last:]))


def test_log_lines_use_their_formatters():
    tag = marker()
    formatters = VARS["peerquest_logging_formatters"]
    for logger, level in (("quests", "WARNING"), ("audit", "INFO")):
        log_through_django(APP, logger, level, f"{tag} {logger} format")
        for name in files_for(logger, level):
            formatter = file_handler(name).get("formatter")
            if formatter not in formatters or formatters[formatter].get("style", "%") not in ("{", "%"):
                continue
            line = wait_for(
                lambda name=name, logger=logger: [x for x in file_lines(APP, log_path(name)) if f"{tag} {logger}" in x],
                what=f"the line in {name}",
            )[0]
            match = format_regex(formatters[formatter]).fullmatch(line)
            assert match, f"{name}: {line!r} does not follow formatter {formatter!r}"
            fields = match.groupdict()
            assert fields.get("levelname", level) == level and fields.get("name", logger) == logger, line
            if "asctime" in fields:
                # Whatever the app's and the host's zones, the stamp names the right instant.
                stamped = datetime.strptime(fields["asctime"], "%Y-%m-%d %H:%M:%S,%f%z")
                assert abs(time.time() - stamped.timestamp()) < 300, line


def test_secrets_never_reach_the_log_files():
    tag = marker()
    keys = VARS["peerquest_logging_mask_keys"]
    logged = {key: f"v{index}-{tag}" for index, key in enumerate(keys)}
    message = f"{tag} login failed " + " ".join(f"{key}={value}" for key, value in logged.items())
    log_through_django(APP, "applications", "ERROR", message)
    error_file = files_for("applications", "ERROR")[0]
    [line] = wait_for(lambda: [x for x in file_lines(APP, log_path(error_file)) if tag in x], what="the masked line")
    for key in keys:
        assert f"{key}=********" in line, key
    # Nothing secret in any file of the log directories: neither what was logged
    # just now nor a deployed secret (vault values), rotated files included.
    needles = [*logged.values(), *secrets()]
    dirs = " ".join(shlex.quote(d) for d in sorted({LOG_DIR, monitoring_log_dir()}))

    def files_holding(words):
        patterns = " ".join(f"-e {shlex.quote(w)}" for w in words)
        found = APP.run(f"find {dirs} -type f -print0 | xargs -0 -r zgrep -a -l -F {patterns}")
        return found.stdout.split()

    # The search finds what is there (the tag itself) ...
    assert log_path(error_file) in files_holding([tag])
    # ... and no secret.
    assert files_holding(needles) == []


def app_processes():
    """The app unit's main PID and its gunicorn workers: a reload (HUP) replaces the workers."""
    main = APP.check_output(f"systemctl show -p MainPID --value {shlex.quote(app_service())}").strip()
    assert main not in ("", "0"), f"{app_service()} is not running"
    return main, sorted(APP.check_output(f"ps -o pid= --ppid {main}").split())


def deploy_phase1(extra, tags="app,logging"):
    """ansible-playbook playbooks/phase1.yml on the app host, as the scenario runs it, with -e extra.

    Only the roles a LOGGING change touches run (the checks always do): each run costs a minute.
    """
    return run_playbook("playbooks/phase1.yml", extra, tags=tags)


def test_the_deploy_refuses_a_broken_logging_and_keeps_the_working_module():
    """A handler class that does not import passes the preflight (it cannot import the app's
    Python); the role's validate step loads the rendered module with the app's interpreter and
    stops the run before the module is replaced or the app reloaded."""
    settings = f"{LOGGING_PACKAGE}/settings.py"
    name = next(n for n, spec in sorted(logging_handlers().items()) if spec.get("filename"))
    broken = "peerquest_logging.handlers.NoSuchHandler"
    overrides = {
        "peerquest_logging_handlers_overrides": {
            **(VARS.get("peerquest_logging_handlers_overrides") or {}),
            name: {**(VARS.get("peerquest_logging_handlers_overrides") or {}).get(name, {}), "class": broken},
        },
    }
    before = APP.file(settings).sha256sum
    processes = app_processes()
    result = deploy_phase1(overrides)
    try:
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        # Past the preflight (every check passed), stopped at the validation, naming what is wrong.
        assert "Remember that this run's checks passed" in out, out
        tasks = re.findall(r"^TASK \[([^\]]+)\]", result.stdout, re.M)
        assert tasks[-1] == "peerquest_logging : Render the LOGGING settings module", out
        fatal = [line for line in out.splitlines() if line.startswith(f"fatal: [{APP_NAME}]")]
        assert len(fatal) == 1, out
        # The result may wrap over several lines: read it from the fatal line on, whitespace folded.
        said = " ".join(out[out.index(fatal[0]) :].split())
        assert "failed to validate" in said and "invalid LOGGING settings" in said, said
        assert f"handler {name!r}" in said and f"Cannot resolve {broken!r}" in said, said
        assert "RUNNING HANDLER" not in result.stdout, result.stdout
        # The host keeps what worked: the same module, the same processes, logging as before.
        assert APP.file(settings).sha256sum == before
        assert app_processes() == processes
        tag = marker("keep")
        log_through_django(APP, "applications", "ERROR", f"{tag} still logging")
        wait_for(lambda: where(tag), what="the line in the deployed files")
        assert where(tag) == files_for("applications", "ERROR")
    finally:
        if APP.file(settings).sha256sum != before:
            restored = deploy_phase1({})
            assert restored.returncode == 0, restored.stdout + restored.stderr


@pytest.mark.parametrize(
    ("role", "task", "what_to_do"),
    [
        ("peerquest_logging", "Refuse while the app still logs through peerquest_logging", "import LOGGING"),
        ("peerquest_health", "Refuse while the app still serves the health endpoints", "INSTALLED_APPS"),
    ],
)
def test_removal_is_refused_while_the_app_uses_the_package(role, task, what_to_do):
    """state absent of a package the running app imports stops before anything changes, saying
    what to drop from the app first (molecule/default/absent tests the removal itself)."""
    settings = f"{LOGGING_PACKAGE}/settings.py"
    before = APP.file(settings).sha256sum
    processes = app_processes()
    result = deploy_phase1({f"{role}_state": "absent"}, tags=role.removeprefix("peerquest_"))
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    tasks = re.findall(r"^TASK \[([^\]]+)\]", result.stdout, re.M)
    assert tasks[-1] == f"{role} : {task}", out
    assert f"{role}_state: absent refused" in out and what_to_do in out, out
    assert APP.file(settings).sha256sum == before
    assert APP.file(f"{ops_python_dir()}/peerquest_health/urls.py").exists
    assert app_processes() == processes
    assert app_json("GET", "/health/quick/")[0] == 200


def test_settings_module_is_root_owned_and_app_only_reads_it():
    settings = APP.file(f"{LOGGING_PACKAGE}/settings.py")
    assert (settings.user, settings.mode) == ("root", 0o644)
    assert "Ansible" in settings.content_string.splitlines()[1] or "managed" in settings.content_string.lower()
    append = f"sh -c 'echo x >> {shlex.quote(LOGGING_PACKAGE)}/settings.py'"
    assert APP.run(f"sudo -u {shlex.quote(app_user())} {append}").rc != 0


# 3. Log rotation


def rotation_blocks():
    rules = APP.file(LOGROTATE_RULES).content_string
    return {line.split()[0]: block for block in rules.split("}") for line in block.splitlines() if line.startswith("/")}


def test_rotation_rules_pass_logrotate_and_follow_the_policy():
    assert APP.run(f"logrotate -d {shlex.quote(LOGROTATE_RULES)}").rc == 0
    blocks = rotation_blocks()
    frequency = VARS["peerquest_logrotate_frequency"]
    for name in log_files():
        block = blocks[log_path(name)]
        directives = [line.strip() for line in block.splitlines()]
        days = retention_days(name)
        if days == "forever":
            assert "rotate -1" in directives and not any(d.startswith("maxage") for d in directives), name
        else:
            assert f"maxage {days}" in directives, f"{name}: kept {days} days"
            if frequency == "daily":
                assert f"rotate {days}" in directives, name
        for directive in (
            frequency,
            "compress",
            "delaycompress",
            "missingok",
            "notifempty",
            "dateext",
            f"su {app_user()} {log_group()}",
            f"create {VARS['peerquest_logdir_file_mode']} {app_user()} {log_group()}",
        ):
            assert directive in directives, f"{name}: {directive}"


def test_forced_rotation_while_the_app_keeps_logging():
    tag = marker("rot")
    total = 120
    name = files_for("applications", "INFO")[0]
    # Writer in the background, inside the app host: numbered lines through gunicorn.
    writer = (
        f"for i in $(seq 1 {total}); do curl -s -o /dev/null -X POST "
        f"--data-urlencode logger=applications --data-urlencode level=INFO "
        f"--data-urlencode message={tag}-$i {app_curl('/standin/log/')}; sleep 0.02; done; touch /tmp/{tag}.done"
    )
    APP.check_output(f"nohup sh -c {shlex.quote(writer)} >/dev/null 2>&1 &")
    wait_for(lambda: any(f"{tag}-10" in x for x in file_lines(APP, log_path(name))), what="the first lines")
    rotated = APP.run(f"logrotate -f {shlex.quote(LOGROTATE_RULES)}")
    assert rotated.rc == 0, rotated.stderr
    wait_for(lambda: APP.file(f"/tmp/{tag}.done").exists, timeout=120, what="the writer to finish")

    current = [x for x in file_lines(APP, log_path(name)) if tag in x]
    old_files = APP.check_output(f"ls {shlex.quote(LOG_DIR)} | grep -F {shlex.quote(name + '-')} || true").split()
    old = []
    for old_name in old_files:
        reader = "zcat" if old_name.endswith(".gz") else "cat"
        old += [x for x in APP.check_output(f"{reader} {shlex.quote(log_path(old_name))}").splitlines() if tag in x]
    numbers = sorted(int(x.rsplit("-", 1)[1]) for x in current + old)
    # Every line exactly once: none lost, none written into the rotated file twice.
    assert numbers == list(range(1, total + 1))
    # Lines after the rotation landed in the new file, earlier ones stayed in the old.
    assert current and old
    assert max(int(x.rsplit("-", 1)[1]) for x in current) == total
    new = APP.file(log_path(name))
    assert (new.user, new.group, new.mode) == OWNERSHIP


def _fake_rotated(name, days_ago):
    when = datetime.now(UTC) - timedelta(days=days_ago)
    path = log_path(f"{name}{when.astimezone().strftime(VARS['peerquest_logrotate_dateformat'])}.gz")
    stamp = when.strftime("%Y%m%d%H%M")
    owner = f"{app_user()}:{log_group()}"
    return f"echo old | gzip > {path} && touch -t {stamp} {path} && chown {owner} {path}"


def _ages(days):
    """(kept, dropped) ages in days for a file kept `days` days."""
    if days == "forever":
        return [400, 900, 2000], []
    return sorted({max(2, days // 6), max(3, 2 * days // 3), days - 1}), [days + 15, 2 * days + 10]


def test_retention_keeps_each_file_as_the_policy_says():
    frequency = VARS["peerquest_logrotate_frequency"]
    per_day = {"hourly": 24.0, "daily": 1.0, "weekly": 1 / 7, "monthly": 1 / 30}[frequency]
    # One file per retention, each receiving the record that keeps it non-empty.
    chosen = {}
    for name in files_for("quests", "CRITICAL"):
        days = retention_days(name)
        if days != "forever" and (days < 5 or math.ceil(days * per_day) < 5):
            continue  # too short to tell kept from dropped by age alone
        chosen.setdefault(days, name)
    assert chosen, "no log file with a retention this test can check"
    ages = {name: _ages(days) for days, name in chosen.items()}
    APP.check_output(" && ".join(_fake_rotated(n, d) for n, (kept, dropped) in ages.items() for d in kept + dropped))
    log_through_django(APP, "quests", "CRITICAL", f"{marker()} keep every file non-empty")
    assert APP.run(f"logrotate -f {shlex.quote(LOGROTATE_RULES)}").rc == 0

    def kept(name):
        listing = APP.check_output(
            f"find {shlex.quote(LOG_DIR)} -name {shlex.quote(name + '-*')} -mtime +1 -printf '%TY-%Tm-%Td\\n'"
        )
        return [
            round((datetime.now() - datetime.strptime(s, "%Y-%m-%d")).total_seconds() / 86400) for s in listing.split()
        ]

    for days, name in chosen.items():
        found = kept(name)
        expected = len(ages[name][0])
        assert len(found) == expected, f"{name} (kept {days} days): {sorted(found)}"
        if days != "forever":
            assert all(d <= days + 1 for d in found), f"{name} (kept {days} days): {sorted(found)}"


# 4. Health check endpoints


def test_quick_health_answers_for_load_balancers():
    assert app_json("GET", "/health/quick/") == (200, {"status": "OK"})


def test_full_health_requires_the_token():
    if not TOKEN:
        pytest.skip("peerquest_health_token is empty in this inventory: /health/ is open")
    status, body = app_json("GET", "/health/")
    assert status == 401 and body["status"] == "unauthorized"
    status, _ = app_json("GET", "/health/", headers={"Authorization": f"Bearer wrong-{TOKEN}"})
    assert status == 401


def test_full_health_reports_every_check():
    APP.run(f"rm -f {shlex.quote(STATE_FILE)}")
    status, body = app_json("GET", "/health/", headers=auth())
    assert status == 200, body
    assert body["status"] == "healthy"
    checks = body["checks"]
    assert checks["database"] == "OK"
    assert checks["log_dir"] == "OK"
    assert checks["disk"]["result"] == "OK" and checks["disk"]["free_mb"] > 0
    assert checks["data_integrity"] == "NO_DATA"
    assert set(checks["models"]) == set(VARS["peerquest_health_models"])
    assert all(isinstance(n, int) and n > 0 for n in checks["models"].values())
    datetime.fromisoformat(body["timestamp"])


@pytest.fixture
def integrity_state():
    def write(**state):
        APP.check_output(
            f"mkdir -p $(dirname {shlex.quote(STATE_FILE)}) && "
            f"echo {shlex.quote(json.dumps(state))} > {shlex.quote(STATE_FILE)}"
        )

    yield write
    APP.run(f"rm -f {shlex.quote(STATE_FILE)}")


def test_health_reads_the_recorded_integrity_result(integrity_state):
    max_age = int(VARS["peerquest_health_integrity_max_age_hours"])
    now = datetime.now(UTC).isoformat()
    integrity_state(checked_at=now, total_issues=0, status="ok")
    status, body = app_json("GET", "/health/", headers=auth())
    assert status == 200 and body["checks"]["data_integrity"]["result"] == "OK"

    integrity_state(checked_at=now, total_issues=3, status="issues")
    status, body = app_json("GET", "/health/", headers=auth())
    assert status == 503 and body["status"] == "degraded"
    assert body["checks"]["data_integrity"] == {"checked_at": now, "total_issues": 3, "result": "ISSUES_DETECTED"}

    old = (datetime.now(UTC) - timedelta(hours=max_age + 2)).isoformat()
    integrity_state(checked_at=old, total_issues=0, status="ok")
    status, body = app_json("GET", "/health/", headers=auth())
    assert status == 503 and body["checks"]["data_integrity"]["result"] == "STALE"


def test_health_does_not_run_the_audit_per_request():
    views = APP.file(f"{ops_python_dir()}/peerquest_health/views.py").content_string
    assert "subprocess" not in views and "call_command" not in views
    # Without a recorded result /health/ says so instead of running the audit.
    APP.run(f"rm -f {shlex.quote(STATE_FILE)}")
    assert app_json("GET", "/health/", headers=auth())[1]["checks"]["data_integrity"] == "NO_DATA"


def database_file():
    """The app's SQLite file, as its own settings name it (read in the app's environment)."""
    code = "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"
    path = manage(APP, "shell", "-c", code).stdout.strip().splitlines()[-1]
    if not path.startswith("/"):
        path = f"{app_dir()}/{path}"
    assert APP.file(path).is_file, f"the app's database {path} is not a file (not SQLite?)"
    return path


def test_broken_database_gives_503():
    database = shlex.quote(database_file())
    mode = APP.check_output(f"stat -c %a {database}")
    APP.check_output(f"chmod 000 {database}")
    try:
        assert app_json("GET", "/health/quick/") == (503, {"status": "ERROR"})
        status, body = app_json("GET", "/health/", headers=auth())
        assert status == 503 and body["status"] == "unhealthy"
        assert body["checks"]["database"].startswith("ERROR")
    finally:
        APP.check_output(f"chmod {mode} {database}")
    assert app_json("GET", "/health/quick/")[0] == 200


# 5. Email alerting


def test_settings_with_smtp_password_are_root_only():
    config = APP.file(VARS["peerquest_alerting_config_path"])
    account_group = APP.check_output(f"id -gn {shlex.quote(alert_user())}")
    # Root owns it; only the alert account's own group may read it, and nobody else is in that group.
    assert (config.user, config.group, config.mode) == ("root", account_group, 0o640)
    assert APP.check_output(f"getent group {shlex.quote(account_group)}").split(":")[3] == ""
    assert APP.run(f"sudo -u {shlex.quote(app_user())} cat {shlex.quote(config.path)}").rc != 0
    health = APP.file(VARS["peerquest_health_config_path"])
    assert (health.user, health.group, health.mode) == ("root", app_group(), 0o640)


def email_routed(severity):
    if "email" not in routes(severity) or not recipients(severity):
        pytest.skip(f"{severity} alerts are not routed to email in this inventory")


def mails_with(tag):
    return [m for m in captured_mail(SINK) if tag in m["body"]]


@direct_delivery
def test_critical_alert_arrives_by_email():
    email_routed("CRITICAL")
    tag = marker("mail")
    result = APP.run(f"{alert_cmd()} --severity CRITICAL --message 'Data integrity issues {tag}'")
    assert result.rc == 0, result.stderr
    mail = wait_for(lambda: mails_with(tag), what="the alert mail")[0]
    assert mail["subject"] == subject("CRITICAL")
    assert mail["rcpt_tos"] == recipients("CRITICAL")
    assert mail["mail_from"] == VARS["peerquest_alerting_email_from"]
    assert (mail["auth_user"] or "") == VARS["peerquest_alerting_smtp_user"]
    body = mail["body"].splitlines()
    assert body[0].startswith("Time: ")
    assert body[1:5] == [
        "Severity: CRITICAL",
        f"Message: Data integrity issues {tag}",
        "",
        f"Check logs at: {LOG_DIR}/",
    ]


def test_warning_goes_to_the_warning_recipients():
    email_routed("WARNING")
    tag = marker("warn")
    assert APP.run(f"echo 'approval failure rate 7% {tag}' | {alert_cmd()} --severity WARNING").rc == 0
    mail = wait_for(lambda: mails_with(tag), what="the warning mail")[0]
    assert mail["subject"] == subject("WARNING") and mail["rcpt_tos"] == recipients("WARNING")


@direct_delivery
def test_smtp_down_fails_with_a_clear_message_and_keeps_the_alert():
    email_routed("CRITICAL")
    tag = marker("down")
    relay = f"{VARS['peerquest_alerting_smtp_host']}:{smtp_port()}"
    SINK.check_output("systemctl stop pq-sink.service")
    try:
        result = APP.run(f"{alert_cmd()} --no-spool --severity CRITICAL --message 'nobody listening {tag}'")
        assert result.rc == 1
        assert f"CRITICAL alert not delivered: email via {relay}" in result.stderr
        assert "refused" in result.stderr.lower() or "timed out" in result.stderr.lower()
        queued = APP.run(f"{alert_cmd()} --severity CRITICAL --message 'queued while down {tag}'")
        assert queued.rc == 75 and "queued for retry" in queued.stderr
    finally:
        SINK.check_output("systemctl start pq-sink.service")
        wait_for(lambda: SINK.socket(f"tcp://0.0.0.0:{smtp_port()}").is_listening, what="SMTP back")
    make_spool_due(APP)
    assert APP.run(f"{alert_cmd()} --flush-spool").rc == 0
    assert mails_with(f"queued while down {tag}")
    assert not mails_with(f"nobody listening {tag}")


# 6. Behaviour change through inventory


def test_a_changed_logging_setting_reloads_the_app_and_takes_effect():
    """Users change LOGGING by variables: the module is re-rendered, checked, and the app reloaded."""
    # Added to the inventory's own overrides (extra vars replace a variable whole).
    handlers = logging_handlers()
    formatter = next(spec["formatter"] for spec in handlers.values() if spec.get("filename") and spec.get("formatter"))
    quests = (logging_loggers().get("quests") or {}).get("handlers", [])
    overrides = {
        "peerquest_logging_handlers_overrides": {
            **(VARS.get("peerquest_logging_handlers_overrides") or {}),
            "quest_debug": {"level": "DEBUG", "filename": "quests-debug.log", "formatter": formatter},
        },
        "peerquest_logging_loggers_overrides": {
            **(VARS.get("peerquest_logging_loggers_overrides") or {}),
            "quests": {"handlers": [*quests, "quest_debug"], "level": "DEBUG"},
        },
    }
    tag = marker("dbg")
    debug_log = log_path("quests-debug.log")
    try:
        result = deploy_phase1(overrides)
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r"RUNNING HANDLER \[peerquest_app : [^\]]*[Rr]eload", result.stdout), result.stdout
        log_through_django(APP, "quests", "DEBUG", f"{tag} debug detail")
        wait_for(lambda: any(tag in x for x in file_lines(APP, debug_log)), what="DEBUG line")
        debug = APP.file(debug_log)
        assert (debug.user, debug.group, debug.mode) == OWNERSHIP
    finally:
        assert deploy_phase1({}).returncode == 0
    log_through_django(APP, "quests", "DEBUG", f"{tag} after restore")
    time.sleep(1)
    assert not any(f"{tag} after restore" in x for x in file_lines(APP, debug_log))
