"""peerquest-alert against a real SMTP server (aiosmtpd) on loopback."""

import email
import email.policy
import json
import os
import shutil
import socket
import ssl
import subprocess

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import PACKAGE_DIR, ROLES, package_command
from peerquest_ops.alerting import channels

ROLE = ROLES / "peerquest_alerting"
COMMAND = package_command("peerquest_ops.alerting.cli")
USER, PASSWORD = "alerts@peerquest.test", "smtp-pass-0123"
# Not any role's default: the email must name the configured directory, not a built-in one.
LOG_DIR = "/srv/site-logs/peerquest"
NO_ALERTMANAGER = {"enabled": True, "urls": [], "resolve_seconds": 1800, "instance": "", "runbook_base_url": ""}


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


def full_config(smtp_port, **smtp_overrides):
    """Every key the role renders (the program has no default for any): email only, no spool, dedup or log."""
    return {
        "subject": "[{severity}] PeerQuest Alert",
        "log_dir": LOG_DIR,
        "log_file": "",
        "state_dir": "",
        "spool_dir": "",
        "dedup_window_seconds": 0,
        "retry_base_seconds": 60,
        "retry_max_seconds": 3600,
        "retry_after_max_seconds": 3600,
        # INFO has no recipients, so it must not be routed to email.
        "routes": {"CRITICAL": ["email"], "WARNING": ["email"], "INFO": []},
        "selftest_channels": [],
        "http_timeout": 10,
        "ca_file": "",
        # The loopback relay takes AUTH without TLS; the tests of the refusal set this to false.
        "allow_insecure_transport": True,
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
        "slack": {"enabled": False, "webhook_url": ""},
        "discord": {"enabled": False, "webhook_url": ""},
        "webhook": {"enabled": False, "url": "", "token": ""},
        # As the role renders it by default: on, but no Alertmanager named, so the channels get the alerts.
        "alertmanager": NO_ALERTMANAGER,
    }


def save(tmp_path, config):
    path = tmp_path / "alerting.json"
    path.write_text(json.dumps(config))
    return path


def write_config(tmp_path, smtp_port, **smtp_overrides):
    return save(tmp_path, full_config(smtp_port, **smtp_overrides))


def alert(config, *args, stdin=None):
    return subprocess.run(
        [*COMMAND, "--config", str(config), *args],
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
    assert body[1:] == ["Severity: CRITICAL", "Message: DB down", "", f"Check logs at: {LOG_DIR}/"]


def test_recipients_follow_the_severity(smtp, tmp_path):
    controller, capture = smtp
    config = write_config(tmp_path, controller.port)
    assert alert(config, "--severity", "WARNING", stdin="approval failures high\n").returncode == 0
    # Routed nowhere on purpose: exit 0, and the output says it was not sent.
    result = alert(config, "--severity", "INFO", "--message", "digest")
    assert result.returncode == 0 and "INFO alert not sent: routes.INFO lists no channel" in result.stdout
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
        # A login over STARTTLS needs no permission.
        secure = full_config(controller.port, starttls=True, ca_file=str(cert))
        config = save(tmp_path, dict(secure, allow_insecure_transport=False))
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
    for path in (PACKAGE_DIR / "peerquest_ops" / "alerting").rglob("*.py"):
        assert "--password" not in path.read_text(), path


def test_config_is_required(tmp_path):
    # No built-in path: a forgotten --config must not quietly read some other file.
    for args in (["--check-config"], ["--severity", "CRITICAL", "--message", "x"], ["--flush-spool"]):
        result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2
        assert "the following arguments are required: --config" in result.stderr


def without(config, dotted):
    config = json.loads(json.dumps(config))
    *parents, last = dotted.split(".")
    section = config
    for name in parents:
        section = section[name]
    del section[last]
    return config


def key_paths(config, prefix=""):
    """Every key of the configuration, nested ones dotted; routes and recipients are data, not keys."""
    for key, value in config.items():
        yield prefix + key
        if isinstance(value, dict) and key not in ("routes", "recipients"):
            yield from key_paths(value, f"{prefix}{key}.")


@pytest.mark.parametrize("key", sorted(key_paths(full_config(25))))
def test_every_key_is_required(tmp_path, key):
    """No built-in default stands in for a value the configuration carries (log_dir included)."""
    config = save(tmp_path, without(full_config(25), key))
    for args in (["--check-config"], ["--severity", "CRITICAL", "--message", "x"]):
        result = alert(config, *args)
        assert result.returncode == 2 and f"{key}: missing" in result.stderr, result.stderr


def test_log_dir_must_be_an_absolute_path(tmp_path):
    for value in ("", "logs"):
        result = alert(save(tmp_path, dict(full_config(25), log_dir=value)), "--check-config")
        assert result.returncode == 2 and f"log_dir: must be an absolute path, got {value!r}" in result.stderr


@pytest.mark.parametrize(
    "recipients",
    [{"CRITICAL": ["oncall@peerquest.test"], "WARNING": []}, {"CRITICAL": ["oncall@peerquest.test"]}],
    ids=["empty list", "severity absent"],
)
def test_email_route_without_recipient_is_refused(smtp, tmp_path, recipients):
    """An alert routed to email with nobody to send it to used to be dropped with exit 0."""
    controller, capture = smtp
    config = full_config(controller.port)
    config["email"]["recipients"] = recipients
    path = save(tmp_path, config)
    expected = (
        "email.recipients.WARNING: empty, but routes.WARNING sends WARNING alerts by email; "
        "add a recipient or drop email from the route"
    )
    for args in (["--check-config"], ["--severity", "WARNING", "--message", "x"]):
        result = alert(path, *args)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert capture.messages == []


def test_login_without_tls_is_refused_unless_allowed(smtp, tmp_path):
    controller, capture = smtp
    config = full_config(controller.port)
    expected = (
        "email.smtp.user: an SMTP login over a connection without TLS would send the password in clear; "
        "turn on email.smtp.starttls or email.smtp.ssl, or set allow_insecure_transport: true"
    )
    refused = save(tmp_path, dict(config, allow_insecure_transport=False))
    for args in (["--check-config"], ["--severity", "CRITICAL", "--message", "x"]):
        result = alert(refused, *args)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert PASSWORD not in result.stdout + result.stderr
    assert capture.messages == []
    # Without a login there is no password to protect; with the permission the login goes ahead.
    no_login = full_config(controller.port, user="", password="")
    assert alert(save(tmp_path, dict(no_login, allow_insecure_transport=False)), "--check-config").returncode == 0
    result = alert(save(tmp_path, config), "--severity", "CRITICAL", "--message", "allowed")
    assert result.returncode == 0, result.stderr
    assert len(capture.messages) == 1


def test_login_without_tls_is_refused_at_send_time(smtp):
    """A configuration that skipped config_problems still cannot log in in clear."""
    controller, capture = smtp
    config = dict(full_config(controller.port), allow_insecure_transport=False)
    delivery = {"channel": "email", "severity": "CRITICAL", "key": "k", "message": "x", "created": 0}
    delivery["recipients"] = ["oncall@peerquest.test"]
    with pytest.raises(channels.DeliveryError, match="email refused: email.smtp.user: an SMTP login"):
        channels.deliver(delivery, config)
    assert capture.messages == []
    channels.deliver(delivery, dict(config, allow_insecure_transport=True))
    assert len(capture.messages) == 1


def test_subject_must_name_the_severity_only(tmp_path):
    for subject in ("PeerQuest Alert", "[{severity}] {host}"):
        result = alert(save(tmp_path, dict(full_config(25), subject=subject)), "--check-config")
        assert result.returncode == 2 and "subject: must contain {severity}" in result.stderr


# What the role deploys: its templates rendered with Ansible's own templating and
# the roles' defaults (the same code path as the template module).


def render(template, **variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    values = {}
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        values.update(yaml.safe_load(defaults.read_text()))
    values.update(yaml.safe_load((ROLE / "vars" / "main.yml").read_text()))
    values.update(ansible_managed="Ansible managed", **variables)
    values = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in values.items()}
    templar = Templar(loader=DataLoader(), variables=values)
    return templar.template(trust_as_template((ROLE / "templates" / template).read_text()))


# A site that sets what the role's defaults leave empty.
SITE = {
    # What a play always defines (the instance label of alerts sent through Alertmanager).
    "inventory_hostname": "app1.peerquest.test",
    "peerquest_alerting_smtp_host": "smtp.peerquest.test",
    "peerquest_alerting_smtp_user": USER,
    "peerquest_alerting_smtp_password": PASSWORD,
    "peerquest_alerting_email_recipients": {
        "CRITICAL": ["oncall@peerquest.test"],
        "WARNING": ["team@peerquest.test"],
        "INFO": ["team@peerquest.test"],
    },
}


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({}, None),
        ({"peerquest_logdir_path": "/srv/logs"}, None),
        (
            {"peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.test"], "WARNING": [], "INFO": []}},
            "email.recipients.WARNING: empty, but routes.WARNING sends WARNING alerts by email",
        ),
        ({"peerquest_alerting_smtp_starttls": False}, "email.smtp.user: an SMTP login over a connection without TLS"),
        ({"peerquest_alerting_smtp_starttls": False, "peerquest_alerting_allow_insecure_transport": True}, None),
        (
            {"peerquest_alerting_slack_enabled": True, "peerquest_alerting_slack_webhook_url": "http://hooks.test/s"},
            "slack.webhook_url: an http:// URL would send the webhook's secret in clear",
        ),
    ],
    ids=["site", "log dir", "no recipient", "login in clear", "insecure allowed", "slack over http"],
)
def test_rendered_settings_pass_the_validate_step(tmp_path, variables, expected):
    """The file the role writes passes (or fails) the program's --check-config, its `validate:` step."""
    rendered = render("alerting.json.j2", **dict(SITE, **variables))
    config = json.loads(rendered)
    assert config["log_dir"] == variables.get("peerquest_logdir_path", config["log_dir"])
    path = tmp_path / "alerting.json"
    path.write_text(rendered)
    result = alert(path, "--check-config")
    if expected is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="the wrapper runs /usr/bin/python3")
def test_wrapper_runs_the_program_with_the_settings(tmp_path):
    lib_dir, config_dir = tmp_path / "lib dir", tmp_path / "conf's dir"
    lib_dir.mkdir()
    config_dir.mkdir()
    program = lib_dir / "peerquest-alert"
    program.write_text(render("peerquest-alert.py.j2", peerquest_app_ops_python_dir=str(PACKAGE_DIR)))
    config_path = config_dir / "alerting.json"
    config_path.write_text(json.dumps(full_config(25)))
    wrapper = tmp_path / "peerquest-alert"
    wrapper.write_text(
        render(
            "peerquest-alert.sh.j2",
            peerquest_app_ops_lib_dir=str(lib_dir),
            peerquest_alerting_config_path=str(config_path),
        )
    )
    wrapper.chmod(0o755)
    lines = wrapper.read_text().splitlines()
    assert lines[0] == "#!/bin/sh" and "Ansible managed" in wrapper.read_text()
    assert lines[-1].startswith("exec /usr/bin/python3 ") and lines[-1].endswith(' "$@"')
    result = subprocess.run([str(wrapper), "--check-config"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{config_path} is valid" in result.stdout
    # Arguments reach the program unchanged.
    result = subprocess.run(
        [str(wrapper), "--severity", "FATAL"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2 and "invalid choice: 'FATAL'" in result.stderr
