"""The alert history: peerquest-alert's records of every outcome, the monitors' resolutions, the operators'
answers with peerquest-history, and appends from several processes at once."""

import json
import multiprocessing
import time

import pytest
from conftest import package_command, run, scratch_monitor, send_json, serve_http
from peerquest_ops.history import incidents, store
from peerquest_ops.monitors import uptime

ALERT = package_command("peerquest_ops.alerting.cli")
HISTORY = package_command("peerquest_ops.history.cli")


class Gateway:
    """A webhook receiver answering each POST with the next status of .answers (200 once they run out)."""

    def __init__(self):
        self.answers = []
        self.posts = []
        gateway = self

        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.posts.append(json.loads(body))
                status = gateway.answers.pop(0) if gateway.answers else 200
                send_json(self, status, {"ok": status == 200})

            def log_message(self, *args):
                pass

        self.server, self.url = serve_http(Handler)


@pytest.fixture
def gateway():
    found = Gateway()
    yield found
    found.server.shutdown()


@pytest.fixture
def alerting(tmp_path, gateway):
    """peerquest-alert's settings: the generic webhook for CRITICAL and WARNING, a spool, dedup and the history."""
    config = {
        "subject": "[{severity}] PeerQuest Alert",
        "log_dir": "/var/log/peerquest",
        "log_file": str(tmp_path / "monitoring.log"),
        "state_dir": str(tmp_path / "state"),
        "spool_dir": str(tmp_path / "spool"),
        "dedup_window_seconds": 3600,
        "retry_base_seconds": 60,
        "retry_max_seconds": 3600,
        "retry_after_max_seconds": 3600,
        "routes": {"CRITICAL": ["webhook"], "WARNING": ["webhook"], "INFO": []},
        "selftest_channels": [],
        "http_timeout": 5,
        "ca_file": "",
        "allow_insecure_transport": True,
        "email": {
            "enabled": False,
            "from": "monitoring@peerquest.test",
            "recipients": {},
            "smtp": {
                "host": "",
                "port": 25,
                "starttls": False,
                "ssl": False,
                "user": "",
                "password": "",
                "ca_file": "",
                "timeout": 5,
            },
        },
        "slack": {"enabled": False, "webhook_url": ""},
        "discord": {"enabled": False, "webhook_url": ""},
        "webhook": {"enabled": True, "url": gateway.url + "/hook", "token": ""},
        "alertmanager": {
            "enabled": False,
            "urls": [],
            "resolve_seconds": 1800,
            "instance": "app1",
            "runbook_base_url": "",
        },
    }
    path = tmp_path / "alerting.json"
    path.write_text(json.dumps(config))
    return path


def history(tmp_path):
    return store.read(str(tmp_path / "state" / store.FILE_NAME))


def alert(config, *args):
    return run([*ALERT, "--config", str(config), *args])


def answer(config, *args):
    return run([*HISTORY, "--config", str(config), *args])


def make_due(tmp_path):
    for entry in (tmp_path / "spool").glob("*.json"):
        data = json.loads(entry.read_text())
        data["next_attempt"] = 0
        entry.write_text(json.dumps(data))


def test_every_outcome_of_an_alert_is_one_record(tmp_path, alerting, gateway):
    happened = time.time() - 90
    sent = alert(
        alerting,
        "--severity",
        "CRITICAL",
        "--key",
        "app1:errors:rollback",
        "--message",
        "rolled back",
        "--event-time",
        str(happened),
    )
    assert sent.returncode == 0, sent.stderr
    again = alert(alerting, "--severity", "CRITICAL", "--key", "app1:errors:rollback", "--message", "again")
    assert again.returncode == 0
    # A gateway that fails: queued, then a retry that fails again, then one that goes out.
    gateway.answers = [503, 503]
    assert alert(alerting, "--severity", "WARNING", "--key", "app1:health:unhealthy", "--message", "x").returncode == 75
    make_due(tmp_path)
    assert alert(alerting, "--flush-spool").returncode == 75
    make_due(tmp_path)
    assert alert(alerting, "--flush-spool").returncode == 0
    gateway.answers = [500]
    assert alert(alerting, "--severity", "WARNING", "--key", "k3", "--message", "y", "--no-spool").returncode == 1

    records = history(tmp_path)
    assert [(r["outcome"], r["key"]) for r in records] == [
        ("sent", "app1:errors:rollback"),
        ("suppressed", "app1:errors:rollback"),
        ("queued", "app1:health:unhealthy"),
        ("retry-failed", "app1:health:unhealthy"),
        ("retry-sent", "app1:health:unhealthy"),
        ("failed", "k3"),
    ]
    first = records[0]
    assert first["severity"] == "CRITICAL" and first["channel"] == "webhook" and first["host"] == "app1"
    assert first["event_time"] == pytest.approx(happened, abs=0.01)
    assert len(first["id"]) == 12 and first["time"] >= happened
    # A queued delivery's retries carry the id of the alert they deliver.
    queued, retry_failed, retry_sent = records[2:5]
    assert queued["alert"] == retry_failed["alert"] == retry_sent["alert"]
    assert retry_sent["attempts"] == 3 and "503" in retry_failed["error"]
    [incident] = [i for i in incidents.fold(records) if i.key == "app1:health:unhealthy"]
    assert incident.outcomes == {"queued": 1, "retry-failed": 1, "retry-sent": 1}
    assert incident.delivered == retry_sent["time"]
    # An operator may name it by any of its records' ids, or by the id they share.
    found = incidents.fold(records)
    assert incidents.find(found, queued["alert"]) is incidents.find(found, retry_sent["id"])
    assert incidents.find(found, queued["alert"]).key == "app1:health:unhealthy"


def test_ack_and_false_positive_round_trip(tmp_path, alerting):
    for key in ("app1:errors:approval_failed", "app1:security:failed_login"):
        assert alert(alerting, "--severity", "WARNING", "--key", key, "--message", "m").returncode == 0
    first = history(tmp_path)[0]
    alert_id = first["alert"]

    # By a record's id (any record of the alert names it); list and the answer show the alert's id.
    acked = answer(alerting, "ack", first["id"], "--note", "looking into it")
    assert acked.returncode == 0, acked.stderr
    assert f"app1:errors:approval_failed (alert {alert_id}) acknowledged" in acked.stdout
    # By the key without its host, as an operator reads it in the message.
    marked = answer(alerting, "false-positive", "security:failed_login")
    assert marked.returncode == 0 and "marked a false positive" in marked.stdout
    assert answer(alerting, "ack", "no-such-key").returncode == 1

    records = history(tmp_path)
    ack, false_positive = records[-2:]
    assert ack["outcome"] == "ack" and ack["alert"] == alert_id and ack["note"] == "looking into it"
    assert ack["by"] and false_positive["outcome"] == "false-positive"
    assert false_positive["key"] == "app1:security:failed_login" and false_positive["severity"] == "WARNING"
    found = {i.key: i for i in incidents.fold(records)}
    assert found["app1:errors:approval_failed"].acked == ack["time"]
    assert found["app1:security:failed_login"].false_positive

    listed = answer(alerting, "list", "--open")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert any(alert_id in line and "acked" in line for line in lines)
    assert any("app1:security:failed_login" in line and "false positive" in line for line in lines)
    # resolve closes it: no longer listed as open.
    assert answer(alerting, "resolve", "errors:approval_failed").returncode == 0
    assert "approval_failed" not in answer(alerting, "list", "--open").stdout


def _append_many(path, writer, count):
    for number in range(count):
        store.record(path, "sent", f"key-{writer}", "WARNING", note=f"{writer}-{number}-" + "x" * 400)


def test_concurrent_appends_do_not_interleave(tmp_path):
    path = str(tmp_path / store.FILE_NAME)
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append_many, args=(path, w, 1500)) for w in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    lines = open(path, encoding="utf-8").read().splitlines()
    assert len(lines) == 3000
    parsed = [json.loads(line) for line in lines]  # a torn or interleaved record would not parse
    for writer in ("a", "b"):
        notes = [r["note"].split("-")[1] for r in parsed if r["key"] == f"key-{writer}"]
        assert notes == [str(n) for n in range(1500)]


@pytest.fixture
def monitor(tmp_path):
    found, _, calls = scratch_monitor(tmp_path, lambda log: {"digest": {"enabled": True}})
    found.config["history"] = {"file": str(tmp_path / store.FILE_NAME)}
    found.calls = calls  # what the alert command was run with
    return found


def fresh(monitor):
    """The next run of a job: a new Monitor on the same settings and state."""
    return type(monitor)(monitor.config)


def resolve_calls(monitor):
    return [c["argv"] for c in monitor.calls() if "--resolve" in c["argv"]]


def test_a_condition_that_clears_is_resolved_once_by_the_job_that_raised_it(monitor, tmp_path):
    first = fresh(monitor)
    first.alert("WARNING", "errors:approval_failed", "4 x failed")
    first.alert("CRITICAL", "follow:critical:DB gone", "DB gone")  # an event: nothing to recover from
    assert first.settle("errors") == []
    # Another job's run that does not raise it says nothing about it.
    assert fresh(monitor).settle("health_quick") == []
    still = fresh(monitor)
    still.alert("WARNING", "errors:approval_failed", "5 x failed")
    assert still.settle("errors") == []
    assert resolve_calls(monitor) == []
    assert fresh(monitor).settle("errors") == ["errors:approval_failed"]
    assert fresh(monitor).settle("errors") == []
    # The alert command heard it once: its dedup window cleared, Alertmanager's alert ended.
    assert resolve_calls(monitor) == [["--resolve", "--key", "app1:errors:approval_failed"]]
    resolved = [r for r in store.read(str(tmp_path / store.FILE_NAME)) if r["outcome"] == "resolved"]
    assert [(r["key"], r["severity"], r["job"]) for r in resolved] == [
        ("app1:errors:approval_failed", "WARNING", "errors")
    ]
    # Every settled run counts towards the monitors' uptime.
    runs = monitor.read_state("uptime", {})["runs"]
    assert (sum(runs["errors"].values()), sum(runs["health_quick"].values())) == (4, 1)


def test_info_findings_are_recorded_as_digested(monitor, tmp_path):
    monitor.alert("INFO", "selfcheck", "Monitoring self-check passed")
    [record] = store.read(str(tmp_path / store.FILE_NAME))
    assert (record["outcome"], record["key"], record["severity"]) == ("digested", "app1:selfcheck", "INFO")


def test_every_run_counts_towards_uptime(monitor):
    now = 1_800_000_000.0
    start = now - 3 * 3600
    for minute in range(180):
        if minute != 100:  # one missed run
            uptime.count_run(monitor, "health_quick", start + minute * 60)
    for step in range(36):
        uptime.count_run(monitor, "errors", start + step * 300)
    measured = uptime.measure(monitor, start - 1, now, {"health_quick": 60, "errors": 300, "digest": 86400})
    # Jobs run less often than hourly are left out; the follower is off in this monitor.
    assert measured["jobs"] == {"errors": [36, 36], "health_quick": [179, 180]}
    assert measured["follower"] == [0, 0]
    assert measured["percent"] == pytest.approx(100.0 * 215 / 216)
