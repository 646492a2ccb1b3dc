"""A wrong inventory value stops phase 1 before any host changes.

Runs the real playbooks/phase1.yml in check mode against this machine: the
preflight play must fail, naming the variable, and the deploying play must
never start.
"""

import json

import pytest
from conftest import ROLES, ROOT, VENV_BIN, run

# Valid values for a run against this machine (the app account is root here).
BASE = {
    "peerquest_app_user": "root",
    "peerquest_app_group": "root",
    "peerquest_app_python": str(VENV_BIN / "python"),
    "peerquest_alerting_smtp_host": "smtp.peerquest.example.com",
    "peerquest_alerting_smtp_user": "alerts@peerquest.example.com",
    "peerquest_alerting_smtp_password": "a-password-that-must-not-leak",  # contains LEAK
    # Every severity the default routes send by email has someone to receive it.
    "peerquest_alerting_email_recipients": {
        "CRITICAL": ["oncall@peerquest.example.com"],
        "WARNING": ["team@peerquest.example.com"],
        "INFO": ["team@peerquest.example.com"],
    },
}
# Secrets put into BASE or a case contain this; no output may show it.
LEAK = "must-not-leak"
HTTP_HOOK = {
    "peerquest_alerting_webhook_enabled": True,
    "peerquest_alerting_webhook_url": f"http://gw.peerquest.example.com/hook-{LEAK}",
    "peerquest_alerting_routes": {"CRITICAL": ["email", "webhook"], "WARNING": ["email"], "INFO": ["email"]},
}
RETENTION = {"DEBUG": 7, "INFO": 30, "WARNING": 90, "ERROR": 365, "CRITICAL": "forever"}

CASES = {
    "unknown log level": (
        {"peerquest_logging_handlers_overrides": {"file": {"level": "VERBOSE"}}},
        "peerquest_logging_handlers.file.level: unknown log level 'VERBOSE'",
    ),
    "unknown logger level": (
        {"peerquest_logging_loggers_overrides": {"quests": {"level": "LOUD"}}},
        "peerquest_logging_loggers.quests.level: unknown log level 'LOUD'",
    ),
    "logger with unknown handler": (
        {"peerquest_logging_loggers_overrides": {"quests": {"handlers": ["nope"]}}},
        "peerquest_logging_loggers.quests.handlers: no handler named 'nope'",
    ),
    "negative retention": (
        {"peerquest_logrotate_retention_days": dict(RETENTION, INFO=-5)},
        "peerquest_logrotate_retention_days.INFO: retention must be at least 1 day, got -5",
    ),
    "non-integer retention": (
        {"peerquest_logrotate_retention_days": dict(RETENTION, ERROR="a year")},
        "peerquest_logrotate_retention_days.ERROR: retention must be a whole number of days or 'forever'",
    ),
    "missing SMTP password": (
        {"peerquest_alerting_smtp_password": ""},
        "peerquest_alerting_smtp_password is empty but peerquest_alerting_smtp_user is set and email is on",
    ),
    "invalid recipient address": (
        {"peerquest_alerting_email_recipients": {"CRITICAL": ["oncall-at-peerquest"]}},
        "peerquest_alerting_email_recipients.CRITICAL: not an email address: 'oncall-at-peerquest'",
    ),
    "invalid sender address": (
        {"peerquest_alerting_email_from": "monitoring@"},
        "peerquest_alerting_email_from: not an email address: 'monitoring@'",
    ),
    "STARTTLS without a host": (
        {"peerquest_alerting_smtp_host": "", "peerquest_alerting_smtp_starttls": True},
        "peerquest_alerting_smtp_host is empty but peerquest_alerting_email_enabled is true and "
        "peerquest_alerting_smtp_starttls asks for STARTTLS",
    ),
    "wrong type": (
        {"peerquest_health_min_free_disk_mb": "plenty"},
        "peerquest_health_min_free_disk_mb",
    ),
    "not a choice": (
        {"peerquest_logrotate_frequency": "yearly"},
        "peerquest_logrotate_frequency",
    ),
    "world-readable log directory": (
        {"peerquest_logdir_dir_mode": "2755"},
        "peerquest_logdir_dir_mode must be an octal mode giving others nothing",
    ),
    "group-writable log files": (
        {"peerquest_logdir_file_mode": "0660"},
        "peerquest_logdir_file_mode must let the app read and write, the reader group at most read",
    ),
    "email route without recipients": (
        {"peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.example.com"], "WARNING": []}},
        "peerquest_alerting_email_recipients.WARNING: empty, but peerquest_alerting_routes.WARNING sends WARNING "
        "alerts by email; add a recipient or drop email from the route",
    ),
    "email route, severity absent from recipients": (
        {
            "peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.example.com"]},
            "peerquest_alerting_routes": {"CRITICAL": ["email"], "INFO": ["email"]},
        },
        "peerquest_alerting_email_recipients.INFO: empty, but peerquest_alerting_routes.INFO sends INFO alerts",
    ),
    "SMTP login without TLS": (
        {"peerquest_alerting_smtp_starttls": False, "peerquest_alerting_smtp_ssl": False},
        "peerquest_alerting_smtp_user: an SMTP login over a connection without TLS would send the password in "
        "clear; turn on peerquest_alerting_smtp_starttls or _ssl, or set peerquest_alerting_allow_insecure_transport: "
        "true",
    ),
    "webhook over http": (
        HTTP_HOOK,
        "peerquest_alerting_webhook_url: an http:// URL would send the webhook's secret in clear; use https:// or "
        "set peerquest_alerting_allow_insecure_transport: true",
    ),
    "slack and discord over http": (
        {
            "peerquest_alerting_slack_enabled": True,
            "peerquest_alerting_slack_webhook_url": f"http://hooks.slack.example.com/services/{LEAK}",
            "peerquest_alerting_discord_enabled": True,
            "peerquest_alerting_discord_webhook_url": f"http://discord.example.com/api/webhooks/{LEAK}",
            "peerquest_alerting_routes": {"CRITICAL": ["slack", "discord"]},
        },
        "peerquest_alerting_slack_webhook_url, peerquest_alerting_discord_webhook_url: an http:// URL",
    ),
    "missing app account": (
        {"peerquest_app_user": "no-such-account-here"},
        "peerquest_app_user: account 'no-such-account-here' does not exist",
    ),
}


def run_phase1(tmp_path, ansible_env, overrides, *options):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"[peerquest_app]\nlocalhost ansible_connection=local ansible_python_interpreter={VENV_BIN}/python\n"
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(dict(BASE, **overrides)))
    return run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            f"@{extra}",
            "--check",
            *options,
            str(ROOT / "playbooks" / "phase1.yml"),
        ],
        cwd=ROOT,
        env=ansible_env,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_stops_before_any_change(case, tmp_path, ansible_env):
    overrides, expected = CASES[case]
    result = run_phase1(tmp_path, ansible_env, overrides)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in output, output
    assert "PLAY [Phase 1 - basic monitoring]" not in output, "the deploying play started"
    assert LEAK not in output


VALID = {
    "defaults": {},
    # What the sandbox does: a plain capture relay with a login, webhooks over http.
    "insecure transport allowed": dict(
        HTTP_HOOK,
        peerquest_alerting_smtp_starttls=False,
        peerquest_alerting_allow_insecure_transport=True,
    ),
    # A relay without a login learns no secret: plain SMTP needs no permission.
    "plain SMTP without a login": {"peerquest_alerting_smtp_starttls": False, "peerquest_alerting_smtp_user": ""},
    # A severity without recipients is fine when it is not routed to email.
    "unrouted severity without recipients": {
        "peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.example.com"], "INFO": []},
        "peerquest_alerting_routes": {"CRITICAL": ["email"], "INFO": []},
    },
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_values_pass_preflight(case, tmp_path, ansible_env):
    # --tags preflight: the deploying play needs a real app host, not this machine.
    result = run_phase1(tmp_path, ansible_env, VALID[case], "--tags", "preflight")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "PLAY [Phase 1 - basic monitoring]" in output, output
    assert LEAK not in output


@pytest.mark.parametrize("env", ["production", "staging"])
def test_example_inventories_pass_every_phases_preflight(env, tmp_path, ansible_env):
    """The example inventories are valid input (run here, with this machine standing in for the hosts)."""
    password = tmp_path / "vault-password"
    password.write_text(f"example-{env}-vault-password\n")
    env_vars = dict(ansible_env, ANSIBLE_VAULT_IDENTITY_LIST=f"{env}@{password}")
    result = run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(ROOT / "inventory" / env),
            "--connection",
            "local",
            "-e",
            f"ansible_python_interpreter={VENV_BIN}/python",
            "-e",
            "peerquest_app_user=root",
            "--tags",
            "preflight",
            "--check",
            str(ROOT / "site.yml"),
        ],
        cwd=ROOT,
        env=env_vars,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every role's checks ran (so both phases'), whatever the plays that run them are called.
    for role in sorted(path.parent.parent.name for path in ROLES.glob("*/tasks/preflight.yml")):
        assert f"TASK [{role} : " in output, f"{role}: its preflight did not run"
    assert "replace-with-the" not in output  # vaulted values stay out of the output
