"""peerquest-alert against a real SMTP server (aiosmtpd) on loopback."""

import email
import email.policy
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import ROLES

COMMAND = ROLES / "peerquest_alerting" / "files" / "peerquest-alert"
USER, PASSWORD = "alerts@peerquest.test", "smtp-pass-0123"


class Capture:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append({"rcpt": envelope.rcpt_tos, "msg": parsed, "user": session.authenticated})
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tls_context=None):
    capture = Capture()
    # AUTH without TLS only on loopback, to keep the plain case simple.
    kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": tls_context is not None}
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=True)
    controller = Controller(capture, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller, capture


@pytest.fixture
def smtp():
    controller, capture = start_server()
    yield controller, capture
    controller.stop()


def write_config(tmp_path, smtp_port, **smtp_overrides):
    config = {
        "subject": "[{severity}] PeerQuest Alert",
        "log_dir": "/var/log/peerquest",
        "email": {
            "enabled": True,
            "from": "monitoring@peerquest.test",
            "recipients": {
                "CRITICAL": ["oncall@peerquest.test", "lead@peerquest.test"],
                "WARNING": ["team@peerquest.test"],
                "INFO": [],
            },
            "smtp": dict(
                {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "starttls": False,
                    "ssl": False,
                    "user": USER,
                    "password": PASSWORD,
                    "ca_file": "",
                    "timeout": 5,
                },
                **smtp_overrides,
            ),
        },
    }
    path = tmp_path / "alerting.json"
    path.write_text(json.dumps(config))
    return path


def alert(config, *args, stdin=None):
    return subprocess.run(
        [sys.executable, str(COMMAND), "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_critical_alert_arrives_with_subject_and_body(smtp, tmp_path):
    controller, capture = smtp
    result = alert(write_config(tmp_path, controller.port), "--severity", "critical", "--message", "DB down")
    assert result.returncode == 0, result.stderr
    [received] = capture.messages
    msg = received["msg"]
    assert msg["Subject"] == "[CRITICAL] PeerQuest Alert"
    assert received["rcpt"] == ["oncall@peerquest.test", "lead@peerquest.test"]
    assert received["user"] is True
    body = msg.get_content().splitlines()
    assert body[0].startswith("Time: ")
    assert body[1:] == ["Severity: CRITICAL", "Message: DB down", "", "Check logs at: /var/log/peerquest/"]


def test_recipients_follow_the_severity(smtp, tmp_path):
    controller, capture = smtp
    config = write_config(tmp_path, controller.port)
    assert alert(config, "--severity", "WARNING", stdin="approval failures high\n").returncode == 0
    result = alert(config, "--severity", "INFO", "--message", "digest")
    assert result.returncode == 0 and "no recipient" in result.stdout
    [received] = capture.messages
    assert received["rcpt"] == ["team@peerquest.test"]
    assert received["msg"]["Subject"] == "[WARNING] PeerQuest Alert"
    assert "Message: approval failures high" in received["msg"].get_content()


def test_wrong_password_fails_clearly(smtp, tmp_path):
    controller, capture = smtp
    result = alert(
        write_config(tmp_path, controller.port, password="wrong"), "--severity", "CRITICAL", "--message", "x"
    )
    assert result.returncode == 1
    assert f"not delivered: email via 127.0.0.1:{controller.port} failed" in result.stderr
    assert "wrong" not in result.stderr and capture.messages == []


def test_server_down_fails_clearly(tmp_path):
    result = alert(write_config(tmp_path, free_port()), "--severity", "CRITICAL", "--message", "x")
    assert result.returncode == 1
    assert "CRITICAL alert not delivered" in result.stderr and "Connection refused" in result.stderr


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"password": ""}, "email.smtp.password: required when email.smtp.user is set"),
        ({"host": ""}, "email.smtp.host: required when email is enabled"),
        ({"port": 70000}, "email.smtp.port: must be 1-65535"),
        ({"starttls": True, "ssl": True}, "starttls and ssl exclude each other"),
    ],
)
def test_bad_config_is_rejected(tmp_path, change, expected):
    config = write_config(tmp_path, 25, **change)
    for args in (["--check-config"], ["--severity", "CRITICAL", "--message", "x"]):
        result = alert(config, *args)
        assert result.returncode == 2 and expected in result.stderr


def test_bad_address_is_rejected(tmp_path):
    path = write_config(tmp_path, 25)
    config = json.loads(path.read_text())
    config["email"]["recipients"]["WARNING"] = ["team-at-peerquest"]
    path.write_text(json.dumps(config))
    result = alert(path, "--check-config")
    assert result.returncode == 2
    assert "email.recipients.WARNING: not an email address: 'team-at-peerquest'" in result.stderr


def test_good_config_checks(tmp_path):
    assert alert(write_config(tmp_path, 25), "--check-config").returncode == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_starttls_with_a_private_ca(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller, capture = start_server(context)
    try:
        config = write_config(tmp_path, controller.port, starttls=True, ca_file=str(cert))
        result = alert(config, "--severity", "CRITICAL", "--message", "over TLS")
        assert result.returncode == 0, result.stderr
        assert len(capture.messages) == 1
        # Without the CA the relay's certificate must be refused, not trusted blindly.
        untrusted = write_config(tmp_path, controller.port, starttls=True)
        result = alert(untrusted, "--severity", "CRITICAL", "--message", "x")
        assert result.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    finally:
        controller.stop()


def test_password_never_on_the_command_line():
    source = COMMAND.read_text()
    assert "--password" not in source
    assert os.access(COMMAND, os.X_OK)
