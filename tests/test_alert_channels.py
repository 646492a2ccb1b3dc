"""peerquest-alert's HTTP channels, routing, dedup, spool and event log, against
real receivers on loopback (http.server and aiosmtpd)."""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from peerquest_ops.alerting import channels
from test_alert_command import (
    COMMAND,
    LOG_DIR,
    NO_ALERTMANAGER,
    PASSWORD,
    USER,
    Capture,
    authenticator,
    free_port,
)

# The secret parts of each URL: none of them may ever be printed or logged.
SLACK_PATH = "/services/T0001/B0001/slack-secret-4f1c"
DISCORD_PATH = "/api/webhooks/1234/discord-secret-9a2b"
HOOK_PATH = "/gateway/hook-secret-77e1?key=query-secret-5d0e"
TOKEN = "bearer-token-c0ffee42"
SECRETS = (SLACK_PATH, DISCORD_PATH, "hook-secret-77e1", "query-secret-5d0e", TOKEN, PASSWORD)
COLOURS = {"CRITICAL": ("#ff0000", 0xFF0000), "WARNING": ("#ff9900", 0xFF9900), "INFO": ("#0099ff", 0x0099FF)}
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d peerquest-alert (INFO|WARNING|ERROR) (suppressed duplicate|[a-z-]+) "
    r"severity=(CRITICAL|WARNING|INFO|-) key=(\S+|\"[^\n]*\") channel=(email|slack|discord|webhook|-)( .*)?$"
)


class Receiver:
    """HTTP endpoint recording every POST; can answer 500 a number of times or not at all."""

    def __init__(self, tls_context=None):
        self.requests = []
        self.fail = 0
        self.status = {}  # path prefix -> status to answer instead of 200
        self.hang = False
        self.headers = {}  # sent with every answer (Retry-After, ...)
        self.delay = 0  # seconds before answering
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.hang:
                    receiver.release.wait(10)
                    return
                if receiver.fail > 0:
                    receiver.fail -= 1
                    status = 500
                else:
                    status = next((s for p, s in receiver.status.items() if self.path.startswith(p)), 200)
                time.sleep(receiver.delay)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body), "status": status}
                )
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path):
        scheme = "https" if isinstance(self.server.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_port}{path}"

    def delivered(self, prefix=""):
        return [r for r in self.requests if r["path"].startswith(prefix) and 200 <= r["status"] < 300]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    receiver = Receiver()
    yield receiver
    receiver.stop()


def smtp_server(port):
    # As in test_alert_command: AUTH without TLS, on loopback only.
    capture = Capture()
    kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    controller = Controller(capture, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, capture


@pytest.fixture
def smtp():
    controller, capture = smtp_server(free_port())
    yield controller, capture
    controller.stop()


def make_config(tmp_path, hooks, smtp_port=None, **overrides):
    config = {
        "subject": "[{severity}] PeerQuest Alert",
        "log_dir": LOG_DIR,
        "email": {
            "enabled": smtp_port is not None,
            "from": "monitoring@peerquest.test",
            "recipients": {"CRITICAL": ["oncall@peerquest.test"], "WARNING": ["team@peerquest.test"], "INFO": []},
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp_port or 25,
                "starttls": False,
                "ssl": False,
                "user": USER,
                "password": PASSWORD,
                "ca_file": "",
                "timeout": 5,
            },
        },
        "routes": {"CRITICAL": ["slack", "discord", "webhook"], "WARNING": ["slack"], "INFO": ["webhook"]},
        "slack": {"enabled": True, "webhook_url": hooks.url(SLACK_PATH)},
        "discord": {"enabled": True, "webhook_url": hooks.url(DISCORD_PATH)},
        "webhook": {"enabled": True, "url": hooks.url(HOOK_PATH), "token": TOKEN},
        "http_timeout": 2,
        "ca_file": "",
        "dedup_window_seconds": 3600,
        "state_dir": str(tmp_path / "state"),
        "spool_dir": str(tmp_path / "spool"),
        "retry_base_seconds": 10,
        "retry_max_seconds": 3600,
        "retry_after_max_seconds": 3600,
        "log_file": str(tmp_path / "monitoring.log"),
        "selftest_channels": ["slack", "discord", "webhook"],
        # The receivers speak http:// and the relay takes AUTH without TLS, on loopback only.
        "allow_insecure_transport": True,
        "alertmanager": NO_ALERTMANAGER,
    }
    if smtp_port is not None:
        config["routes"]["CRITICAL"].insert(0, "email")
    config.update(overrides)
    path = tmp_path / "alerting.json"
    path.write_text(json.dumps(config))
    return path


def environment():
    # A proxy from the environment must not stand between the command and loopback.
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def alert(config, *args, severity="CRITICAL", message="DB down"):
    if severity:
        args = ("--severity", severity, "--message", message, *args)
    return subprocess.run(
        [*COMMAND, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=environment(),
    )


def spool(tmp_path):
    directory = tmp_path / "spool"
    # Pending deliveries only: not the hold records (.held-*) nor what was set aside (.corrupt/).
    files = sorted(f for f in directory.glob("*.json") if not f.name.startswith(".")) if directory.exists() else []
    return [(f, json.loads(f.read_text())) for f in files]


def log_lines(tmp_path):
    path = tmp_path / "monitoring.log"
    return path.read_text().splitlines() if path.exists() else []


def assert_no_secrets(tmp_path, *results):
    texts = [r.stdout + r.stderr for r in results] + ["\n".join(log_lines(tmp_path))]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_slack_payload_per_severity(hooks, tmp_path):
    config = make_config(tmp_path, hooks, routes={s: ["slack"] for s in COLOURS}, dedup_window_seconds=0)
    before = int(time.time())
    for severity in COLOURS:
        result = alert(config, severity=severity, message=f"{severity.lower()} first line\nsecond line")
        assert result.returncode == 0, result.stderr
        assert f"{severity} alert sent: slack webhook http://127.0.0.1:{hooks.server.server_port}/..." in result.stdout
    assert [r["path"] for r in hooks.requests] == [SLACK_PATH] * 3
    for request, (severity, (colour, _)) in zip(hooks.requests, COLOURS.items(), strict=True):
        body = request["body"]
        [attachment] = body.pop("attachments")
        assert body == {"text": f"{severity}: PeerQuest Alert - {severity.lower()} first line"}
        ts = attachment.pop("ts")
        assert isinstance(ts, int) and before <= ts <= time.time()
        assert attachment == {
            "color": colour,
            "title": f"{severity}: PeerQuest Alert",
            "text": f"{severity.lower()} first line\nsecond line",
            "footer": "PeerQuest Monitoring",
        }
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["User-Agent"] == "peerquest-alert"
        assert "Authorization" not in request["headers"]


@pytest.mark.parametrize("severity", list(COLOURS))
def test_discord_payload_with_truncation(hooks, tmp_path, severity):
    hooks.status = {"/api/webhooks": 204}
    config = make_config(tmp_path, hooks, routes={severity: ["discord"]})
    result = alert(config, severity=severity, message="x" * 5000)
    assert result.returncode == 0, result.stderr
    [request] = hooks.requests
    body = request["body"]
    [embed] = body.pop("embeds")
    assert body == {"username": "PeerQuest Monitoring", "content": f"{severity}: PeerQuest Alert"}
    stamp = datetime.fromisoformat(embed.pop("timestamp").replace("Z", "+00:00"))
    assert stamp.utcoffset().total_seconds() == 0 and abs(stamp.timestamp() - time.time()) < 30
    description = embed.pop("description")
    assert len(description) == 4096 and description.startswith("x" * 4095)
    assert embed == {
        "title": f"{severity}: PeerQuest Alert",
        "color": COLOURS[severity][1],
        "footer": {"text": "PeerQuest Monitoring"},
    }


def test_webhook_payload_and_bearer_token(hooks, tmp_path):
    config = make_config(tmp_path, hooks)
    result = alert(config, "--key", "db-down", severity="INFO", message="disk 91%\ndetails")
    assert result.returncode == 0, result.stderr
    [request] = hooks.requests
    assert request["path"] == HOOK_PATH
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    body = request["body"]
    assert set(body) == {"severity", "title", "message", "host", "key", "timestamp", "suppressed"}
    assert body["severity"] == "INFO" and body["title"] == "INFO: PeerQuest Alert"
    assert body["message"] == "disk 91%\ndetails" and body["key"] == "db-down" and body["suppressed"] == 0
    assert body["host"] == socket.gethostname()
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    # Without a token, no Authorization header at all.
    webhook = {"enabled": True, "url": hooks.url(HOOK_PATH), "token": ""}
    assert alert(make_config(tmp_path, hooks, webhook=webhook), severity="INFO", message="y").returncode == 0
    assert "Authorization" not in hooks.requests[1]["headers"]
    assert_no_secrets(tmp_path, result)


def test_warning_goes_only_to_its_channels(hooks, smtp, tmp_path):
    controller, capture = smtp
    config = make_config(tmp_path, hooks, controller.port)
    result = alert(config, severity="WARNING", message="approval failures high")
    assert result.returncode == 0, result.stderr
    assert [r["path"] for r in hooks.requests] == [SLACK_PATH]
    assert capture.messages == []  # WARNING has recipients, but email is not routed for it
    result = alert(config, severity="CRITICAL", message="DB down")
    assert result.returncode == 0, result.stderr
    assert sorted(r["path"] for r in hooks.requests[1:]) == sorted([SLACK_PATH, DISCORD_PATH, HOOK_PATH])
    [mail] = capture.messages
    assert mail["rcpt"] == ["oncall@peerquest.test"] and mail["msg"]["Subject"] == "[CRITICAL] PeerQuest Alert"
    assert "Message: DB down" in mail["msg"].get_content().splitlines()


def test_missing_routes_is_refused(hooks, smtp, tmp_path):
    # Routes used to default to email only; now the configuration must say.
    controller, capture = smtp
    path = make_config(tmp_path, hooks, controller.port)
    config = json.loads(path.read_text())
    del config["routes"]
    path.write_text(json.dumps(config))
    result = alert(path)
    assert result.returncode == 2 and "routes: missing" in result.stderr
    assert capture.messages == [] and hooks.requests == []


def test_dedup_suppresses_then_reports_the_count(hooks, tmp_path):
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]})
    assert alert(config).returncode == 0
    for _ in range(2):
        result = alert(config)
        assert result.returncode == 0 and "suppressed duplicate CRITICAL DB down" in result.stdout
    assert len(hooks.requests) == 1
    state_file = tmp_path / "state" / "dedup.json"
    state = json.loads(state_file.read_text())
    assert state["keys"]["CRITICAL DB down"]["suppressed"] == 2
    # Pretend the window has passed.
    state["keys"]["CRITICAL DB down"]["last_sent"] -= 3600
    state_file.write_text(json.dumps(state))
    result = alert(config)
    assert result.returncode == 0, result.stderr
    body = hooks.requests[1]["body"]
    assert body["suppressed"] == 2
    assert body["message"].startswith("DB down\n(2 similar alerts suppressed since ")
    assert json.loads(state_file.read_text())["keys"]["CRITICAL DB down"]["suppressed"] == 0
    # A different message is another key; --key groups different texts.
    assert alert(config, message="Redis down").returncode == 0
    assert alert(config, "--key", "k1", message="a").returncode == 0
    assert "suppressed duplicate k1" in alert(config, "--key", "k1", message="b").stdout
    assert len(hooks.requests) == 4
    suppressed = [line for line in log_lines(tmp_path) if " INFO suppressed duplicate severity=CRITICAL " in line]
    assert len(suppressed) == 3 and suppressed[1].endswith(' key="CRITICAL DB down" channel=- count=2')


def test_dedup_window_zero_sends_every_alert(hooks, tmp_path):
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]}, dedup_window_seconds=0)
    assert [alert(config).returncode for _ in range(3)] == [0, 0, 0]
    assert len(hooks.requests) == 3


def test_concurrent_duplicates_are_counted_once_each(hooks, tmp_path):
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]})
    command = [*COMMAND, "--config", str(config), "--severity", "CRITICAL", "--message", "x"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
        for _ in range(5)
    ]
    outputs = [p.communicate(timeout=30) + (p.returncode,) for p in procs]
    assert [rc for _, _, rc in outputs] == [0] * 5
    assert sum("suppressed duplicate" in out for out, _, _ in outputs) == 4
    assert len(hooks.requests) == 1
    state = json.loads((tmp_path / "state" / "dedup.json").read_text())
    assert state["keys"]["CRITICAL x"]["suppressed"] == 4


def test_failed_channel_is_spooled_retried_with_backoff_and_delivered_once(hooks, tmp_path):
    hooks.fail = 100
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]})
    result = alert(config)
    assert result.returncode == 75
    port = hooks.server.server_port
    assert (
        f"CRITICAL alert not delivered: webhook http://127.0.0.1:{port}/... failed: HTTP 500 "
        "Internal Server Error; queued for retry" in result.stderr
    )
    [(path, entry)] = spool(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o660"
    assert entry["channel"] == "webhook" and entry["severity"] == "CRITICAL" and entry["key"] == "CRITICAL DB down"
    assert entry["message"] == "DB down" and entry["attempts"] == 1 and "HTTP 500" in entry["last_error"]
    assert entry["next_attempt"] - entry["created"] == pytest.approx(10, abs=1)
    assert path.name == f"{entry['id']}.json"

    # Not due yet: nothing is sent, it stays queued.
    result = alert(config, "--flush-spool", severity=None)
    assert result.returncode == 75 and len(hooks.requests) == 1

    entry["next_attempt"] = 0
    path.write_text(json.dumps(entry))
    result = alert(config, "--flush-spool", severity=None)
    # The same fault again: recorded, not reported a second time.
    assert result.returncode == 75 and result.stderr == ""
    [(_, entry)] = spool(tmp_path)
    assert entry["attempts"] == 2 and entry["next_attempt"] - time.time() == pytest.approx(20, abs=2)

    hooks.fail = 0
    entry["next_attempt"] = 0
    path.write_text(json.dumps(entry))
    result = alert(config, "--flush-spool", severity=None)
    assert result.returncode == 0, result.stderr
    assert "1 delivered, 0 still queued" in result.stdout
    assert spool(tmp_path) == []
    [delivered] = hooks.delivered()
    assert delivered["body"]["message"] == "DB down" and delivered["body"]["timestamp"]
    assert alert(config, "--flush-spool", severity=None).returncode == 0
    assert len(hooks.delivered()) == 1
    events = [line.split()[3:5] for line in log_lines(tmp_path)]
    assert events == [["WARNING", "queued"], ["INFO", "retry-failed"], ["INFO", "retry-sent"]]
    assert all(LOG_LINE.match(line) for line in log_lines(tmp_path))
    assert_no_secrets(tmp_path, result)


def test_backoff_is_capped(hooks, tmp_path):
    hooks.fail = 100
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]}, retry_base_seconds=0)
    assert alert(config).returncode == 75
    for attempts in (2, 3):
        assert alert(config, "--flush-spool", severity=None).returncode == 75
        [(_, entry)] = spool(tmp_path)
        assert entry["attempts"] == attempts and entry["next_attempt"] <= time.time()
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]}, retry_base_seconds=60, retry_max_seconds=90)
    assert alert(config, "--flush-spool", severity=None).returncode == 75  # due: base 0 left it due now
    [(_, entry)] = spool(tmp_path)
    assert entry["attempts"] == 4 and entry["next_attempt"] - time.time() == pytest.approx(90, abs=2)


def test_successful_channel_is_not_resent(hooks, smtp, tmp_path):
    controller, capture = smtp
    hooks.fail = 1
    config = make_config(tmp_path, hooks, controller.port, routes={"CRITICAL": ["email", "webhook"]})
    result = alert(config)
    assert result.returncode == 75
    assert "alert sent: email to oncall@peerquest.test" in result.stdout
    assert [e["channel"] for _, e in spool(tmp_path)] == ["webhook"]
    path, entry = spool(tmp_path)[0]
    entry["next_attempt"] = 0
    path.write_text(json.dumps(entry))
    assert alert(config, "--flush-spool", severity=None).returncode == 0
    assert len(capture.messages) == 1 and len(hooks.delivered()) == 1 and spool(tmp_path) == []


def test_email_failure_is_spooled_and_keeps_its_time(hooks, tmp_path):
    port = free_port()
    config = make_config(tmp_path, hooks, port, routes={"CRITICAL": ["email"]})
    result = alert(config, message="relay was down")
    assert result.returncode == 75
    assert (
        f"CRITICAL alert not delivered: email via 127.0.0.1:{port} failed: Connection refused; queued for retry"
        in result.stderr
    )
    [(path, entry)] = spool(tmp_path)
    assert entry["recipients"] == ["oncall@peerquest.test"]
    entry["next_attempt"] = 0
    path.write_text(json.dumps(entry))
    controller, capture = smtp_server(port)
    try:
        result = alert(config, "--flush-spool", severity=None)
    finally:
        controller.stop()
    assert result.returncode == 0, result.stderr
    [mail] = capture.messages
    body = mail["msg"].get_content().splitlines()
    sent_at = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(entry["created"]))
    assert body[0] == f"Time: {sent_at}"
    assert body[1:] == ["Severity: CRITICAL", "Message: relay was down", "", f"Check logs at: {LOG_DIR}/"]
    assert_no_secrets(tmp_path, result)


@pytest.mark.parametrize("server_state", ["timeout", "refused", "redirect", "404"])
def test_http_failures_are_spooled(hooks, tmp_path, server_state):
    webhook = {"enabled": True, "url": hooks.url(HOOK_PATH), "token": TOKEN}
    if server_state == "timeout":
        hooks.hang = True
    elif server_state == "refused":
        webhook["url"] = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"
    else:
        hooks.status = {"/gateway": 302 if server_state == "redirect" else 404}
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]}, webhook=webhook, http_timeout=1)
    result = alert(config)
    assert result.returncode == 75
    expected = {"timeout": "timed out", "refused": "Connection refused", "redirect": "HTTP 302", "404": "HTTP 404"}
    assert f"failed: {expected[server_state]}" in result.stderr and "queued for retry" in result.stderr
    assert len(spool(tmp_path)) == 1
    assert_no_secrets(tmp_path, result)


def test_no_spool_restores_exit_1_and_does_not_swallow_the_retry(hooks, tmp_path):
    hooks.fail = 1
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]})
    result = alert(config, "--no-spool")
    assert result.returncode == 1 and "CRITICAL alert not delivered: webhook" in result.stderr
    assert "queued" not in result.stderr and spool(tmp_path) == []
    # Nothing went out, so the caller's retry is not a duplicate.
    assert alert(config, "--no-spool").returncode == 0
    assert len(hooks.delivered()) == 1


def test_secrets_never_appear_in_output_or_log(hooks, smtp, tmp_path):
    controller, _ = smtp
    hooks.fail = 3
    config = make_config(tmp_path, hooks, controller.port)
    results = [alert(config), alert(config, "--flush-spool", severity=None), alert(config, "--test-channels")]
    bad = make_config(tmp_path, hooks, controller.port, slack={"enabled": True, "webhook_url": f"ftp://x{SLACK_PATH}"})
    results.append(alert(bad, "--check-config", severity=None))
    assert "slack.webhook_url: must be an https:// or http:// URL" in results[-1].stderr
    path = make_config(tmp_path, hooks, controller.port, selftest_channels=["email"])
    config = json.loads(path.read_text())
    config["email"]["smtp"]["password"] = PASSWORD + "-wrong"
    path.write_text(json.dumps(config))
    results.append(alert(path, "--test-channels", severity=None))
    assert results[-1].returncode == 1 and "channel test failed: email via" in results[-1].stderr
    assert all(LOG_LINE.match(line) for line in log_lines(tmp_path))
    assert len(log_lines(tmp_path)) >= 8
    assert_no_secrets(tmp_path, *results)


def test_unwritable_log_warns_and_continues(hooks, tmp_path):
    config = make_config(tmp_path, hooks, routes={"CRITICAL": ["webhook"]}, log_file=str(tmp_path / "no" / "x.log"))
    result = alert(config)
    assert result.returncode == 0 and len(hooks.requests) == 1
    assert "warning: cannot write" in result.stderr


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"slack": {"enabled": False, "webhook_url": ""}}, "routes.CRITICAL: channel 'slack' is not configured"),
        ({"routes": {"WARNING": ["sms"]}}, "routes.WARNING: unknown channel 'sms'"),
        ({"routes": {"FATAL": ["slack"]}}, "routes.FATAL: unknown severity"),
        ({"routes": {"INFO": "slack"}}, "routes.INFO: must be a list of channels"),
        ({"routes": {"INFO": ["email"]}}, "routes.INFO: channel 'email' is not configured"),
        ({"discord": {"enabled": True, "webhook_url": "discord.com/api"}}, "discord.webhook_url: must be an https://"),
        ({"webhook": {"enabled": "yes", "url": ""}}, "webhook.enabled: must be true or false"),
        ({"webhook": {"enabled": True, "url": "https://gw.test/x", "token": 5}}, "webhook.token: must be a string"),
        ({"http_timeout": 0}, "http_timeout: must be a positive integer"),
        ({"dedup_window_seconds": -1}, "dedup_window_seconds: must be a non-negative integer"),
        ({"retry_base_seconds": "60"}, "retry_base_seconds: must be a non-negative integer"),
        ({"retry_max_seconds": 1.5}, "retry_max_seconds: must be a non-negative integer"),
        ({"spool_dir": "spool"}, "spool_dir: must be an absolute path"),
        ({"log_file": 3}, "log_file: must be a string"),
        ({"selftest_channels": ["pager"]}, "selftest_channels: unknown channel 'pager'"),
    ],
)
def test_check_config_names_the_key(hooks, tmp_path, overrides, expected):
    config = make_config(tmp_path, hooks, **overrides)
    for args in (["--check-config"], ["--flush-spool"]):
        result = alert(config, *args, severity=None)
        assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_good_config_checks(hooks, tmp_path):
    result = alert(make_config(tmp_path, hooks), "--check-config", severity=None)
    assert result.returncode == 0, result.stderr


def test_channel_self_test(hooks, smtp, tmp_path):
    controller, capture = smtp
    channels = ["email", "slack", "discord", "webhook"]
    config = make_config(tmp_path, hooks, controller.port, selftest_channels=channels)
    for _ in range(2):  # never deduplicated
        result = alert(config, "--test-channels", severity=None)
        assert result.returncode == 0, result.stderr
    assert len(hooks.requests) == 6 and len(capture.messages) == 2
    text = f"PeerQuest alert channel test from {socket.gethostname()}"
    assert hooks.requests[0]["body"]["attachments"][0]["text"] == text
    assert hooks.requests[2]["body"]["severity"] == "INFO" and hooks.requests[2]["body"]["message"] == text
    # Every configured mailbox is checked.
    assert capture.messages[0]["rcpt"] == ["oncall@peerquest.test", "team@peerquest.test"]
    assert spool(tmp_path) == [] and not (tmp_path / "state" / "dedup.json").exists()

    hooks.status = {"/api/webhooks": 500}
    result = alert(config, "--test-channels", severity=None)
    assert result.returncode == 1
    assert "channel test failed: discord webhook" in result.stderr and "HTTP 500" in result.stderr
    assert "channel test failed for: discord" in result.stderr
    assert spool(tmp_path) == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_https_with_a_private_ca(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver = Receiver(context)
    try:
        # https:// needs no permission.
        routes, secure = {"CRITICAL": ["webhook"]}, {"allow_insecure_transport": False, "selftest_channels": []}
        config = make_config(tmp_path, receiver, routes=routes, ca_file=str(cert), dedup_window_seconds=0, **secure)
        result = alert(config)
        assert result.returncode == 0, result.stderr
        assert len(receiver.delivered()) == 1
        # Without the CA the certificate is refused, not trusted blindly.
        result = alert(make_config(tmp_path, receiver, routes=routes, dedup_window_seconds=0))
        assert result.returncode == 75 and "CERTIFICATE_VERIFY_FAILED" in result.stderr
        assert len(receiver.delivered()) == 1
        assert_no_secrets(tmp_path, result)
    finally:
        receiver.stop()


INSECURE = {
    "slack": "slack.webhook_url: an http:// URL would send the webhook's secret in clear; "
    "use https:// or set allow_insecure_transport: true",
    "discord": "discord.webhook_url: an http:// URL would send the webhook's secret in clear",
    "webhook": "webhook.url: an http:// URL would send the webhook's secret in clear",
}
PATHS = {"slack": SLACK_PATH, "discord": DISCORD_PATH, "webhook": HOOK_PATH}


def sections(hooks, enabled):
    """The three HTTP channels, each with its http:// URL, only those in enabled switched on."""
    out = {c: {"enabled": c in enabled, "webhook_url": hooks.url(PATHS[c])} for c in ("slack", "discord")}
    out["webhook"] = {"enabled": "webhook" in enabled, "url": hooks.url(HOOK_PATH), "token": TOKEN}
    return out


@pytest.mark.parametrize("channel", sorted(INSECURE))
def test_http_webhook_is_refused_unless_allowed(hooks, tmp_path, channel):
    # Only this channel is on, so each is judged on its own.
    only = dict(sections(hooks, [channel]), routes={"CRITICAL": [channel]}, selftest_channels=[channel])
    refused = make_config(tmp_path, hooks, allow_insecure_transport=False, **only)
    results = [
        alert(refused, *args, severity=severity)
        for args, severity in ((["--check-config"], None), ([], "CRITICAL"), (["--test-channels"], None))
    ]
    for result in results:
        assert result.returncode == 2 and INSECURE[channel] in result.stderr, result.stderr
    assert hooks.requests == []
    assert_no_secrets(tmp_path, *results)
    # A channel that is off sends nothing, whatever its URL.
    off = dict(sections(hooks, []), routes={"CRITICAL": []}, selftest_channels=[])
    result = alert(make_config(tmp_path, hooks, allow_insecure_transport=False, **off), "--check-config", severity=None)
    assert result.returncode == 0, result.stderr
    # Allowed: delivered.
    result = alert(make_config(tmp_path, hooks, **only))
    assert result.returncode == 0, result.stderr
    assert len(hooks.delivered()) == 1


def test_http_webhook_is_refused_at_send_time(hooks, tmp_path):
    """A configuration that skipped config_problems (or a spooled retry) still cannot post in clear."""
    config = json.loads(make_config(tmp_path, hooks).read_text())
    config["allow_insecure_transport"] = False
    delivery = {"severity": "CRITICAL", "key": "k", "message": "x", "created": time.time(), "suppressed": 0}
    for channel in INSECURE:
        with pytest.raises(channels.DeliveryError, match=f"{channel} refused: .*an http:// URL") as raised:
            channels.deliver(dict(delivery, channel=channel), config)
        assert not any(secret in str(raised.value) for secret in SECRETS)
    assert hooks.requests == []
    config["allow_insecure_transport"] = True
    for channel in INSECURE:
        channels.deliver(dict(delivery, channel=channel), config)
    assert len(hooks.delivered()) == 3
