"""Phase 3 on hosts: Prometheus scrapes every app host, rules fire and resolve, Alertmanager routes,
the off-host probe sees a dead app, the dashboards' queries return data, a browser draws the console
page, the runbook says what the inventory says, the trend report is mailed.

Every port, path and account comes from deployed-vars.json; custom_site runs this file with two app
hosts and values that all differ from the defaults.
"""

import json
import os
import shlex
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    GROUPS,
    PROJECT_DIR,
    SCENARIO,
    V,
    alert_cmd,
    app_hosts,
    app_http,
    app_service,
    captured_hooks,
    captured_mail,
    delivered,
    host,
    http,
    http_json,
    log_through_django,
    make_spool_due,
    manage,
    marker,
    routes,
    run_job,
    spooled,
    wait_for,
)

if not GROUPS.get("peerquest_monitoring"):
    pytest.skip("no monitoring host in this scenario: custom_site runs phase 3", allow_module_level=True)

MON = host("mon")
MV = V("mon")
APPS = app_hosts()
ARTIFACTS = os.path.join(PROJECT_DIR, ".cache", "artifacts")
AV = V("app")
VIA_ALERTMANAGER = bool(AV["peerquest_alerting_via_alertmanager"] and AV["peerquest_alerting_alertmanager_urls"])


def prom_url():
    return f"http://127.0.0.1:{MV['peerquest_prometheus_port']}"


def am_url():
    return f"http://127.0.0.1:{MV['peerquest_alertmanager_port']}"


def query(expr):
    """Prometheus' answer to an instant query: the result list (raises on an error)."""
    status, body = http_json(MON, "POST", f"{prom_url()}/api/v1/query", data={"query": expr})
    assert status == 200 and body["status"] == "success", (expr, status, body)
    return body["data"]["result"]


def value(expr):
    result = query(expr)
    return float(result[0]["value"][1]) if result else None


def rules():
    status, body = http_json(MON, "GET", f"{prom_url()}/api/v1/rules")
    assert status == 200
    return [rule for group in body["data"]["groups"] for rule in group["rules"]]


def alerting_rule(name):
    [rule] = [r for r in rules() if r["type"] == "alerting" and r["name"] == name]
    return rule


def firing(name, instance=None):
    """Prometheus' firing alerts of a rule (on one instance)."""
    selector = f'alertname="{name}",alertstate="firing"' + (f',instance="{instance}"' if instance else "")
    return query(f"ALERTS{{{selector}}}")


def am_alerts(name):
    status, body = http_json(MON, "GET", f"{am_url()}/api/v2/alerts?filter=alertname%3D%22{name}%22")
    assert status == 200
    return body


def hooks_about(alertname, instance=None):
    """Alertmanager's webhook notifications (the generic webhook channel) naming an alert."""
    found = []
    for request in captured_hooks("webhook"):
        body = request.get("body")
        for alert in body.get("alerts", []) if isinstance(body, dict) else []:
            labels = alert.get("labels", {})
            if labels.get("alertname") == alertname and (instance is None or labels.get("instance") == instance):
                found.append((request["body"].get("status"), alert))
    return found


def _seconds(duration):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for unit in ("ms", "s", "m", "h", "d"):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(duration)


# ------------------------------------------------------------------ scraping


def test_every_target_is_up():
    expected = {(job, name) for name in APPS for job in ("node", "mtail", "peerquest_business")}

    def all_up():
        up = {(r["metric"]["job"], r["metric"]["instance"]): r["value"][1] for r in query("up")}
        missing = expected - set(up)
        down = sorted(k for k, v in up.items() if v != "1")
        return (not missing and not down) and up

    up = wait_for(all_up, timeout=90, interval=2, what=f"every target up: {sorted(expected)}")
    assert {"prometheus", "alertmanager", "blackbox"} <= {job for job, _ in up}
    # The off-host probes of each app host, quick and full (with the token).
    for job in ("blackbox_quick", "blackbox_health"):
        results = {r["metric"]["instance"]: r["value"][1] for r in query(f'probe_success{{job="{job}"}}')}
        assert results == dict.fromkeys(APPS, "1"), (job, results)


def test_the_app_hosts_metrics_carry_the_monitors_the_requests_and_the_business():
    app = APPS[0]
    ok_requests = f'sum(peerquest_http_requests_total{{instance="{app}",status_class="2xx"}})'
    before = value(ok_requests) or 0
    for _ in range(5):
        assert app_http("GET", "/health/quick/", h=app)[0] == 200
    assert run_job("errors", h=app).rc in (0, 1)
    wait_for(
        lambda: (value(ok_requests) or 0) >= before + 5,
        timeout=90,
        interval=2,
        what="mtail's request count to grow by the 5 requests",
    )
    assert query(f'peerquest_http_request_duration_seconds_count{{instance="{app}"}}')
    wait_for(
        lambda: query(f'peerquest_monitor_last_run_timestamp_seconds{{instance="{app}",monitor="errors"}}'),
        timeout=60,
        what="the errors job's figures through the textfile collector",
    )
    assert value(f'time() - peerquest_follower_heartbeat_timestamp_seconds{{instance="{app}"}}') < 120
    assert value(f'node_systemd_unit_state{{instance="{app}",name="cron.service",state="active"}}') == 1
    assert value(f'peerquest_database_up{{instance="{app}"}}') == 1
    assert query(f'peerquest_quests{{instance="{app}"}}')


# ------------------------------------------------------------------ rules


def test_an_integrity_rule_fires_on_a_broken_sync_and_resolves_once_fixed():
    audit_host = V("app")["peerquest_monitors_integrity_host"] or APPS[0]
    name = "PeerQuestIntegrityIssues"
    alerting_rule(name)  # the rule is loaded
    manage(audit_host, "standin_break_sync")
    try:
        run_job("integrity", h=audit_host)
        wait_for(lambda: firing(name, audit_host), timeout=120, interval=2, what=f"{name} firing on {audit_host}")
        wait_for(lambda: hooks_about(name, audit_host), timeout=60, interval=2, what=f"{name} at the webhook")
    finally:
        manage(audit_host, "standin_fix_sync")
        run_job("integrity", h=audit_host)
    wait_for(lambda: not firing(name, audit_host), timeout=120, interval=2, what=f"{name} to resolve")


def test_stopping_the_app_fires_the_off_host_availability_alert():
    target = APPS[-1]
    name = "PeerQuestServiceDown"
    service = app_service(target)
    host(target).check_output(f"systemctl stop {shlex.quote(service)}")
    started = time.monotonic()
    try:
        wait_for(lambda: firing(name, target), timeout=150, interval=2, what=f"{name} for {target}")
        detected = time.monotonic() - started
        wait_for(lambda: hooks_about(name, target), timeout=60, interval=2, what=f"{name} at the webhook")
    finally:
        host(target).check_output(f"systemctl start {shlex.quote(service)}")
    wait_for(lambda: not firing(name, target), timeout=150, interval=2, what=f"{name} to resolve")
    _record("service_down_detection_seconds", round(detected, 1))


# ------------------------------------------------------------------ Alertmanager


def _record(key, figure):
    os.makedirs(os.path.join(PROJECT_DIR, ".cache"), exist_ok=True)
    path = os.path.join(PROJECT_DIR, ".cache", f"phase3-{SCENARIO}.json")
    figures = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            figures = json.load(handle)
    figures[key] = figure
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(figures, handle, indent=2)


@pytest.mark.skipif(not VIA_ALERTMANAGER, reason="peerquest-alert delivers to the channels itself here")
def test_a_critical_line_reaches_every_receiver_once_through_alertmanager():
    channels = routes("CRITICAL")
    latencies = []
    tags = []
    for _ in range(3):
        tag = marker("am")
        tags.append(tag)
        started = time.monotonic()
        log_through_django(APPS[0], "quests", "CRITICAL", f"ledger mismatch {tag}")
        for channel in channels:
            wait_for(lambda c=channel, t=tag: delivered(c, t), timeout=90, interval=0.5, what=f"{channel} {tag}")
        latencies.append(time.monotonic() - started)
    # Later group intervals and re-posts bring nothing new: one incident, one message per channel.
    time.sleep(_seconds(MV["peerquest_alertmanager_group_interval"]) + 5)
    for tag in tags:
        for channel in channels:
            got = delivered(channel, tag)
            firing_only = [g for g in got if "resolved" not in json.dumps(g).lower()[:200]]
            assert len(firing_only) == 1, (channel, tag, got)
        assert am_alerts("PeerQuestLogAlert")
    latencies.sort()
    samples = [round(x, 2) for x in latencies]
    _record("critical_via_alertmanager_seconds", {"samples": samples, "max": samples[-1]})


@pytest.mark.skipif(not VIA_ALERTMANAGER, reason="peerquest-alert delivers to the channels itself here")
def test_stopping_alertmanager_loses_no_alert():
    unit = "prometheus-alertmanager.service"
    tag = marker("amdown")
    MON.check_output(f"systemctl stop {unit}")
    try:
        app = host(APPS[0])
        result = app.run(f"{alert_cmd(APPS[0])} --severity CRITICAL --message {shlex.quote('while down ' + tag)}")
        assert result.rc == 75, result.stderr
        spool = V(APPS[0])["peerquest_alerting_spool_dir"]
        assert any(tag in app.check_output(f"cat {shlex.quote(spool)}/{n}") for n in spooled(APPS[0]))
    finally:
        MON.check_output(f"systemctl start {unit}")
    ready = f"curl -s -o /dev/null -w '%{{http_code}}' {am_url()}/-/ready"
    wait_for(lambda: MON.run(ready).stdout == "200", timeout=60, what="Alertmanager ready")
    make_spool_due(APPS[0])
    assert host(APPS[0]).run(f"{alert_cmd(APPS[0])} --flush-spool").rc == 0
    for channel in routes("CRITICAL"):
        wait_for(lambda channel=channel: delivered(channel, tag), timeout=60, what=f"{channel} after the restart")
    time.sleep(_seconds(MV["peerquest_alertmanager_group_interval"]) + 2)
    for channel in routes("CRITICAL"):
        assert len([g for g in delivered(channel, tag) if "resolved" not in json.dumps(g).lower()[:200]]) == 1


def test_the_watchdog_reaches_the_dead_mans_webhook():
    wait_for(lambda: hooks_about("Watchdog"), timeout=120, interval=2, what="the Watchdog at the generic webhook")
    # Only the dead-man's endpoint: never e-mailed.
    assert not [m for m in captured_mail() if "Watchdog" in m.get("subject", "")]


# ------------------------------------------------------------------ dashboards


def test_every_dashboard_query_returns_data():
    app = APPS[0]
    for line in ("Application approved", "Application approval failed", "Quest assigned", "Quest assignment failed"):
        log_through_django(app, "applications", "INFO" if "failed" not in line else "ERROR", f"{line} {marker('dq')}")
    for _ in range(5):
        app_http("GET", "/health/quick/", h=app)
    run_job("errors", h=app)
    queries = json.loads(MON.check_output(f"cat {shlex.quote(MV['peerquest_dashboards_queries_file'])}"))
    assert queries, "the queries file lists no query"
    empty = []

    def all_answer():
        empty[:] = [(q["dashboard"], q["panel"], q["expr"]) for q in queries if not query(q["expr"])]
        return not empty

    try:
        wait_for(all_answer, timeout=180, interval=5, what="every dashboard query to return data")
    except AssertionError:
        raise AssertionError(f"queries without data: {empty}") from None


def test_a_browser_draws_the_console_dashboard():
    page = f"{prom_url()}/consoles/peerquest.html"
    status, html = http(MON, "GET", page)
    assert status == 200 and html.count('class="pq-panel"') >= 12, html[:500]
    assert "error executing template" not in html.lower()
    shot = "/tmp/peerquest-dashboard.png"
    MON.check_output(
        "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,5200 "
        f"--virtual-time-budget=15000 --screenshot={shot} {shlex.quote(page)} >/dev/null 2>&1"
    )
    data = MON.file(shot).content
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000, len(data)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, f"console-dashboard-{SCENARIO}.png"), "wb") as handle:
        handle.write(data)


# ------------------------------------------------------------------ runbook and reports


def test_the_runbook_lists_what_the_inventory_says():
    status, html = http(MON, "GET", f"{prom_url()}/consoles/peerquest-runbook.html")
    assert status == 200
    for rule in rules():
        if rule["type"] == "alerting":
            assert f'id="{rule["name"].lower()}"' in html, rule["name"]
    app_vars = V("app")
    for name, job in app_vars["peerquest_monitors_jobs"].items():
        if job.get("state", "present") == "present":
            assert name in html, name
    for pattern in app_vars["peerquest_monitors_error_patterns"]:
        assert str(pattern["threshold"]) in html
    for severity, channels in app_vars["peerquest_alerting_routes"].items():
        for channel in channels:
            assert channel in html, (severity, channel)
    assert app_vars["peerquest_monitors_app_log"] in html


def test_the_daily_trend_report_is_kept_and_mailed():
    user = MV["peerquest_trends_user"]
    before = len(captured_mail())
    result = MON.run(f"sudo -u {shlex.quote(user)} {shlex.quote(MV['peerquest_trends_command_path'])} daily")
    assert result.rc == 0, result.stderr
    mails = wait_for(lambda: captured_mail()[before:], timeout=60, what="the daily report's mail")
    [report] = [m for m in mails if "daily" in m.get("subject", "").lower()]
    assert report["subject"].startswith("[INFO] ") and "System health" in report["body"], report
    assert set(report["rcpt_tos"]) == set(V("app")["peerquest_alerting_email_recipients"]["INFO"])
    # The HTML with its charts is kept as a file too.
    reports = shlex.quote(MV["peerquest_trends_reports_dir"])
    kept = MON.check_output(f"find {reports} -name '*.html' -newermt '-5 minutes'").split()
    assert kept, "no report kept"
    assert "<svg" in MON.check_output(f"cat {shlex.quote(kept[-1])}")
