"""Faults on the deployed hosts: each ends in a clear error or an alert, and nothing is lost.

- a receiver answering 429 with Retry-After (the capture sink cannot, so a
  small server on the app host answers; the deployed program runs against it
  with a copy of the deployed settings);
- flushes started together deliver each queued alert once;
- a corrupt spool entry is set aside and reported, the rest delivered;
- the app hangs (gunicorn stopped with SIGSTOP): the health probe times out and alerts;
- logrotate while the CRITICAL follower alerts: no monitoring.log line lost or repeated,
  none written into the rotated file, no alert missed or repeated;
- log integrity: a real rotation is chained; a rotated file changed afterwards is named.
"""

import json
import os
import shlex
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    alert_cmd,
    alert_user,
    app_service,
    captured_hooks,
    captured_mail,
    cron_paused,
    delivered,
    direct_delivery,
    forget_dedup,
    hook_name,
    host,
    http,
    log_through_django,
    make_spool_due,
    marker,
    monitor_cmd,
    monitoring_log,
    ops_lib_dir,
    output,
    reset_sink,
    routes,
    sink_url,
    spool_dir,
    spooled,
    wait_for,
)

APP = host("app")
SINK = host("sink")
VARS = V()
LOGROTATE_RULES = VARS["peerquest_logrotate_config_path"]


def hook_channel(severity="CRITICAL"):
    channel = next((c for c in ("webhook", "discord", "slack") if c in routes(severity)), None)
    if channel is None:
        pytest.skip(f"{severity} is routed to no webhook channel here")
    return channel


def drain():
    """Deliver what an earlier test left queued, so the sink's failure switches meet only this test's alerts."""
    # A flush already running (cron's, just before the pause) holds the spool's lock: wait for it.
    APP.run(f"sudo -u {shlex.quote(alert_user())} flock -w 60 {shlex.quote(spool_dir() + '/.lock')} true")
    make_spool_due()
    APP.run(f"{alert_cmd()} --flush-spool")


def alerted(tag):
    """Every capture (mail or hook) that carries tag."""
    found = [m for m in captured_mail() if tag in json.dumps(m)]
    for channel in ("webhook", "discord", "slack"):
        if VARS[f"peerquest_alerting_{channel}_enabled"]:
            found += [h for h in captured_hooks(channel) if tag in json.dumps(h)]
    return found


# ------------------------------------------------------------- 429 + Retry-After

SERVER = r"""
import http.server, json, sys
seen = []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen.append(self.path)
        with open(sys.argv[2], "a") as f:
            f.write(self.path + "\n")
        status = 429 if seen.count("/hook") == 1 and self.path == "/hook" else 200
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "120")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_a_429_with_retry_after_is_retried_no_earlier_and_reported_once():
    work = f"/tmp/{marker('ra')}"
    port = 18000 + int(time.time()) % 1000
    user = alert_user()
    config = json.loads(APP.check_output(f"cat {shlex.quote(VARS['peerquest_alerting_config_path'])}"))
    config.update(
        spool_dir=f"{work}/spool",
        state_dir=f"{work}/state",
        log_file=f"{work}/monitoring.log",
        routes={"CRITICAL": ["webhook"]},
        webhook={"enabled": True, "url": f"http://127.0.0.1:{port}/hook", "token": ""},
        allow_insecure_transport=True,
    )
    # This test's own webhook, reached directly, wherever the site's alerts go.
    config["alertmanager"] = dict(config["alertmanager"], enabled=False, urls=[])
    APP.check_output(f"install -d -o {shlex.quote(user)} -m 0700 {work}")
    APP.check_output(f"cat > {work}/server.py <<'EOF'\n{SERVER}\nEOF")
    APP.check_output(f"cat > {work}/alerting.json <<'EOF'\n{json.dumps(config)}\nEOF")
    APP.check_output(f"chown {shlex.quote(user)} {work}/alerting.json {work}/server.py")
    APP.check_output(f"setsid python3 {work}/server.py {port} {work}/requests >/dev/null 2>&1 < /dev/null &")
    program = f"sudo -u {shlex.quote(user)} /usr/bin/python3 -I {shlex.quote(ops_lib_dir())}/peerquest-alert"
    run = f"{program} --config {work}/alerting.json"
    try:
        wait_for(lambda: APP.run(f"curl -s -o /dev/null -X POST http://127.0.0.1:{port}/ping").rc == 0, what="server")
        first = APP.run(f"{run} --severity CRITICAL --message 'throttled {work}'")
        assert first.rc == 75, first.stderr
        assert "HTTP 429 Too Many Requests (Retry-After: 120 s)" in first.stderr
        [entry] = [
            json.loads(APP.check_output(f"cat {work}/spool/{name}"))
            for name in APP.check_output(f"ls {work}/spool").split()
        ]
        assert entry["next_attempt"] - time.time() == pytest.approx(120, abs=10)
        # Not due yet: a flush does not ask the receiver again.
        assert APP.run(f"{run} --flush-spool").rc == 75
        assert APP.check_output(f"cat {work}/requests").split() == ["/ping", "/hook"]
        APP.check_output(f'sed -i -E \'s/"next_attempt": [0-9.]+/"next_attempt": 0/\' {work}/spool/*.json')
        flushed = APP.run(f"{run} --flush-spool")
        assert flushed.rc == 0 and flushed.stderr == "", flushed.stderr
        assert APP.check_output(f"cat {work}/requests").split() == ["/ping", "/hook", "/hook"]
        events = [line.split()[3:5] for line in output(APP, f"cat {work}/monitoring.log").splitlines()]
        assert events == [["WARNING", "queued"], ["INFO", "retry-sent"]]
    finally:
        APP.run(f"pkill -f {shlex.quote(work + '/server.py')}")
        APP.run(f"rm -rf {work}")


# ------------------------------------------------------ concurrent flushes


@direct_delivery
def test_concurrent_flushes_deliver_each_queued_alert_once():
    channel = hook_channel()
    reset_sink()
    tags = [marker("cc") for _ in range(4)]
    with cron_paused():
        drain()
        assert http(SINK, "POST", f"{sink_url()}/_control/fail?path={hook_name(channel)}&count=4&status=500")[0] == 200
        for tag in tags:
            assert APP.run(f"{alert_cmd()} --severity CRITICAL --message {shlex.quote('concurrent ' + tag)}").rc == 75
        assert len(spooled()) >= 4
        make_spool_due()
        # Four flushes at once, as cron and a hand-run one can: each queued alert goes out once.
        APP.check_output(f"for n in 1 2 3 4; do {alert_cmd()} --flush-spool >/dev/null 2>&1 & done; wait")
        for tag in tags:
            assert len(delivered(channel, tag)) == 1, tag
        assert spooled() == []


# ------------------------------------------------ a corrupt spool entry


@direct_delivery
def test_a_corrupt_spool_entry_is_set_aside_reported_and_the_rest_delivered():
    channel = hook_channel()
    reset_sink()
    good, bad = marker("good"), marker("bad")
    corrupt_dir = f"{spool_dir()}/.corrupt"
    with cron_paused():
        drain()
        try:
            assert (
                http(SINK, "POST", f"{sink_url()}/_control/fail?path={hook_name(channel)}&count=2&status=500")[0] == 200
            )
            for tag in (good, bad):
                assert APP.run(f"{alert_cmd()} --severity CRITICAL --message {shlex.quote('spooled ' + tag)}").rc == 75
            make_spool_due()
            [bad_file] = [n for n in spooled() if bad in APP.check_output(f"cat {spool_dir()}/{n}")]
            APP.check_output(f"truncate -s 40 {spool_dir()}/{bad_file}")
            result = APP.run(f"{alert_cmd()} --flush-spool")
            assert f"cannot read queued alert {spool_dir()}/{bad_file}" in result.stderr
            assert APP.file(f"{corrupt_dir}/{bad_file}").exists
            assert len(delivered(channel, good)) == 1 and spooled() == []
            log = output(APP, f"cat {shlex.quote(monitoring_log())}")
            assert f"unreadable severity=- key=- channel=- file={spool_dir()}/{bad_file}" in log
            # Reported through the channels too, naming where it went.
            wait_for(lambda: alerted(f"{corrupt_dir}/{bad_file}"), what="the set-aside alert")
        finally:
            APP.run(f"rm -rf {shlex.quote(corrupt_dir)}")


# ---------------------------------------------------------------- app hangs


def test_a_hung_app_makes_the_probe_time_out_and_alert():
    main_pid = APP.check_output(f"systemctl show -p MainPID --value {shlex.quote(app_service())}").strip()
    assert main_pid not in ("", "0")
    pids = [main_pid, *APP.check_output(f"pgrep -P {main_pid} || true").split()]
    timeout = VARS["peerquest_monitors_health_timeout"]
    reset_sink()
    forget_dedup()
    with cron_paused():
        APP.check_output(f"kill -STOP {' '.join(pids)}")
        try:
            started = time.monotonic()
            result = APP.run(f"{monitor_cmd()} health --quick")
            took = time.monotonic() - started
        finally:
            APP.check_output(f"kill -CONT {' '.join(pids)}")
        assert took < timeout + 30
        assert "alert key=health:unavailable" in result.stdout, result.stdout + result.stderr
        wait_for(
            lambda: [m for m in alerted("service unavailable") if "no answer within" in json.dumps(m)],
            what="the unavailable alert",
        )
        # Back: the next probe says so.
        wait_for(lambda: "quick=up" in APP.run(f"{monitor_cmd()} health --quick").stdout, what="the app back")


# ------------------------------------------------- rotation while the follower alerts


def follower_lines(tag):
    """Lines about tag in monitoring.log and every rotated copy: {file: [lines]}."""
    found = {}
    for path in output(APP, f"ls {shlex.quote(monitoring_log())}*").split():
        reader = "zcat" if path.endswith(".gz") else "cat"
        lines = [line for line in output(APP, f"{reader} {shlex.quote(path)}").splitlines() if tag in line]
        if lines:
            found[path] = lines
    return found


def test_rotation_while_the_follower_alerts_loses_and_repeats_nothing():
    if not VARS["peerquest_monitors_follow_enabled"]:
        pytest.skip("the follower is off in this inventory")
    unit = "peerquest-monitor-follow.service"
    assert APP.run(f"systemctl is-active {unit}").stdout.strip() == "active"
    before, after = [marker("pre") for _ in range(3)], [marker("post") for _ in range(3)]
    reset_sink()
    with cron_paused():
        for tag in before:
            log_through_django(APP, "quests", "CRITICAL", f"ledger mismatch {tag}")
        wait_for(lambda: all(follower_lines(t) for t in before), what="the follower's lines before rotation")
        rotated = APP.run(f"logrotate -f {shlex.quote(LOGROTATE_RULES)}")
        assert rotated.rc == 0, rotated.stderr
        for tag in after:
            log_through_django(APP, "quests", "CRITICAL", f"ledger mismatch {tag}")
        wait_for(lambda: all(follower_lines(t) for t in after), timeout=60, what="the follower's lines after rotation")
        for tag in before + after:
            where = follower_lines(tag)
            # One "alert key=" line from the follower per record: not lost, not repeated.
            alert_lines = [line for lines in where.values() for line in lines if " alert key=follow:" in line]
            assert len(alert_lines) == 1, where
        for tag in after:
            # Written after the rotation: in the new monitoring.log, never into the rotated copy.
            assert list(follower_lines(tag)) == [monitoring_log()], follower_lines(tag)
        for tag in before + after:
            wait_for(lambda tag=tag: alerted(tag), what=f"the alert for {tag}")
            assert len([m for m in captured_mail() if tag in json.dumps(m)]) <= 1


# ------------------------------------------------------------ log integrity


def test_a_rotated_file_changed_after_rotation_is_named_by_the_integrity_check():
    if not VARS["peerquest_logrotate_integrity_enabled"]:
        pytest.skip("log integrity is off in this inventory")
    verify = f"{shlex.quote(VARS['peerquest_logrotate_integrity_command_path'])} verify"
    log_through_django(APP, "quests", "WARNING", f"integrity {marker('int')}")
    result = APP.run(f"logrotate -f {shlex.quote(LOGROTATE_RULES)}")
    assert result.rc == 0, result.stderr
    assert APP.run(verify).rc == 0
    manifest = [
        json.loads(line) for line in output(APP, f"cat {VARS['peerquest_logrotate_integrity_manifest']}").splitlines()
    ]
    entry = next(e for e in reversed(manifest) if e["event"] == "rotated" and APP.file(e["file"]).exists)
    target = entry["file"]
    original = APP.check_output(f"base64 -w0 {shlex.quote(target)}")
    try:
        APP.check_output(f"echo 'INFO nothing happened here' >> {shlex.quote(target)}")
        tampered = APP.run(verify)
        assert tampered.rc == 1
        assert f"{target}: changed since it was rotated" in tampered.stderr
    finally:
        APP.check_output(f"echo {original} | base64 -d > {shlex.quote(target)}")
    assert APP.run(verify).rc == 0
