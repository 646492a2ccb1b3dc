"""Phase 2 on real hosts: scheduled monitors, routing, dedup, spool, follower, MTTD.

Every path, account, URL, route, threshold and secret comes from the deployed
variables (pqtest reads deployed-vars.json), so the same tests hold on a site
whose inventory changes every value.
"""

import json
import os
import re
import shlex
import statistics
import sys
import time
from datetime import datetime, timedelta

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    alert_cmd,
    alert_command,
    alert_state_dir,
    app_dir,
    app_hosts,
    app_is_up,
    app_json,
    app_service,
    app_user,
    captured_hooks,
    captured_mail,
    direct_delivery,
    files_receiving,
    hook_name,
    host,
    host_name,
    http,
    line_count,
    lines_after,
    lock_dir,
    log_dir,
    log_through_django,
    make_spool_due,
    manage,
    marker,
    monitor_cmd,
    monitor_command,
    monitor_user,
    monitoring_log,
    monitoring_log_dir,
    monitors_state_dir,
    ops_lib_dir,
    output,
    recipients,
    restart,
    routes,
    secrets,
    sink_url,
    spooled,
    subject,
    wait_for,
)

APP = host("app")
APP_NAME = host_name("app")
SINK = host("sink")
VARS = V("app")
MONITORING_LOG = monitoring_log()
MONITOR = monitor_cmd()
ALERT = alert_cmd()
AS_MONITOR = f"sudo -u {shlex.quote(monitor_user())}"
CRON_FILE = "/etc/cron.d/peerquest-monitoring"
APP_LOG = VARS["peerquest_monitors_app_log"]
WINDOW_MINUTES = int(VARS["peerquest_monitors_window_minutes"])
WEBHOOK_CHANNELS = ("slack", "discord", "webhook")
COLOURS = {"CRITICAL": 0xFF0000, "WARNING": 0xFF9900}
# A monitor job's own lines in monitoring.log: "<date> <time> peerquest-monitor <job>: <what it did>".
JOB_LINE = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d peerquest-monitor %s: "
SKIPPED = "skipped, the previous run still holds the lock"


def mails_with(tag):
    return [m for m in captured_mail(SINK) if tag in m["body"]]


def hooks_with(channel, tag):
    return [h for h in captured_hooks(channel, SINK) if tag in json.dumps(h["body"])]


def delivered(channel, tag):
    """What a channel received carrying tag: mails or webhook requests."""
    return mails_with(tag) if channel == "email" else hooks_with(channel, tag)


def reset_sink():
    assert http(SINK, "POST", f"{sink_url()}/_control/reset")[0] == 200


def auth():
    token = VARS["peerquest_monitors_health_token"]
    return {"Authorization": f"Bearer {token}"} if token else {}


def cron_jobs():
    """{job name: (five time fields, user, command)} from the installed schedule."""
    jobs = {}
    locks = f"{lock_dir()}/"
    for line in APP.file(CRON_FILE).content_string.splitlines():
        if line and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line) and locks in line:
            fields = line.split(None, 6)
            name = line.split(locks, 1)[1].split(".lock", 1)[0]
            jobs[name] = (fields[:5], fields[5], fields[6])
    return jobs


@pytest.fixture(scope="module", autouse=True)
def quiet_cron():
    """Scheduled runs would race the tests for new log lines and alerts: pause cron on every app host.

    Dedup state from an earlier verify of the same hosts would swallow the
    alerts these tests expect; start from none.
    """
    others = [host(name) for name in app_hosts()]
    for target in others:
        target.check_output("systemctl stop cron.service")
    APP.check_output(f"rm -f {shlex.quote(alert_state_dir())}/*.json")
    yield
    for target in others:
        target.check_output("systemctl start cron.service")


# ------------------------------------------------------------- the schedule


def expected_jobs():
    integrity_host = VARS["peerquest_monitors_integrity_host"] if VARS["peerquest_monitors_integrity_enabled"] else ""
    return {
        name: job
        for name, job in VARS["peerquest_monitors_jobs"].items()
        if job.get("state", "present") != "absent" and (not job.get("integrity") or integrity_host == APP_NAME)
    }


def schedule_problem(every, fields):
    """What is wrong with five cron fields for an interval of the plan (None: nothing)."""
    minute, hour, day, month, weekday = fields
    daily = str(VARS["peerquest_monitors_daily_hour"])
    weekly = str(VARS["peerquest_monitors_weekly_day"])
    one_minute = minute.isdigit() and int(minute) < 60
    expected = {
        "1m": fields == ["*"] * 5,
        "1h": one_minute and [hour, day, month, weekday] == ["*"] * 4,
        "1d": one_minute and [hour, day, month, weekday] == [daily, "*", "*", "*"],
        "1w": one_minute and [hour, day, month, weekday] == [daily, "*", "*", weekly],
        "1mo": one_minute and [hour, day, month, weekday] == [daily, "1", "*", "*"],
    }
    if every in ("5m", "15m"):
        step = int(every[:-1])
        match = re.fullmatch(rf"(\d+)-59/{step}", minute)
        ok = bool(match) and int(match.group(1)) < step and [hour, day, month, weekday] == ["*"] * 4
    else:
        ok = expected[every]
    return None if ok else f"{' '.join(fields)} does not run every {every}"


def test_schedule_has_every_row_of_the_plan_with_a_lock_each():
    cron = APP.file(CRON_FILE)
    assert (cron.user, cron.group, cron.mode) == ("root", "root", 0o644)
    jobs = cron_jobs()
    expected = expected_jobs()
    assert set(jobs) == set(expected)
    for name, (schedule, user, command) in jobs.items():
        assert user == monitor_user(), name
        assert command.startswith(f"/usr/bin/flock -n -E 98 {lock_dir()}/{name}.lock {expected[name]['command']} "), (
            name
        )
        assert f">> {VARS['peerquest_monitors_log_file']} 2>&1" in command, name
        assert schedule_problem(expected[name]["every"], schedule) is None, (name, schedule)


def test_monitoring_account_reads_logs_but_cannot_change_what_it_runs():
    for readable in (APP_LOG, VARS["peerquest_monitors_critical_log"], VARS["peerquest_alerting_config_path"]):
        assert APP.run(f"{AS_MONITOR} cat {shlex.quote(readable)} >/dev/null").rc == 0, readable
    programs = APP.check_output(f"find {shlex.quote(ops_lib_dir())} -type f").split()
    assert programs, f"nothing installed in {ops_lib_dir()}"
    for path in (
        monitor_command(),
        alert_command(),
        CRON_FILE,
        VARS["peerquest_monitors_config_path"],
        VARS["peerquest_alerting_config_path"],
        APP_LOG,
        *programs,
    ):
        assert APP.run(f"{AS_MONITOR} sh -c {shlex.quote('echo x >> ' + shlex.quote(path))}").rc != 0, path
    for directory in (ops_lib_dir(), os.path.dirname(monitor_command()), os.path.dirname(alert_command())):
        probe = shlex.quote(f"{directory}/pq-probe-{marker()}")
        assert APP.run(f"{AS_MONITOR} touch {probe}").rc != 0, directory
    # sudo grants starting the audit and nothing else: no shell as the app account or root.
    assert APP.run(f"{AS_MONITOR} sudo -n -u {shlex.quote(app_user())} /bin/true").rc != 0
    assert APP.run(f"{AS_MONITOR} sudo -n /bin/true").rc != 0


def job_lines(lines, job):
    """(completion lines, skip lines) of a monitor job among monitoring.log lines, as (index, line)."""
    start = re.compile(JOB_LINE % re.escape(job))
    done, skipped = [], []
    for index, line in enumerate(lines):
        if start.match(line):
            (skipped if line.rstrip().endswith(SKIPPED) else done).append((index, line))
    return done, skipped


def test_overlapping_runs_one_works_one_skips():
    jobs = cron_jobs()
    if "errors" not in jobs:
        pytest.skip("no errors job in this site's schedule")
    command = jobs["errors"][2].replace("\\%", "%")  # as cron hands it to /bin/sh
    lock = shlex.quote(f"{lock_dir()}/errors.lock")
    before = line_count(APP, MONITORING_LOG)
    # A run that holds the lock for 6 seconds, then the scheduled command while it still does.
    APP.check_output(f"{AS_MONITOR} flock {lock} sleep 6 >/dev/null 2>&1 &")
    time.sleep(1)
    started = time.monotonic()
    assert APP.run(f"{AS_MONITOR} sh -c {shlex.quote(command)}").rc == 0
    assert time.monotonic() - started < 5  # the second run gave up at once
    done, skipped = job_lines(lines_after(APP, MONITORING_LOG, before), "errors")
    assert len(skipped) == 1 and done == [], (skipped, done)  # skipped, and did no work
    time.sleep(6)
    # Once the lock is free the same command works: its own completion line, after the skip.
    assert APP.run(f"{AS_MONITOR} sh -c {shlex.quote(command)}").rc == 0
    done, skipped_again = job_lines(lines_after(APP, MONITORING_LOG, before), "errors")
    assert skipped_again == skipped, skipped_again
    assert len(done) == 1 and done[0][0] > skipped[0][0], done
    assert SKIPPED not in done[0][1]


# ---------------------------------------------------- error monitor, routing


def app_line(level, message):
    """Roughly the line the app writes for a record (the monitors match regexes against it)."""
    return f"{level} 2000-01-01 00:00:00,000 views 1 1 {message}"


def pick_patterns():
    """Two threshold patterns whose label is a message they match (and no other pattern does)."""
    patterns = [
        p
        for p in VARS["peerquest_monitors_error_patterns"]
        if p.get("state", "present") != "absent" and p["severity"] in COLOURS and not p.get("immediate")
    ]

    def only_own(p):
        line = app_line("ERROR", f"{p['label']} pq-x")
        return re.search(p["regex"], line) and not any(re.search(o["regex"], line) for o in patterns if o is not p)

    # WARNING ones first: the plan's threshold alerts; CRITICAL would do too.
    usable = [p for p in patterns if int(p["threshold"]) >= 1 and only_own(p)]
    usable.sort(key=lambda p: p["severity"] != "WARNING")
    if len(usable) < 2:
        pytest.skip("fewer than two error patterns with a threshold and a label that matches only them")
    return usable[0], usable[1]


@direct_delivery
def test_log_lines_trigger_exactly_the_expected_alerts():
    fire, quiet = pick_patterns()
    fire_count, quiet_count = int(fire["threshold"]) + 1, int(quiet["threshold"])
    lines = [app_line("ERROR", fire["label"])] * fire_count + [app_line("ERROR", quiet["label"])] * quiet_count
    for rate in VARS["peerquest_monitors_rates"]:
        events = sum(1 for x in lines if re.search(rate["failure"], x) or re.search(rate["success"], x))
        if events >= int(rate["min_events"]):
            pytest.skip(f"rate {rate['name']} would count {events} events (min_events {rate['min_events']})")
    assert os.path.basename(APP_LOG) in files_receiving("applications", "ERROR")
    # Start the error monitor's window empty, at the end of the log, with no
    # dedup memory: earlier tests (or an earlier verify of these hosts) logged
    # and alerted failures too.
    APP.check_output(f"rm -f {shlex.quote(alert_state_dir())}/*.json")
    state = (
        f"import json, os; st = os.stat({APP_LOG!r}); "
        "json.dump({'position': {'inode': st.st_ino, 'offset': st.st_size}, 'buckets': {}, 'baselines': {}, "
        f"'values': {{}}}}, open({monitors_state_dir() + '/errors.json'!r}, 'w'))"
    )
    APP.check_output(f"{AS_MONITOR} python3 -c {shlex.quote(state)}")
    reset_sink()
    tag = marker("thr")
    log_through_django(APP, "applications", "ERROR", f"{fire['label']} {tag}", count=fire_count)
    log_through_django(APP, "applications", "ERROR", f"{quiet['label']} {tag}", count=quiet_count)
    APP.check_output(f"{MONITOR} errors")
    severity = fire["severity"]
    channels = routes(severity)
    assert channels, f"{severity} is routed nowhere"
    text = f'{fire_count} x "{fire["label"]}" in the last {WINDOW_MINUTES} minutes (threshold {int(fire["threshold"])})'
    mails = captured_mail(SINK)
    if "email" in channels and recipients(severity):
        assert [m["subject"] for m in mails] == [subject(severity)]
        assert mails[0]["rcpt_tos"] == recipients(severity)
        assert text in mails[0]["body"]
    else:
        assert mails == []
    for channel in WEBHOOK_CHANNELS:
        hooks = captured_hooks(channel, SINK) if VARS[f"peerquest_alerting_{channel}_enabled"] else []
        assert len(hooks) == (1 if channel in channels else 0), channel  # nothing for channels not routed
    if "slack" in channels:
        attachment = captured_hooks("slack", SINK)[0]["body"]["attachments"][0]
        assert (
            attachment["color"] == f"#{COLOURS[severity]:06x}" and attachment["title"] == f"{severity}: PeerQuest Alert"
        )
        assert attachment["footer"] == "PeerQuest Monitoring" and isinstance(attachment["ts"], int)
        assert text in attachment["text"]
    # The same lines are never counted again, and the alert is not repeated within the window.
    before = line_count(APP, MONITORING_LOG)
    APP.check_output(f"{MONITOR} errors")
    log_through_django(APP, "applications", "ERROR", f"{fire['label']} {tag} again")
    APP.check_output(f"{MONITOR} errors")
    assert len(captured_mail(SINK)) == len(mails)
    assert sum(len(captured_hooks(c, SINK)) for c in channels if c != "email") == len(
        [c for c in channels if c != "email"]
    )
    if VARS["peerquest_alerting_dedup_window_minutes"]:
        assert any("suppressed duplicate" in x for x in lines_after(APP, MONITORING_LOG, before))


# ------------------------------------------------------ follower: CRITICAL


@direct_delivery
def test_critical_line_reaches_every_critical_channel_within_seconds():
    reset_sink()
    tag = marker("crit")
    log_through_django(APP, "quests", "CRITICAL", f"assignment store unreachable {tag}")
    channels = routes("CRITICAL")
    assert channels, "CRITICAL is routed nowhere"
    if "email" in channels:
        mail = wait_for(lambda: mails_with(tag), timeout=60, what="the CRITICAL mail")[0]
        assert mail["subject"] == subject("CRITICAL") and mail["rcpt_tos"] == recipients("CRITICAL")
    if "slack" in channels:
        slack = wait_for(lambda: hooks_with("slack", tag), timeout=60, what="Slack")[0]["body"]
        assert slack["attachments"][0]["color"] == f"#{COLOURS['CRITICAL']:06x}"
    if "discord" in channels:
        discord = wait_for(lambda: hooks_with("discord", tag), timeout=60, what="Discord")[0]["body"]
        embed = discord["embeds"][0]
        assert embed["color"] == COLOURS["CRITICAL"] and embed["title"] == "CRITICAL: PeerQuest Alert"
        datetime.fromisoformat(embed["timestamp"].replace("Z", "+00:00"))
        assert len(embed["description"]) <= 4096
    if "webhook" in channels:
        pager = wait_for(lambda: hooks_with("webhook", tag), timeout=60, what="the generic webhook")[0]
        token = VARS["peerquest_alerting_webhook_token"]
        assert pager["headers"].get("Authorization") == (f"Bearer {token}" if token else None)
        assert pager["body"]["severity"] == "CRITICAL" and pager["body"]["host"]


ALERT_EVENT = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d peerquest-alert (?P<level>[A-Z]+) (?P<event>.+?) "
    r"severity=(?P<severity>\S+) key=.* channel=(?P<channel>\S+)"
)


def alert_events(tag):
    """(event, channel) of every peerquest-alert event in monitoring.log about tag, in order."""
    events = []
    for line in output(APP, f"cat {shlex.quote(MONITORING_LOG)}").splitlines():
        match = ALERT_EVENT.match(line)
        if match and tag in line:
            events.append((match["event"], match["channel"]))
    return events


@direct_delivery
def test_a_failing_channel_gets_the_alert_once_later_and_survives_a_restart():
    channels = routes("CRITICAL")
    failing = next((c for c in ("webhook", "discord", "slack") if c in channels), None)
    if failing is None or len(channels) < 2:
        pytest.skip("CRITICAL needs a webhook channel and one more channel for this test")
    working = [c for c in channels if c != failing]
    reset_sink()
    tag = marker("spool")
    assert http(SINK, "POST", f"{sink_url()}/_control/fail?path={hook_name(failing)}&count=2&status=500")[0] == 200
    log_through_django(APP, "quests", "CRITICAL", f"ledger mismatch {tag}")
    for channel in working:
        wait_for(lambda channel=channel: delivered(channel, tag), timeout=60, what=f"{channel} (a working channel)")
    pending = wait_for(lambda: spooled(APP), what="the spooled delivery")
    assert len(pending) == 1 and delivered(failing, tag) == []
    # A host restart loses nothing: the spool is on disk.
    restart("app")
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
    assert len(delivered(failing, tag)) == 1  # delivered exactly once
    for channel in working:
        assert len(delivered(channel, tag)) == 1, channel  # working channels not repeated
    # The event log tells the story: sent on the working channels; queued,
    # failed once more on retry, then sent on the failing one; nothing else.
    events = alert_events(tag)
    assert [e for e in events if e[1] == failing] == [
        ("queued", failing),
        ("retry-failed", failing),
        ("retry-sent", failing),
    ], events
    assert sorted(e for e in events if e[1] != failing) == sorted(("sent", c) for c in working), events


# ------------------------------------------------------ integrity & health


@direct_delivery
def test_inconsistency_makes_the_integrity_monitor_alert_and_health_report_it():
    if not VARS["peerquest_monitors_integrity_enabled"]:
        pytest.skip("the integrity audit is off in this inventory")
    auditor = VARS["peerquest_monitors_integrity_host"]
    target = host(auditor)
    reset_sink()
    manage(auditor, "standin_break_sync")
    try:
        target.check_output(f"{monitor_cmd(auditor)} integrity")
        if "email" in routes("CRITICAL"):
            mail = wait_for(lambda: mails_with("Data integrity issues"), what="the integrity mail")[0]
            assert mail["subject"] == subject("CRITICAL") and "TOTAL ISSUES: 1" in mail["body"]
        status, body = app_json("GET", "/health/", h=auditor, headers=auth())
        assert status == 503 and body["checks"]["data_integrity"]["result"] == "ISSUES_DETECTED"
    finally:
        manage(auditor, "standin_fix_sync")
    target.check_output(f"{monitor_cmd(auditor)} integrity")
    status, body = app_json("GET", "/health/", h=auditor, headers=auth())
    assert status == 200 and body["checks"]["data_integrity"]["result"] == "OK"


def test_the_audit_runs_in_the_apps_environment():
    """The audit wrapper gets the app unit's environment: the audit logs through the deployed LOGGING."""
    if not VARS["peerquest_monitors_integrity_enabled"]:
        pytest.skip("the integrity audit is off in this inventory")
    auditor = VARS["peerquest_monitors_integrity_host"]
    audit_files = files_receiving("audit", "INFO", h=auditor)
    if not audit_files:
        pytest.skip("the deployed LOGGING writes the audit logger to no file")
    path = f"{log_dir(auditor)}/{audit_files[0]}"
    before = line_count(host(auditor), path)
    host(auditor).check_output(f"{monitor_cmd(auditor)} integrity")
    assert lines_after(host(auditor), path, before), f"the audit wrote nothing to {path}"


@direct_delivery
def test_service_down_is_critical():
    reset_sink()
    service = shlex.quote(app_service())
    APP.check_output(f"systemctl stop {service}")
    try:
        APP.check_output(f"{MONITOR} --quick health")
    finally:
        APP.check_output(f"systemctl start {service}")
    channel = routes("CRITICAL")[0]
    if channel == "email":
        mail = wait_for(lambda: mails_with("service unavailable"), what="mail")[0]
        assert mail["subject"] == subject("CRITICAL")
    else:
        wait_for(lambda: delivered(channel, "service unavailable"), what=channel)
    wait_for(app_is_up, timeout=60, what="the app back")


# --------------------------------------------------------------- secrets


def test_secrets_stay_out_of_processes_logs_and_readable_files():
    values = secrets()
    assert values, "no deployed secret to look for"
    processes = APP.check_output("ps -eo args")
    dirs = " ".join(shlex.quote(d) for d in sorted({log_dir(), monitoring_log_dir()}))
    assert MONITORING_LOG in APP.check_output(f"find {dirs} -type f").split()
    logs = output(APP, f"find {dirs} -type f -exec zcat -f {{}} +")
    for secret in values:
        assert secret not in processes and secret not in logs, f"a deployed secret ({len(secret)} chars) leaked"
    roots = {"/etc", "/var", "/usr/local", "/opt", "/srv", "/tmp", "/home", app_dir(), ops_lib_dir()}
    patterns = " ".join(f"-e {shlex.quote(s)}" for s in values)
    readable = APP.run(
        f"find {' '.join(shlex.quote(r) for r in sorted(roots))} -xdev -type f -perm -o=r -size -2M 2>/dev/null "
        f"| xargs -r grep -l -F {patterns} 2>/dev/null"
    ).stdout
    assert readable.strip() == ""


# ------------------------------------------------------------ cron and MTTD


def _field_matches(field, value):
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part == "*":
            low, high = 0, 99
        elif "-" in part:
            low, high = (int(x) for x in part.split("-"))
        else:
            low = high = int(part)
        if low <= value <= high and (value - low) % step == 0:
            return True
    return False


def next_run(fields, now, within_minutes):
    """The first minute after now that five cron fields select (None if not within the limit)."""
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for offset in range(within_minutes):
        when = start + timedelta(minutes=offset)
        values = (when.minute, when.hour, when.day, when.month, (when.weekday() + 1) % 7)
        if all(_field_matches(f, v) for f, v in zip(fields, values, strict=True)):
            return when
    return None


def last_runs():
    result = APP.run(f"cat {shlex.quote(monitors_state_dir())}/last_run.json")
    return json.loads(result.stdout) if result.rc == 0 and result.stdout.strip() else {}


def test_cron_runs_the_schedule():
    """cron starts a scheduled job and the job does its work: proof from the job itself."""
    now = datetime.strptime(APP.check_output("date '+%Y-%m-%d %H:%M:%S'"), "%Y-%m-%d %H:%M:%S")
    upcoming = []
    for name, (fields, _user, command) in cron_jobs().items():
        when = next_run(fields, now, within_minutes=10)
        if when:
            upcoming.append((when, name, command))
    if not upcoming:
        pytest.skip("no job of this site's schedule runs within the next 10 minutes")
    when, name, command = min(upcoming)
    flushes = "--flush-spool" in command

    def proof_count():
        lines = output(APP, f"cat {shlex.quote(MONITORING_LOG)}").splitlines()
        if flushes:  # the retry job reports what it flushed
            return sum(1 for x in lines if x.startswith("peerquest-alert: spool flushed:"))
        return len(job_lines(lines, name)[0])

    before_runs, before_count = last_runs().get(name), proof_count()
    wait_seconds = (when - now).total_seconds() + 60
    APP.check_output("systemctl start cron.service")
    try:

        def worked():
            if not flushes and last_runs().get(name) != before_runs and name in last_runs():
                return True
            return proof_count() > before_count

        wait_for(worked, timeout=wait_seconds, interval=2, what=f"cron to run {name} (due {when:%H:%M})")
    finally:
        APP.check_output("systemctl stop cron.service")


# Both scenarios: through the follower's own delivery here, through Alertmanager in custom_site.
@pytest.mark.default_scenario
def test_critical_detection_time():
    """MTTD from the log line to the message received (written to .cache/mttd-<scenario>.json).

    Every injected CRITICAL must arrive, half of them within 30 s and 95 % within 60 s.
    """
    channel = routes("CRITICAL")[0]
    reset_sink()
    injections = int(os.environ.get("PQ_MTTD_INJECTIONS", "20"))
    sent = {}
    for index in range(injections):
        tag = marker(f"mttd{index}")
        sent[tag] = time.time()
        log_through_django(APP, "quests", "CRITICAL", f"injected failure {tag}")
        time.sleep(0.5)
    deadline = time.time() + 120
    delays = {}
    while time.time() < deadline and len(delays) < injections:
        records = captured_mail(SINK) if channel == "email" else captured_hooks(channel, SINK)
        for record in records:
            text = record["body"] if channel == "email" else json.dumps(record["body"])
            for tag, at in sent.items():
                if tag in text and tag not in delays:
                    received = datetime.fromisoformat(record["received_at"].replace("Z", "+00:00")).timestamp()
                    delays[tag] = received - at
        time.sleep(1)
    values = sorted(delays.values())
    result = {
        "channel": channel,
        "injections": injections,
        "detected": len(values),
        "detection_rate": len(values) / injections,
        "p50_seconds": round(statistics.median(values), 2) if values else None,
        "p95_seconds": round(values[max(0, int(len(values) * 0.95 + 0.5) - 1)], 2) if values else None,
        "max_seconds": round(values[-1], 2) if values else None,
    }
    scenario = os.environ.get("MOLECULE_SCENARIO_NAME", "phase2")
    out = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".cache", f"mttd-{scenario}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"MTTD: {json.dumps(result)}")
    assert result["detection_rate"] == 1.0, result
    assert result["p50_seconds"] <= 30, result
    assert result["p95_seconds"] <= 60, result
