"""peerquest-alert through Alertmanager: a stub of Alertmanager's /api/v2/alerts on loopback (in-process), the
channels' receivers beside it to prove none of them is contacted, and the role's settings and published values
rendered with the real Ansible templating."""

import json
import os
import subprocess
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import ROLES
from test_alert_channels import (
    HOOK_PATH,
    SECRETS,
    TOKEN,
    Receiver,
    alert,
    environment,
    log_lines,
    make_config,
    smtp_server,
    spool,
)
from test_alert_command import COMMAND, NO_ALERTMANAGER, PASSWORD, SITE, free_port, render

INSTANCE = "app1.peerquest.test"
RESOLVE = 1800
FLUSH = "--flush-spool"
RUN = {"capture_output": True, "text": True, "timeout": 30, "check": False, "env": environment()}


class Alertmanager:
    """Alertmanager's POST /api/v2/alerts: records every body; answers status (200 unless told otherwise)."""

    def __init__(self, port=0):
        self.posts = []
        self.status = 200
        self.argv_seen = []  # every other process's command line while a post was being answered
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.argv_seen.extend(command_lines())
                stub.posts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(stub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def alerts(self):
        """Every alert posted, in order."""
        return [a for p in self.posts if p["path"] == "/api/v2/alerts" for a in p["body"]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def command_lines():
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    out.append(handle.read().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                continue
    return out


@pytest.fixture
def am():
    stubs = []

    def start(port=0):
        stubs.append(Alertmanager(port))
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.stop()


@pytest.fixture
def hooks():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp():
    controller, capture = smtp_server(free_port())
    yield controller, capture
    controller.stop()


def am_config(tmp_path, hooks, urls, smtp_port=None, **section):
    """Every channel enabled and routed (they must stay untouched), alerts through the given Alertmanagers."""
    alertmanager = dict(NO_ALERTMANAGER, urls=urls, resolve_seconds=RESOLVE, instance=INSTANCE, **section)
    return make_config(tmp_path, hooks, smtp_port, alertmanager=alertmanager)


def stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_alert_alertmanager_receives(am, hooks, tmp_path):
    stub = am()
    config = am_config(tmp_path, hooks, [stub.url])
    before = time.time()
    result = alert(config, "--key", "app1:errors:db", message="[app1] DB down\nOperationalError: gone")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"peerquest-alert: CRITICAL alert sent: alertmanager {stub.url}"
    [post] = stub.posts
    assert post["path"] == "/api/v2/alerts" and post["headers"]["Content-Type"] == "application/json"
    [sent] = post["body"]
    assert sent["labels"] == {
        "alertname": "PeerQuestLogAlert",
        "severity": "CRITICAL",
        "key": "app1:errors:db",
        "instance": INSTANCE,
        "job": "peerquest-alert",
    }
    assert sent["annotations"] == {"summary": "[app1] DB down", "description": "[app1] DB down\nOperationalError: gone"}
    starts, ends = stamp(sent["startsAt"]), stamp(sent["endsAt"])
    assert before - 1 <= starts <= time.time()
    assert ends - starts == pytest.approx(RESOLVE, abs=1)
    [line] = log_lines(tmp_path)
    assert line.endswith(
        f'INFO sent severity=CRITICAL key=app1:errors:db channel=alertmanager to="alertmanager {stub.url}"'
    )


def test_the_check_names_its_alert_and_the_runbook_is_linked(am, hooks, tmp_path):
    stub = am()
    runbook = "http://mon1.peerquest.test:9090/consoles/peerquest-runbook.html"
    config = am_config(tmp_path, hooks, [stub.url], runbook_base_url=runbook)
    result = alert(config, "--alertname", "PeerQuestFollowerDown", severity="WARNING", message="follower silent")
    assert result.returncode == 0, result.stderr
    [sent] = stub.alerts()
    assert sent["labels"]["alertname"] == "PeerQuestFollowerDown" and sent["labels"]["severity"] == "WARNING"
    # Without --key: the key the channels' dedup uses.
    assert sent["labels"]["key"] == "WARNING follower silent"
    assert sent["annotations"]["runbook_url"] == f"{runbook}#peerquestfollowerdown"
    bad = alert(config, "--alertname", "follower down", severity="WARNING")
    assert bad.returncode == 2 and "--alertname" in bad.stderr and len(stub.posts) == 1


def test_no_channel_is_contacted_and_local_dedup_is_skipped(am, hooks, smtp, tmp_path):
    controller, capture = smtp
    stub = am()
    config = am_config(tmp_path, hooks, [stub.url], smtp_port=controller.port)
    for _ in range(2):
        # Within the dedup window: both go to Alertmanager, which groups and deduplicates them.
        result = alert(config)
        assert result.returncode == 0, result.stderr
        assert "suppressed" not in result.stdout
    assert [a["labels"]["key"] for a in stub.alerts()] == ["CRITICAL DB down"] * 2
    assert hooks.requests == [] and capture.messages == []
    assert not (tmp_path / "state" / "dedup.json").exists()


def test_one_alertmanager_down_is_still_delivered(am, hooks, tmp_path):
    stub = am()
    dead = f"http://127.0.0.1:{free_port()}"
    config = am_config(tmp_path, hooks, [dead, stub.url])
    result = alert(config)
    assert result.returncode == 0, result.stderr
    assert f"CRITICAL alert sent: alertmanager {stub.url} (not accepted by {dead}: Connection refused)" in result.stdout
    assert len(stub.alerts()) == 1 and spool(tmp_path) == []


def test_none_accepting_is_spooled_and_the_retry_posts_it_once_alertmanager_is_back(am, hooks, tmp_path):
    ports = [free_port(), free_port()]
    config = am_config(tmp_path, hooks, [f"http://127.0.0.1:{port}" for port in ports])
    before = time.time()
    result = alert(config, "--alertname", "PeerQuestDbDown", message="DB down")
    assert result.returncode == 75
    assert "CRITICAL alert not delivered: no Alertmanager accepted it: " in result.stderr
    assert "queued for retry" in result.stderr
    [(path, entry)] = spool(tmp_path)
    assert entry["channel"] == "alertmanager" and entry["alertname"] == "PeerQuestDbDown"
    assert entry["instance"] == INSTANCE and entry["key"] == "CRITICAL DB down" and entry["attempts"] == 1
    # Still down: stays queued.
    entry["next_attempt"] = 0
    path.write_text(json.dumps(entry))
    assert alert(config, FLUSH, severity=None).returncode == 75
    assert spool(tmp_path)[0][1]["attempts"] == 2

    stub = am(ports[1])
    [(path, entry)] = spool(tmp_path)
    entry["next_attempt"] = 0
    path.write_text(json.dumps(entry))
    result = alert(config, FLUSH, severity=None)
    assert result.returncode == 0, result.stderr
    assert "spool flushed: 1 delivered, 0 still queued" in result.stdout
    assert spool(tmp_path) == []
    [sent] = stub.alerts()
    assert sent["labels"]["alertname"] == "PeerQuestDbDown" and sent["labels"]["instance"] == INSTANCE
    # Raised when the line was seen; fires for the whole period from the time it got through.
    assert stamp(sent["startsAt"]) == pytest.approx(before, abs=2)
    assert stamp(sent["endsAt"]) - time.time() == pytest.approx(RESOLVE, abs=3)
    assert hooks.requests == []
    events = [line.split()[3:5] for line in log_lines(tmp_path)]
    assert events == [["WARNING", "queued"], ["INFO", "retry-failed"], ["INFO", "retry-sent"]]


def test_alertmanager_answering_an_error_is_not_delivered(am, hooks, tmp_path):
    stub = am()
    stub.status = 500
    result = alert(am_config(tmp_path, hooks, [stub.url]))
    assert result.returncode == 75
    assert f"no Alertmanager accepted it: {stub.url}: HTTP 500 Internal Server Error" in result.stderr
    assert len(spool(tmp_path)) == 1


def test_the_retry_job_posts_firing_alerts_again_for_a_restarted_alertmanager(am, hooks, tmp_path):
    stub = am()
    config = am_config(tmp_path, hooks, [stub.url])
    assert alert(config).returncode == 0
    [first] = stub.alerts()
    # Restarted: Alertmanager keeps alerts in memory only.
    stub.stop()
    restarted = am(stub.port)
    result = alert(config, FLUSH, severity=None)
    assert result.returncode == 0, result.stderr
    assert "1 firing alert(s) posted to Alertmanager again" in result.stdout
    # The same alert, unchanged: Alertmanager's notification log keeps it one message.
    assert restarted.alerts() == [first]
    # Past its end: dropped, not posted again.
    [record] = (tmp_path / "state" / "alertmanager-firing").glob("*.json")
    data = json.loads(record.read_text())
    data["ends"] = time.time() - 1
    record.write_text(json.dumps(data))
    result = alert(config, FLUSH, severity=None)
    assert result.returncode == 0 and "firing" not in result.stdout
    assert len(restarted.alerts()) == 1 and not record.exists()


def test_via_alertmanager_off_uses_the_channels(am, hooks, tmp_path):
    stub = am()
    config = am_config(tmp_path, hooks, [stub.url], enabled=False)
    result = alert(config)
    assert result.returncode == 0, result.stderr
    assert stub.posts == []
    assert sorted(r["path"] for r in hooks.requests) == sorted(
        ["/services/T0001/B0001/slack-secret-4f1c", "/api/webhooks/1234/discord-secret-9a2b", HOOK_PATH]
    )


def test_a_queued_alertmanager_alert_goes_to_the_channels_once_alertmanager_is_turned_off(am, hooks, tmp_path):
    config = am_config(tmp_path, hooks, [f"http://127.0.0.1:{free_port()}"])
    assert alert(config).returncode == 75
    config = am_config(tmp_path, hooks, [])
    result = alert(config, FLUSH, severity=None)
    assert result.returncode == 0, result.stderr
    assert spool(tmp_path) == [] and len(hooks.delivered()) == 3
    assert {r["body"].get("key") for r in hooks.delivered(HOOK_PATH)} == {"CRITICAL DB down"}


def test_channel_test_goes_to_every_alertmanager(am, hooks, tmp_path):
    stub = am()
    dead = f"http://127.0.0.1:{free_port()}"
    result = alert(am_config(tmp_path, hooks, [stub.url]), "--test-channels", severity=None)
    assert result.returncode == 0, result.stderr
    assert f"channel test sent: alertmanager {stub.url}" in result.stdout
    [sent] = stub.alerts()
    assert sent["labels"]["alertname"] == "PeerQuestChannelTest" and sent["labels"]["severity"] == "INFO"
    result = alert(am_config(tmp_path, hooks, [stub.url, dead]), "--test-channels", severity=None)
    assert result.returncode == 1
    assert f"channel test failed for: alertmanager {dead}" in result.stderr
    assert hooks.requests == [] and len(stub.alerts()) == 2
    # Nothing is kept for re-posting: a test alert is not an incident.
    assert not (tmp_path / "state" / "alertmanager-firing").exists()


def test_secrets_stay_out_of_argv_output_log_spool_and_alertmanager(am, hooks, smtp, tmp_path):
    controller, _ = smtp
    stub = am()
    dead = f"http://127.0.0.1:{free_port()}"
    config = am_config(tmp_path, hooks, [stub.url, dead], smtp_port=controller.port)
    # A message that quotes configured secrets (a log line with a URL in it), on standard input as the
    # monitors hand it over: argv holds none.
    text = f"DB down, token {TOKEN} in {PASSWORD}"
    results = [subprocess.run([*COMMAND, "--config", str(config), "--severity", "CRITICAL"], **RUN, input=text)]
    results.append(alert(am_config(tmp_path, hooks, [dead]), message="queued"))
    for path, entry in spool(tmp_path):
        path.write_text(json.dumps(dict(entry, next_attempt=0)))
    # The same file again, with the Alertmanager that answers.
    config = am_config(tmp_path, hooks, [stub.url, dead], smtp_port=controller.port)
    results.append(alert(config, FLUSH, severity=None))
    assert [r.returncode for r in results] == [0, 75, 0], results[-1]
    texts = [r.stdout + r.stderr for r in results] + log_lines(tmp_path) + stub.argv_seen
    texts += [json.dumps(post["body"]) for post in stub.posts] + [json.dumps(e) for _, e in spool(tmp_path)]
    assert any("peerquest_ops.alerting.cli" in line for line in stub.argv_seen)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    assert stub.alerts()[0]["annotations"]["description"] == "DB down, token *** in ***"


@pytest.mark.parametrize(
    "section, allow, expected",
    [
        ({"urls": ["http://127.0.0.1:9093"]}, False, "alertmanager.urls[0]: an http:// URL would send alerts in clear"),
        ({"urls": ["https://mon1.test:9093", "ftp://mon2"]}, True, "alertmanager.urls[1]: must be an https://"),
        ({"urls": "https://mon1.test:9093"}, True, "alertmanager.urls: must be a list"),
        ({"resolve_seconds": 0}, True, "alertmanager.resolve_seconds: must be a positive integer, got 0"),
        ({"runbook_base_url": "runbook.html"}, True, "alertmanager.runbook_base_url: must be an https://"),
        ({"urls": ["https://mon1.test:9093"]}, False, None),
    ],
    ids=["http", "scheme", "not a list", "resolve 0", "runbook", "https"],
)
def test_check_config_judges_the_alertmanager_settings(hooks, tmp_path, section, allow, expected):
    # The loopback channels speak http://: off, so that only the Alertmanager URLs are judged.
    off = {"slack": {"enabled": False, "webhook_url": ""}, "discord": {"enabled": False, "webhook_url": ""}}
    off.update(webhook={"enabled": False, "url": "", "token": ""}, selftest_channels=[])
    section = dict(NO_ALERTMANAGER, **section)
    routes = {"CRITICAL": [], "WARNING": [], "INFO": []}
    config = make_config(tmp_path, hooks, alertmanager=section, allow_insecure_transport=allow, routes=routes, **off)
    result = alert(config, "--check-config", severity=None)
    if expected is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and expected in result.stderr, result.stderr


# ------------------------------------------------------------------ the role: settings and published values


def rendered(**variables):
    return json.loads(render("alerting.json.j2", **dict(SITE, **variables)))


def test_the_role_renders_the_alertmanager_settings(tmp_path):
    assert rendered()["alertmanager"] == {
        "enabled": True,
        "urls": [],
        "resolve_seconds": 1800,
        "instance": SITE["inventory_hostname"],
        "runbook_base_url": "",
    }
    site = rendered(
        peerquest_alerting__dependent_alertmanager_urls=["http://mon1:9093", "http://mon2:9093"],
        peerquest_alerting_alertmanager_resolve_minutes=5,
        peerquest_alerting_alertmanager_instance="app-one",
        peerquest_alerting__dependent_runbook_base_url="http://mon1:9090/consoles/peerquest-runbook.html",
        peerquest_alerting_allow_insecure_transport=True,
    )
    assert site["alertmanager"] == {
        "enabled": True,
        "urls": ["http://mon1:9093", "http://mon2:9093"],
        "resolve_seconds": 300,
        "instance": "app-one",
        "runbook_base_url": "http://mon1:9090/consoles/peerquest-runbook.html",
    }
    assert rendered(peerquest_alerting_via_alertmanager=False)["alertmanager"]["enabled"] is False
    # The validate step: the rendered file passes the program's check, and refuses http:// unless allowed.
    path = tmp_path / "alerting.json"
    path.write_text(json.dumps(site))
    assert alert(path, "--check-config", severity=None).returncode == 0
    site["allow_insecure_transport"] = False
    path.write_text(json.dumps(site))
    result = alert(path, "--check-config", severity=None)
    assert result.returncode == 2 and "alertmanager.urls[0]: an http:// URL" in result.stderr


def published(name, **variables):
    """A published variable as a play on the monitoring host sees it: the role's defaults with these values."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    values = {}
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        values.update(yaml.safe_load(defaults.read_text()))
    values.update(dict(SITE, **variables))

    def trust(value):
        if isinstance(value, str):
            return trust_as_template(value)
        if isinstance(value, dict):
            return {k: trust(v) for k, v in value.items()}
        if isinstance(value, list):
            return [trust(v) for v in value]
        return value

    templar = Templar(loader=DataLoader(), variables=trust(values))
    # Through JSON: what a consumer gets are plain values of these types.
    return json.loads(json.dumps(templar.template(trust_as_template("{{ " + name + " }}"))))


SITE_CHANNELS = {
    "peerquest_alerting_email_from": "ops@questhub.test",
    "peerquest_alerting_smtp_port": 465,
    "peerquest_alerting_smtp_starttls": False,
    "peerquest_alerting_smtp_ssl": True,
    "peerquest_alerting_smtp_ca_file": "/etc/ssl/relay-ca.pem",
    "peerquest_alerting_slack_enabled": True,
    "peerquest_alerting_slack_webhook_url": "https://hooks.slack.test/services/T/B/secret",
    "peerquest_alerting_webhook_enabled": True,
    "peerquest_alerting_webhook_url": "https://gw.questhub.test/hook",
    "peerquest_alerting_webhook_token": "tok-1234",
    "peerquest_alerting_http_ca_file": "/etc/ssl/hooks-ca.pem",
    "peerquest_alerting_routes": {"CRITICAL": ["email", "slack", "webhook"], "WARNING": ["slack"], "INFO": []},
    "peerquest_alerting_subject": "[{severity}] QuestHub",
    "peerquest_alerting_smtp_timeout": 7,
}


def test_the_channels_published_for_alertmanager_and_the_trends():
    channels = published("peerquest_alerting__alertmanager__dependent_channels", **SITE_CHANNELS)
    email = {
        "enabled": True,
        "from": "ops@questhub.test",
        "smtp_host": "smtp.peerquest.test",
        "smtp_port": 465,
        "starttls": False,
        "ssl": True,
        "user": SITE["peerquest_alerting_smtp_user"],
        "password": PASSWORD,
        "ca_file": "/etc/ssl/relay-ca.pem",
        "recipients": SITE["peerquest_alerting_email_recipients"],
    }
    assert channels == {
        "email": email,
        "slack": {"enabled": True, "url": "https://hooks.slack.test/services/T/B/secret"},
        "discord": {"enabled": False, "url": ""},
        "webhook": {"enabled": True, "url": "https://gw.questhub.test/hook", "token": "tok-1234"},
        "routes": {"CRITICAL": ["email", "slack", "webhook"], "WARNING": ["slack"], "INFO": []},
        "subject": "[{severity}] QuestHub",
        "http_ca_file": "/etc/ssl/hooks-ca.pem",
        "smtp_ca_file": "/etc/ssl/relay-ca.pem",
        "allow_insecure_transport": False,
    }
    smtp = published("peerquest_alerting__trends__dependent_smtp", **SITE_CHANNELS)
    assert smtp == dict(email, timeout=7, allow_insecure_transport=False)
    # The defaults alone: what a site that sets nothing publishes.
    defaults = published("peerquest_alerting__alertmanager__dependent_channels")
    assert defaults["email"]["smtp_port"] == 587 and defaults["email"]["starttls"] is True
    assert defaults["routes"] == {"CRITICAL": ["email"], "WARNING": ["email"], "INFO": ["email"]}


def test_resolve_ends_the_keys_firing_alert_now_and_stops_re_posting_it(am, hooks, tmp_path):
    stub = am()
    config = am_config(tmp_path, hooks, [stub.url])
    assert alert(config, "--key", "app1:selfcheck:disk").returncode == 0
    assert alert(config, "--key", "app1:errors:other").returncode == 0
    before = time.time()
    result = alert(config, "--resolve", "--key", "app1:selfcheck:disk", severity=None)
    assert result.returncode == 0, result.stderr
    assert "app1:selfcheck:disk: resolved (1 firing alert(s) ended in Alertmanager)" in result.stdout
    first, other, ended = stub.alerts()
    assert ended["labels"] == first["labels"] and ended["startsAt"] == first["startsAt"]
    assert before - 1 <= stamp(ended["endsAt"]) <= time.time() + 1  # ended now, not at its resolve time
    # The retry job re-posts only what still fires; the same condition again is a new alert.
    assert alert(config, FLUSH, severity=None).returncode == 0
    assert stub.alerts()[3:] == [other]
    assert alert(config, "--key", "app1:selfcheck:disk").returncode == 0
    assert stub.alerts()[-1]["labels"]["key"] == "app1:selfcheck:disk"
    assert log_lines(tmp_path)[2].endswith(
        "INFO resolved severity=CRITICAL key=app1:selfcheck:disk channel=alertmanager"
    )


def test_resolve_clears_the_dedup_window_on_the_direct_path(hooks, tmp_path):
    config = make_config(tmp_path, hooks)
    assert alert(config, "--key", "app1:health:unavailable").returncode == 0
    sent = len(hooks.requests)
    assert "suppressed" in alert(config, "--key", "app1:health:unavailable").stdout
    assert len(hooks.requests) == sent
    assert alert(config, "--resolve", "--key", "app1:health:unavailable", severity=None).returncode == 0
    assert alert(config, "--key", "app1:health:unavailable").returncode == 0
    assert len(hooks.requests) > sent  # a new incident, not a duplicate of the old one
    assert alert(config, "--resolve", severity=None).returncode == 2  # a key is required
