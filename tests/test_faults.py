"""Faults in the alerting path and the probes, against real sockets and servers on loopback:
each ends in a clear error or an alert, is reported once, and loses nothing."""

import email.utils
import json
import socket
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import fake_alert_command
from peerquest_ops.monitors import base, probes
from test_alert_channels import HOOK_PATH, Receiver, alert, log_lines, make_config, spool
from test_alert_command import PASSWORD, USER, Capture, free_port

FLUSH = "--flush-spool"


@pytest.fixture
def hooks():
    receiver = Receiver()
    yield receiver
    receiver.stop()


class Silent:
    """A server that accepts connections and never answers (a hung webhook, relay or app)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.stop_event = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)  # held open, never written to

    def stop(self):
        self.stop_event.set()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent():
    server = Silent()
    yield server
    server.stop()


def due(tmp_path):
    """Make every queued delivery due now; returns the entries."""
    for path, entry in spool(tmp_path):
        entry["next_attempt"] = 0
        path.write_text(json.dumps(entry))
    return [e for _, e in spool(tmp_path)]


def events(tmp_path):
    """(level, event) of every event line."""
    return [tuple(line.split()[3:5]) for line in log_lines(tmp_path)]


def hook_config(tmp_path, hooks, url=None, **overrides):
    webhook = {"enabled": True, "url": url or hooks.url(HOOK_PATH), "token": "bearer-token-c0ffee42"}
    return make_config(
        tmp_path, hooks, routes={"CRITICAL": ["webhook"], "WARNING": ["webhook"]}, webhook=webhook, **overrides
    )


# ------------------------------------------------------------- 429 + Retry-After


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_and_the_failure_reported_once(hooks, tmp_path, form):
    hooks.status = {"/gateway": 429}
    wait = 600
    value = str(wait) if form == "seconds" else email.utils.formatdate(time.time() + wait, usegmt=True)
    hooks.headers = {"Retry-After": value}
    config = hook_config(tmp_path, hooks)
    result = alert(config)
    assert result.returncode == 75
    assert "failed: HTTP 429 Too Many Requests (Retry-After: " in result.stderr and "queued for retry" in result.stderr
    [(path, entry)] = spool(tmp_path)
    # Not the 10 s backoff: no earlier than the receiver said.
    assert entry["next_attempt"] - time.time() == pytest.approx(wait, abs=3)
    # Not due: a flush leaves it alone.
    assert alert(config, FLUSH, severity=None).returncode == 75 and len(hooks.requests) == 1
    # Due and refused again the same way: recorded, not reported again.
    due(tmp_path)
    result = alert(config, FLUSH, severity=None)
    assert result.returncode == 75 and result.stderr == "" and len(hooks.requests) == 2
    assert events(tmp_path) == [("WARNING", "queued"), ("INFO", "retry-failed")]
    [(_, entry)] = spool(tmp_path)
    assert entry["attempts"] == 2 and entry["next_attempt"] - time.time() == pytest.approx(wait, abs=3)
    hooks.status = {}
    due(tmp_path)
    assert alert(config, FLUSH, severity=None).returncode == 0
    assert len(hooks.delivered()) == 1 and spool(tmp_path) == []


def test_retry_after_is_capped(hooks, tmp_path):
    hooks.status = {"/gateway": 503}
    hooks.headers = {"Retry-After": "86400"}
    config = hook_config(tmp_path, hooks, retry_after_max_seconds=300)
    assert alert(config).returncode == 75
    [(_, entry)] = spool(tmp_path)
    assert entry["next_attempt"] - time.time() == pytest.approx(300, abs=3)


def test_retry_after_cap_must_be_positive(hooks, tmp_path):
    result = alert(hook_config(tmp_path, hooks, retry_after_max_seconds=0), "--check-config", severity=None)
    assert result.returncode == 2 and "retry_after_max_seconds: must be a positive integer, got 0" in result.stderr


# ------------------------------------------------------------------ hangs


def test_a_hung_webhook_times_out_is_queued_and_reported_once(hooks, silent, tmp_path):
    url = f"http://127.0.0.1:{silent.port}{HOOK_PATH}"
    config = hook_config(tmp_path, hooks, url=url, http_timeout=1)
    started = time.monotonic()
    result = alert(config)
    assert time.monotonic() - started < 10
    assert result.returncode == 75
    assert "failed: timed out: no answer within 1 s; queued for retry" in result.stderr
    due(tmp_path)
    result = alert(config, FLUSH, severity=None)
    assert result.returncode == 75 and result.stderr == ""
    assert events(tmp_path) == [("WARNING", "queued"), ("INFO", "retry-failed")]
    # The receiver is back: delivered once.
    hook_config(tmp_path, hooks, http_timeout=1)
    due(tmp_path)
    assert alert(config, FLUSH, severity=None).returncode == 0 and len(hooks.delivered()) == 1


def test_a_hung_smtp_relay_times_out_and_is_queued(hooks, silent, tmp_path):
    config = make_config(tmp_path, hooks, silent.port, routes={"CRITICAL": ["email"]})
    config_data = json.loads(config.read_text())
    config_data["email"]["smtp"]["timeout"] = 1
    config.write_text(json.dumps(config_data))
    started = time.monotonic()
    result = alert(config)
    assert time.monotonic() - started < 10
    assert result.returncode == 75
    assert f"email via 127.0.0.1:{silent.port} failed: timed out: no answer within 1 s; queued" in result.stderr
    [(_, entry)] = spool(tmp_path)
    assert entry["channel"] == "email" and entry["recipients"] == ["oncall@peerquest.test"]


# ------------------------------------------------------------------ DNS


def test_an_unresolvable_webhook_is_queued_with_a_clear_reason(hooks, tmp_path):
    config = hook_config(tmp_path, hooks, url=f"http://hooks.host.invalid{HOOK_PATH}")
    result = alert(config)
    assert result.returncode == 75
    assert "webhook http://hooks.host.invalid/... failed: cannot resolve hooks.host.invalid: " in result.stderr
    assert "hook-secret" not in result.stderr
    due(tmp_path)
    assert alert(config, FLUSH, severity=None).stderr == ""
    assert events(tmp_path) == [("WARNING", "queued"), ("INFO", "retry-failed")]


def test_an_unresolvable_smtp_relay_is_queued_with_a_clear_reason(hooks, tmp_path):
    config = make_config(tmp_path, hooks, 25, routes={"CRITICAL": ["email"]})
    data = json.loads(config.read_text())
    data["email"]["smtp"]["host"] = "smtp.host.invalid"
    config.write_text(json.dumps(data))
    result = alert(config)
    assert result.returncode == 75
    assert "email via smtp.host.invalid:25 failed: cannot resolve smtp.host.invalid: " in result.stderr


# ------------------------------------------------------- refused credentials


class CountingAuth:
    def __init__(self):
        self.attempts = 0

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.attempts += 1
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


def test_a_wrong_smtp_password_holds_email_until_the_settings_change(hooks, tmp_path):
    auth, capture = CountingAuth(), Capture()
    kwargs = {"authenticator": auth, "auth_required": True, "auth_require_tls": False}
    controller = Controller(capture, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        config = make_config(tmp_path, hooks, controller.port, routes={"CRITICAL": ["email"]})
        data = json.loads(config.read_text())
        wrong = "wrong-password-9d1f"
        data["email"]["smtp"]["password"] = wrong
        config.write_text(json.dumps(data))
        first = alert(config, message="DB down")
        assert first.returncode == 75
        assert f"email via 127.0.0.1:{controller.port} failed: the relay refused the login of email.smtp.user" in (
            first.stderr
        )
        # smtplib tries each mechanism the relay offers, once.
        logins = auth.attempts
        assert "email is held" in first.stderr and logins >= 1
        # Retries do not try again (no loop against the relay, no lockout), and say nothing new.
        due(tmp_path)
        flushed = alert(config, FLUSH, severity=None)
        assert flushed.returncode == 75 and flushed.stderr == "" and "1 held" in flushed.stdout
        assert auth.attempts == logins
        # A new alert waits with the first, untried.
        second = alert(config, message="disk full")
        assert second.returncode == 75 and "held since" in second.stderr and auth.attempts == logins
        assert len(spool(tmp_path)) == 2
        assert [e for e in events(tmp_path) if e[0] != "INFO"] == [("ERROR", "held"), ("WARNING", "queued")]
        texts = [first.stdout, first.stderr, flushed.stdout, second.stderr, "\n".join(log_lines(tmp_path))]
        texts += [json.dumps(e) for _, e in spool(tmp_path)]
        texts += [p.read_text() for p in (tmp_path / "spool").glob(".held-*")]
        assert not [t for t in texts if wrong in t or PASSWORD in t]
        # The password is fixed: the next flush delivers both.
        data["email"]["smtp"]["password"] = PASSWORD
        config.write_text(json.dumps(data))
        result = alert(config, FLUSH, severity=None)
        assert result.returncode == 0, result.stderr
        assert "2 delivered" in result.stdout and spool(tmp_path) == []
        assert sorted(m["msg"].get_content().split("Message: ")[1].splitlines()[0] for m in capture.messages) == [
            "DB down",
            "disk full",
        ]
        assert not list((tmp_path / "spool").glob(".held-*"))
    finally:
        controller.stop()


def test_a_webhook_refusing_its_token_is_held(hooks, tmp_path):
    hooks.status = {"/gateway": 401}
    config = hook_config(tmp_path, hooks)
    result = alert(config)
    assert result.returncode == 75 and "HTTP 401 Unauthorized: the receiver refuses our credentials" in result.stderr
    due(tmp_path)
    assert alert(config, FLUSH, severity=None).returncode == 75 and len(hooks.requests) == 1


# --------------------------------------------------------- corrupt state


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-an-object", "no-message"])
def test_a_corrupt_spool_entry_is_set_aside_and_the_rest_delivered(hooks, tmp_path, damage):
    hooks.fail = 3
    config = hook_config(tmp_path, hooks)
    for text in ("first", "second", "third"):
        assert alert(config, message=text).returncode == 75
    due(tmp_path)
    (bad_path, _), *good = spool(tmp_path)
    raw = bad_path.read_text()
    bad_path.write_text(
        {"truncated": raw[: len(raw) // 2], "empty": "", "not-an-object": "[1]", "no-message": json.dumps({})}[damage]
    )
    result = alert(config, FLUSH, severity=None)
    assert f"cannot read queued alert {bad_path}" in result.stderr
    aside = tmp_path / "spool" / ".corrupt" / bad_path.name
    assert aside.exists() and not bad_path.exists()
    delivered = [r["body"]["message"] for r in hooks.delivered()]
    assert sorted(m for m in delivered if "set aside" not in m) == sorted(e["message"] for _, e in good)
    # Reported: an ERROR event and an alert naming where the entry went.
    assert ("ERROR", "unreadable") in events(tmp_path)
    assert [m for m in delivered if "set aside" in m] == [
        f"a queued alert could not be read and was set aside: {aside}"
    ]
    assert spool(tmp_path) == []
    # Once: the next flush says nothing about it.
    again = alert(config, FLUSH, severity=None)
    assert again.returncode == 0 and "cannot read" not in again.stderr


def test_corrupt_dedup_state_is_set_aside_logged_and_the_alert_sent(hooks, tmp_path):
    config = hook_config(tmp_path, hooks)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "dedup.json").write_text('{"keys": {"CRITICAL DB')
    result = alert(config)
    assert result.returncode == 0 and len(hooks.delivered()) == 1
    assert "ignoring unreadable" in result.stderr and ("WARNING", "state") in events(tmp_path)
    assert list((tmp_path / "state").glob("dedup.json.corrupt-*"))
    # Recovered: dedup works again.
    assert "suppressed duplicate" in alert(config).stdout


def test_a_corrupt_hold_file_is_set_aside(hooks, tmp_path):
    config = hook_config(tmp_path, hooks)
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / ".held-webhook.json").write_text("{")
    result = alert(config)
    assert result.returncode == 0 and len(hooks.delivered()) == 1
    assert list((tmp_path / "spool").glob(".held-webhook.json.corrupt-*"))


# ------------------------------------------------------ concurrent flushes


def test_concurrent_flushes_deliver_each_alert_once(hooks, tmp_path):
    hooks.fail = 8
    config = hook_config(tmp_path, hooks, dedup_window_seconds=0)
    for n in range(8):
        assert alert(config, message=f"alert {n}").returncode == 75
    due(tmp_path)
    hooks.delay = 0.2  # each delivery takes a while: the flushes overlap
    procs = [
        subprocess.Popen([*alert_command(config), FLUSH], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    messages = [r["body"]["message"] for r in hooks.delivered()]
    assert sorted(messages) == sorted(f"alert {n}" for n in range(8)), results
    assert spool(tmp_path) == []
    assert sum("another --flush-spool is running" in out for out, _ in results) >= 1


def alert_command(config):
    from test_alert_command import COMMAND

    return [*COMMAND, "--config", str(config)]


# ------------------------------------------------------------ the app hangs


def test_a_hung_app_makes_the_probe_time_out_and_alert(silent, tmp_path):
    alert_cmd, sent = fake_alert_command(tmp_path)
    url = f"http://127.0.0.1:{silent.port}"
    monitor = base.Monitor(
        {
            "state_dir": str(tmp_path),
            "alert_command": str(alert_cmd),
            "host": "app1",
            "health": {"quick_url": f"{url}/health/quick/", "full_url": f"{url}/health/", "token": "t", "timeout": 1},
        }
    )
    started = time.monotonic()
    fired = probes.run_health(monitor, quick=True)
    assert time.monotonic() - started < 10
    assert fired == ["unavailable"]
    [call] = [json.loads(line) for line in sent.read_text().splitlines()]
    assert call["argv"][:4] == ["--severity", "CRITICAL", "--key", "app1:health:unavailable"]
    assert f"service unavailable: {url}/health/quick/: timed out: no answer within 1 s" in call["stdin"]


# ------------------------------------------------------ a full spool disk


def test_an_entry_that_cannot_be_rewritten_does_not_stop_the_flush(hooks, tmp_path, monkeypatch, capsys):
    """The first entry's failed attempt cannot be recorded (the disk is full): it stays queued as it was,
    and the entries after it are still delivered."""
    import errno

    from peerquest_ops.alerting import cli
    from peerquest_ops.alerting import spool as spool_module

    hooks.fail = 3
    config = hook_config(tmp_path, hooks, dedup_window_seconds=0)
    for text in ("first", "second", "third"):
        assert alert(config, message=text).returncode == 75
    entries = due(tmp_path)
    (first_path, first), *_ = spool(tmp_path)
    hooks.fail = 1  # the first entry fails again; the others go through

    def full_disk(path, data, mode=None):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(spool_module, "write_json", full_disk)
    assert cli.main(["--config", str(config), FLUSH]) == 75
    err = capsys.readouterr().err
    assert f"cannot record the attempt in {first_path}: No space left on device" in err, err
    delivered = sorted(r["body"]["message"] for r in hooks.delivered())
    assert delivered == sorted(e["message"] for e in entries if e["message"] != first["message"])
    assert spool(tmp_path) == [(first_path, first)]
    assert ("WARNING", "spool-unwritable") in events(tmp_path)
