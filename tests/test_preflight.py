"""A wrong inventory value stops the run before any host changes.

Runs the real playbooks (phase1.yml, phase2.yml) in check mode against this
machine, with `--tags preflight` so that nothing past the checks could run
here even if a check were missing: the preflight play must fail, naming the
variable, and the deploying play must never start. Each case is one
inventory host (this machine again) with its wrong setting; cases aimed at the
same task share a run (see run_cases).

Every check in every roles/*/tasks/preflight.yml (each assert, each item of a
loop-style assert, each condition of a multi-condition assert, each argument
spec) must be made to fail by at least one case below, and the case must fail
at that very check: a small callback plugin records which task, item and
condition failed. `python tests/test_preflight.py` prints the checks and the
cases that cover them.
"""

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import yaml
from conftest import ROLES, ROOT, VENV_BIN, run

# Valid values for a run against this machine (the app account is root here).
BASE = {
    "peerquest_app_user": "root",
    "peerquest_app_group": "root",
    "peerquest_app_python": str(VENV_BIN / "python"),
    "peerquest_alerting_smtp_host": "smtp.peerquest.example.com",
    "peerquest_alerting_smtp_user": "alerts@peerquest.example.com",
    "peerquest_alerting_smtp_password": "a-password-that-must-not-leak",  # contains LEAK
    # /health/ is closed unless opened on purpose: a token is required.
    "peerquest_health_token": "health-token-that-must-not-leak",  # contains LEAK
    # Every severity the default routes send by email has someone to receive it.
    "peerquest_alerting_email_recipients": {
        "CRITICAL": ["oncall@peerquest.example.com"],
        "WARNING": ["team@peerquest.example.com"],
        "INFO": ["team@peerquest.example.com"],
    },
    # Log forwarding: every case host is also a monitoring host (see run_cases), so both ends are checked.
    "peerquest_logship_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "peerquest_logship_tls_cert": "-----BEGIN CERTIFICATE-----\napp\n-----END CERTIFICATE-----\n",
    "peerquest_logship_tls_key": "-----BEGIN PRIVATE KEY-----\nkey-must-not-leak\n-----END PRIVATE KEY-----\n",
    "peerquest_logstore_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "peerquest_logstore_tls_cert": "-----BEGIN CERTIFICATE-----\nmon\n-----END CERTIFICATE-----\n",
    "peerquest_logstore_tls_key": "-----BEGIN PRIVATE KEY-----\nkey-must-not-leak\n-----END PRIVATE KEY-----\n",
    # peerquest-alert posts to every monitoring host's Alertmanager (each case host): over https, as it must
    # unless insecure transport is allowed.
    "peerquest_alertmanager_external_url": "https://mon.peerquest.example.com:9093",
}
# Secrets put into BASE or a case contain this; no output may show it.
LEAK = "must-not-leak"
HTTP_HOOK = {
    "peerquest_alerting_webhook_enabled": True,
    "peerquest_alerting_webhook_url": f"http://gw.peerquest.example.com/hook-{LEAK}",
    "peerquest_alerting_routes": {"CRITICAL": ["email", "webhook"], "WARNING": ["email"], "INFO": ["email"]},
}
RETENTION = {"DEBUG": 7, "INFO": 30, "WARNING": 90, "ERROR": 365, "CRITICAL": "forever"}
PATTERN = {"name": "rollback", "label": "Rolled back", "regex": "rolled back", "severity": "CRITICAL", "threshold": 0}
SECURITY_EVENT = {
    "name": "failed_login",
    "regex": "(?i)failed login",
    "severity": "WARNING",
    "threshold": 4,
    "window": 15,
}
RATE = {
    "name": "approval",
    "label": "Application approval",
    "failure": "Application approval failed",
    "success": "Application approved",
    "max_percent": 5,
    "min_events": 20,
    "severity": "WARNING",
}
DEPLOYING_PLAYS = ("PLAY [Phase 1 - ", "PLAY [Phase 2 - ", "PLAY [Phase 3 - ")


def spec(role):
    return f"{role} : Validate {role} variables against meta/argument_specs.yml"


# ---------------------------------------------------------------- the cases
# name: (target check, overrides of BASE, text the failure must show).
# A target is "role : task name", and for a check with several items or
# conditions "role : task name | text": a piece of exactly one item's msg (or
# string item) or of exactly one condition.
APP_PATHS = (
    "peerquest_app_dir",
    "peerquest_app_python",
    "peerquest_app_ops_python_dir",
    "peerquest_app_ops_lib_dir",
    "peerquest_app_ops_config_dir",
    "peerquest_app_ops_state_dir",
    "peerquest_app_integrity_result_file",
)
ALERTING_TIMINGS = (
    "peerquest_alerting_dedup_window_minutes must be >= 0, peerquest_alerting_retry_base_seconds > 0, "
    "peerquest_alerting_retry_max_seconds >= the base, peerquest_alerting_log_retention_days > 0, "
    "peerquest_alerting_smtp_timeout and peerquest_alerting_http_timeout > 0"
)
ROUTES = "peerquest_alerting_routes / peerquest_alerting_selftest_channels: every channel must be one that is enabled"
THRESHOLDS = "peerquest_monitors : Check thresholds and windows | "
REVIEWS = "peerquest_monitors : Check the reviews' targets | "

CASES = {
    # ------------------------------------------------------ peerquest_app
    "app: not a boolean": (
        spec("peerquest_app"),
        {"peerquest_app_reload_enabled": "sometimes"},
        "peerquest_app_reload_enabled",
    ),
    **{
        f"app: relative {var}": (
            f"peerquest_app : Check that paths are absolute | {var}",
            {var: "relative/path"},
            f"{var} must be an absolute path, got 'relative/path'",
        )
        for var in APP_PATHS
    },
    "missing app account": (
        "peerquest_app : Check that the app account exists",
        {"peerquest_app_user": "no-such-account-here"},
        "peerquest_app_user: account 'no-such-account-here' does not exist",
    ),
    "app: local URL with a path": (
        "peerquest_app : Check the app's local URL and Host header | peerquest_app_local_url is match",
        {"peerquest_app_local_url": "http://127.0.0.1:8000/"},
        "peerquest_app_local_url must be a base URL like http://127.0.0.1:8000 (no path, no trailing slash), "
        "got 'http://127.0.0.1:8000/'",
    ),
    "app: Host header with a path": (
        "peerquest_app : Check the app's local URL and Host header | peerquest_app_http_host is match",
        {"peerquest_app_http_host": "questhub.internal/health"},
        "peerquest_app_http_host must be a host name (optionally :port) or empty, got 'questhub.internal/health'",
    ),
    "app: public URL with a path": (
        "peerquest_app : Check the app's public URL",
        {"peerquest_app_public_url": "http://app1.example.com:8000/health/"},
        "peerquest_app_public_url must be a base URL the monitoring hosts reach the app at, like "
        "http://app1.example.com:8000 (no path, no trailing slash), got 'http://app1.example.com:8000/health/'",
    ),
    # -------------------------------------------------- peerquest_package
    "package: not a choice": (
        spec("peerquest_package"),
        {"peerquest_package_state": "installed"},
        "peerquest_package_state",
    ),
    # --------------------------------------------------- peerquest_logdir
    "logdir: not a choice": (
        spec("peerquest_logdir"),
        {"peerquest_logdir_state": "gone"},
        "peerquest_logdir_state",
    ),
    "logdir: relative path": (
        "peerquest_logdir : Check the log directory path | is match('/')",
        {"peerquest_logdir_path": "var/log/peerquest"},
        "peerquest_logdir_path must be an absolute directory of its own, got 'var/log/peerquest'",
    ),
    "logdir: a shared directory": (
        "peerquest_logdir : Check the log directory path | not in",
        {"peerquest_logdir_path": "/var/log"},
        "peerquest_logdir_path must be an absolute directory of its own, got '/var/log'",
    ),
    "logdir: directory mode not octal": (
        "peerquest_logdir : Check the directory mode | is match(",
        {"peerquest_logdir_dir_mode": "u=rwx,g=rx"},
        "peerquest_logdir_dir_mode must be an octal mode giving the app (owner) rwx, others nothing and the reader "
        "group no write (e.g. \"2750\"), got 'u=rwx,g=rx'",
    ),
    "world-readable log directory": (
        "peerquest_logdir : Check the directory mode | ) % 8 == 0",
        {"peerquest_logdir_dir_mode": "2755"},
        "peerquest_logdir_dir_mode must be an octal mode giving the app (owner) rwx, others nothing",
    ),
    "logdir: group-writable directory": (
        "peerquest_logdir : Check the directory mode | // 8) % 8 in",
        {"peerquest_logdir_dir_mode": "2770"},
        "peerquest_logdir_dir_mode must be an octal mode giving the app (owner) rwx, others nothing and the reader "
        "group no write (e.g. \"2750\"), got '2770'",
    ),
    "logdir: directory the app cannot write": (
        "peerquest_logdir : Check the directory mode | // 64) % 8 == 7",
        {"peerquest_logdir_dir_mode": "2550"},
        "peerquest_logdir_dir_mode must be an octal mode giving the app (owner) rwx, others nothing and the reader "
        "group no write (e.g. \"2750\"), got '2550'",
    ),
    "logdir: file mode not octal": (
        "peerquest_logdir : Check the file mode | is match(",
        {"peerquest_logdir_file_mode": "rw-r-----"},
        "peerquest_logdir_file_mode must let the app read and write, the reader group at most read and others "
        "nothing (e.g. \"0640\"), got 'rw-r-----'",
    ),
    "logdir: world-readable files": (
        "peerquest_logdir : Check the file mode | ) % 8 == 0",
        {"peerquest_logdir_file_mode": "0644"},
        "peerquest_logdir_file_mode must let the app read and write, the reader group at most read and others "
        "nothing (e.g. \"0640\"), got '0644'",
    ),
    "group-writable log files": (
        "peerquest_logdir : Check the file mode | // 8) % 8 in",
        {"peerquest_logdir_file_mode": "0660"},
        "peerquest_logdir_file_mode must let the app read and write, the reader group at most read",
    ),
    "logdir: files the app cannot write": (
        "peerquest_logdir : Check the file mode | // 64 in",
        {"peerquest_logdir_file_mode": "0440"},
        "peerquest_logdir_file_mode must let the app read and write, the reader group at most read and others "
        "nothing (e.g. \"0640\"), got '0440'",
    ),
    # -------------------------------------------------- peerquest_logging
    "logging: not a boolean": (
        spec("peerquest_logging"),
        {"peerquest_logging_disable_existing_loggers": "sometimes"},
        "peerquest_logging_disable_existing_loggers",
    ),
    "logging: root with a misspelt key": (
        spec("peerquest_logging"),
        {"peerquest_logging_root": {"handler": ["error_file"], "level": "WARNING"}},
        "peerquest_logging_root.handler. Supported parameters include: filters, handlers, level.",
    ),
    # The filter's rules one by one: tests/test_logging_config.py.
    "unknown log level": (
        "peerquest_logging : Check handlers, loggers and levels",
        {"peerquest_logging_handlers_overrides": {"file": {"level": "VERBOSE"}}},
        "peerquest_logging_handlers.file.level: unknown log level 'VERBOSE'",
    ),
    "unknown logger level": (
        "peerquest_logging : Check handlers, loggers and levels",
        {"peerquest_logging_loggers_overrides": {"quests": {"level": "LOUD"}}},
        "peerquest_logging_loggers.quests.level: unknown log level 'LOUD'",
    ),
    "logger with unknown handler": (
        "peerquest_logging : Check handlers, loggers and levels",
        {"peerquest_logging_loggers_overrides": {"quests": {"handlers": ["nope"]}}},
        "peerquest_logging_loggers.quests.handlers: no handler named 'nope'",
    ),
    "logging: unknown log format": (
        spec("peerquest_logging"),
        {"peerquest_logging_format": "xml"},
        "value of peerquest_logging_format must be one of: text, json, got: xml",
    ),
    "logging: DEBUG file without loggers": (
        "peerquest_logging : Check the DEBUG file",
        {"peerquest_logging_debug_enabled": True, "peerquest_logging_debug_loggers": []},
        "peerquest_logging_debug_enabled is true but peerquest_logging_debug_loggers is empty",
    ),
    # --------------------------------------------------- peerquest_health
    "wrong type": (
        spec("peerquest_health"),
        {"peerquest_health_min_free_disk_mb": "plenty"},
        "peerquest_health_min_free_disk_mb",
    ),
    "health: integrity result never too old": (
        "peerquest_health : Check the health settings | peerquest_health_integrity_max_age_hours",
        {"peerquest_health_integrity_max_age_hours": 0},
        "peerquest_health_integrity_max_age_hours must be > 0, got 0",
    ),
    "health: negative free disk": (
        "peerquest_health : Check the health settings | peerquest_health_min_free_disk_mb",
        {"peerquest_health_min_free_disk_mb": -1},
        "peerquest_health_min_free_disk_mb must be >= 0, got -1",
    ),
    "health: model without its app label": (
        "peerquest_health : Check the health settings | peerquest_health_models",
        # Every model the default peerquest_health_metrics_models names (it reads them from here).
        {
            "peerquest_health_models": {
                "applications": "applications.Application",
                "quests": "quests.Quest",
                "participants": "QuestParticipant",
            }
        },
        "peerquest_health_models: every value must be 'app_label.ModelName', got \"QuestParticipant\"",
    ),
    "health: local URL without a scheme": (
        "peerquest_health : Check the health settings | peerquest_health_local_url",
        {"peerquest_health_local_url": "127.0.0.1:8000"},
        "peerquest_health_local_url must be an http(s) URL, got '127.0.0.1:8000'",
    ),
    "health: short token": (
        "peerquest_health : Check the health settings | at least 16 characters",
        {"peerquest_health_token": LEAK},
        f"peerquest_health_token must be at least 16 characters when set, got {len(LEAK)}",
    ),
    "health: no token and not explicitly open": (
        "peerquest_health : Check the health settings | would answer anyone",
        {"peerquest_health_token": ""},
        "peerquest_health_token is empty, so /health/ would answer anyone: set peerquest_health_token",
    ),
    "health: open and a token": (
        "peerquest_health : Check the health settings | would ignore the token",
        {"peerquest_health_open": True},
        "peerquest_health_open is true but peerquest_health_token is set",
    ),
    "health: metric named in capitals": (
        "peerquest_health : Check the health settings | peerquest_health_metrics_models",
        {"peerquest_health_metrics_models": {"Quests": {"model": "quests.Quest", "status_field": "status"}}},
        "peerquest_health_metrics_models: every key must be lower case letters, digits and _ (it ends the metric's "
        "name) and every value {model: 'app_label.ModelName', status_field: field name}, got {\"Quests\": "
        '{"model": "quests.Quest", "status_field": "status"}}',
    ),
    # ------------------------------------------------- peerquest_alerting
    "alerting: Alertmanager URL not http(s)": (
        "peerquest_alerting : Check the Alertmanager delivery settings | must be an http(s) URL (the Alertmanager",
        {"peerquest_alerting_alertmanager_urls": ["https://mon1.peerquest.example.com:9093", "mon2:9093"]},
        "peerquest_alerting_alertmanager_urls[1]: must be an http(s) URL",
    ),
    "alerting: Alertmanager over http": (
        "peerquest_alerting : Check the Alertmanager delivery settings | an http:// Alertmanager URL",
        {"peerquest_alerting_alertmanager_urls": ["http://mon1.peerquest.example.com:9093"]},
        "peerquest_alerting_alertmanager_urls[0]: an http:// Alertmanager URL would send alerts in clear",
    ),
    "alerting: Alertmanager resolve period 0": (
        "peerquest_alerting : Check the Alertmanager delivery settings | resolve_minutes must be > 0",
        {"peerquest_alerting_alertmanager_resolve_minutes": 0},
        "peerquest_alerting_alertmanager_resolve_minutes must be > 0",
    ),
    "alerting: runbook URL not http(s)": (
        "peerquest_alerting : Check the Alertmanager delivery settings | peerquest_alerting_runbook_base_url",
        {"peerquest_alerting_runbook_base_url": "runbook.html"},
        "peerquest_alerting_runbook_base_url must be empty or an http(s) URL",
    ),
    "alerting: not a port number": (
        spec("peerquest_alerting"),
        {"peerquest_alerting_smtp_port": "twenty-five"},
        "peerquest_alerting_smtp_port",
    ),
    "alerting: STARTTLS and SSL": (
        "peerquest_alerting : Check the SMTP settings | exclude each other",
        {"peerquest_alerting_smtp_ssl": True},
        "peerquest_alerting_smtp_starttls and peerquest_alerting_smtp_ssl exclude each other; set one to false",
    ),
    "STARTTLS without a host": (
        "peerquest_alerting : Check the SMTP settings | peerquest_alerting_smtp_host is empty",
        {"peerquest_alerting_smtp_host": "", "peerquest_alerting_smtp_starttls": True},
        "peerquest_alerting_smtp_host is empty but peerquest_alerting_email_enabled is true and "
        "peerquest_alerting_smtp_starttls asks for STARTTLS",
    ),
    "missing SMTP password": (
        "peerquest_alerting : Check the SMTP settings | peerquest_alerting_smtp_password is empty",
        {"peerquest_alerting_smtp_password": ""},
        "peerquest_alerting_smtp_password is empty but peerquest_alerting_smtp_user is set and email is on",
    ),
    "alerting: port 0": (
        "peerquest_alerting : Check the SMTP settings | peerquest_alerting_smtp_port must be",
        {"peerquest_alerting_smtp_port": 0},
        "peerquest_alerting_smtp_port must be 1-65535, got 0",
    ),
    "alerting: subject without the severity": (
        "peerquest_alerting : Check the SMTP settings | peerquest_alerting_subject",
        {"peerquest_alerting_subject": "PeerQuest Alert"},
        "peerquest_alerting_subject must contain {severity}, got 'PeerQuest Alert'",
    ),
    "alerting: recipients of an unknown severity": (
        spec("peerquest_alerting"),
        {"peerquest_alerting_email_recipients": dict(BASE["peerquest_alerting_email_recipients"], DEBUG=[])},
        "peerquest_alerting_email_recipients.DEBUG. Supported parameters include: CRITICAL, INFO, WARNING.",
    ),
    "invalid recipient address": (
        "peerquest_alerting : Check the email addresses",
        {"peerquest_alerting_email_recipients": {"CRITICAL": ["oncall-at-peerquest"]}},
        "peerquest_alerting_email_recipients.CRITICAL: not an email address: 'oncall-at-peerquest'",
    ),
    "invalid sender address": (
        "peerquest_alerting : Check the email addresses",
        {"peerquest_alerting_email_from": "monitoring@"},
        "peerquest_alerting_email_from: not an email address: 'monitoring@'",
    ),
    "alerting: route for an unknown severity": (
        spec("peerquest_alerting"),
        {"peerquest_alerting_routes": {"CRITICAL": ["email"], "DEBUG": ["email"]}},
        "peerquest_alerting_routes.DEBUG. Supported parameters include: CRITICAL, INFO, WARNING.",
    ),
    "alerting: route to an unknown channel": (
        spec("peerquest_alerting"),
        {"peerquest_alerting_routes": {"CRITICAL": ["email", "pager"]}},
        "value of CRITICAL must be one or more of: email, slack, discord, webhook. Got no match for: pager found "
        "in peerquest_alerting_routes",
    ),
    "alerting: self-test of an unknown channel": (
        spec("peerquest_alerting"),
        {"peerquest_alerting_selftest_channels": ["sms"]},
        "value of peerquest_alerting_selftest_channels must be one or more of: email, slack, discord, webhook. "
        "Got no match for: sms",
    ),
    "alerting: route to a channel that is off": (
        "peerquest_alerting : Check the alert routes | _peerquest_alerting_routed |",
        {"peerquest_alerting_routes": {"CRITICAL": ["email", "slack"]}},
        f"{ROUTES} (email); not enabled: slack",
    ),
    "alerting: self-test of a channel that is off": (
        "peerquest_alerting : Check the alert routes | peerquest_alerting_selftest_channels |",
        {"peerquest_alerting_selftest_channels": ["discord"]},
        f"{ROUTES} (email); not enabled: discord",
    ),
    "email route without recipients": (
        "peerquest_alerting : Check that every severity routed to email has a recipient",
        {"peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.example.com"], "WARNING": []}},
        "peerquest_alerting_email_recipients.WARNING: empty, but peerquest_alerting_routes.WARNING sends WARNING "
        "alerts by email; add a recipient or drop email from the route",
    ),
    "email route, severity absent from recipients": (
        "peerquest_alerting : Check that every severity routed to email has a recipient",
        {
            "peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.example.com"]},
            "peerquest_alerting_routes": {"CRITICAL": ["email"], "INFO": ["email"]},
        },
        "peerquest_alerting_email_recipients.INFO: empty, but peerquest_alerting_routes.INFO sends INFO alerts",
    ),
    "alerting: webhook URL without a scheme": (
        "peerquest_alerting : Check the webhook URLs of enabled channels",
        {
            "peerquest_alerting_webhook_enabled": True,
            "peerquest_alerting_webhook_url": f"gw.peerquest.example.com/hook-{LEAK}",
        },
        "peerquest_alerting_webhook_url: must be an http(s) URL when the channel is enabled",
    ),
    "SMTP login without TLS": (
        "peerquest_alerting : Check that an SMTP login never crosses the network in clear",
        {"peerquest_alerting_smtp_starttls": False, "peerquest_alerting_smtp_ssl": False},
        "peerquest_alerting_smtp_user: an SMTP login over a connection without TLS would send the password in "
        "clear; turn on peerquest_alerting_smtp_starttls or _ssl, or set peerquest_alerting_allow_insecure_transport: "
        "true",
    ),
    "webhook over http": (
        "peerquest_alerting : Check that no webhook secret crosses the network in clear",
        HTTP_HOOK,
        "peerquest_alerting_webhook_url: an http:// URL would send the webhook's secret in clear; use https:// or "
        "set peerquest_alerting_allow_insecure_transport: true",
    ),
    "slack and discord over http": (
        "peerquest_alerting : Check that no webhook secret crosses the network in clear",
        {
            "peerquest_alerting_slack_enabled": True,
            "peerquest_alerting_slack_webhook_url": f"http://hooks.slack.example.com/services/{LEAK}",
            "peerquest_alerting_discord_enabled": True,
            "peerquest_alerting_discord_webhook_url": f"http://discord.example.com/api/webhooks/{LEAK}",
            "peerquest_alerting_routes": {"CRITICAL": ["slack", "discord"]},
        },
        "peerquest_alerting_slack_webhook_url, peerquest_alerting_discord_webhook_url: an http:// URL",
    ),
    **{
        f"alerting: {var} {value}": (
            f"peerquest_alerting : Check dedup, retry and timeout settings | {var} | int ",
            {var: value},
            ALERTING_TIMINGS,
        )
        for var, value in (
            ("peerquest_alerting_dedup_window_minutes", -1),
            ("peerquest_alerting_retry_base_seconds", 0),
            ("peerquest_alerting_retry_max_seconds", 30),  # below the base (60)
            ("peerquest_alerting_log_retention_days", 0),
            ("peerquest_alerting_smtp_timeout", 0),
            ("peerquest_alerting_http_timeout", 0),
        )
    },
    "alerting: Retry-After cap 0": (
        "peerquest_alerting : Check the Retry-After cap",
        {"peerquest_alerting_retry_after_max_seconds": 0},
        "peerquest_alerting_retry_after_max_seconds must be > 0 (the longest wait a receiver's Retry-After may ask "
        "for), got 0",
    ),
    "alerting: alert history kept less than the monthly review reads": (
        "peerquest_alerting : Check the alert history's retention",
        {"peerquest_alerting_history_retention_days": 29},
        "peerquest_alerting_history_retention_days must be at least 30 (the monthly review reads 30 days), got 29",
    ),
    # ------------------------------------------------- peerquest_logship
    "logship: port not a number": (
        spec("peerquest_logship"),
        {"peerquest_logship_port": "syslog"},
        "peerquest_logship_port",
    ),
    "logship: key not PEM": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_tls_key": "secret-must-not-leak"},
        "peerquest_logship_tls_key: must be the PEM text of a private key (from the vault)",
    ),
    "logship: CA missing": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_tls_ca_cert": ""},
        "peerquest_logship_tls_ca_cert: must be the PEM text of a certificate",
    ),
    "logship: queue size in words": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_queue_max_disk_space": "a lot"},
        "peerquest_logship_queue_max_disk_space: an rsyslog size such as 512m or 2g, got a lot",
    ),
    "logship: relative extra file": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_extra_files": ["app.log"]},
        "peerquest_logship_extra_files: app.log must be an absolute path",
    ),
    "logship: zero resume interval": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_resume_interval": 0},
        "peerquest_logship_resume_interval: at least 1 second, got 0",
    ),
    "logship: negative rebind interval": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_rebind_interval": -1},
        "peerquest_logship_rebind_interval: 0 or more lines, got -1",
    ),
    "logship: tiny memory queue": (
        "peerquest_logship : Check the certificates, the files and the queue",
        {"peerquest_logship_queue_size": 2},
        "peerquest_logship_queue_size: at least 10 lines, got 2",
    ),
    # ------------------------------------------------ peerquest_logstore
    "logstore: retention not a number": (
        spec("peerquest_logstore"),
        {"peerquest_logstore_retention_days": "forever"},
        "peerquest_logstore_retention_days",
    ),
    "logstore: stored logs readable by everyone": (
        "peerquest_logstore : Check the certificates, the modes and the retention",
        {"peerquest_logstore_file_mode": "0644"},
        "peerquest_logstore_file_mode: the stored logs must not be readable by everyone, got 0644",
    ),
    "logstore: zero retention": (
        "peerquest_logstore : Check the certificates, the modes and the retention",
        {"peerquest_logstore_retention_days": 0},
        "peerquest_logstore_retention_days: at least 1 day, got 0",
    ),
    "logstore: logs straight into /var/log": (
        "peerquest_logstore : Check the certificates, the modes and the retention",
        {"peerquest_logstore_dir": "/var/log"},
        "peerquest_logstore_dir: an absolute directory of its own",
    ),
    "logstore: server key missing": (
        "peerquest_logstore : Check the certificates, the modes and the retention",
        {"peerquest_logstore_tls_key": ""},
        "peerquest_logstore_tls_key: must be the PEM text of a private key (from the vault) to receive logs",
    ),
    # ------------------------------------------------ peerquest_logrotate
    "not a choice": (
        spec("peerquest_logrotate"),
        {"peerquest_logrotate_frequency": "yearly"},
        "peerquest_logrotate_frequency",
    ),
    # The filter's rules one by one: tests/test_logrotate_rules.py.
    "negative retention": (
        "peerquest_logrotate : Check the retention policy and the file list",
        {"peerquest_logrotate_retention_days": dict(RETENTION, INFO=-5)},
        "peerquest_logrotate_retention_days.INFO: retention must be at least 1 day, got -5",
    ),
    "non-integer retention": (
        "peerquest_logrotate : Check the retention policy and the file list",
        {"peerquest_logrotate_retention_days": dict(RETENTION, ERROR="a year")},
        "peerquest_logrotate_retention_days.ERROR: retention must be a whole number of days or 'forever'",
    ),
    "logrotate: integrity manifest among the logs": (
        "peerquest_logrotate : Check where the integrity manifest lives",
        {"peerquest_logrotate_integrity_manifest": "/var/log/peerquest/manifest.jsonl"},
        "peerquest_logrotate_integrity_manifest: must not be in a directory of the rotated logs (/var/log/peerquest), "
        "whose owners could rewrite it; put it under /var/lib",
    ),
    "logrotate: extra file without a path": (
        spec("peerquest_logrotate"),
        {"peerquest_logrotate_extra_files": [{"level": "INFO"}]},
        "missing required arguments: path found in peerquest_logrotate_extra_files",
    ),
    "logrotate: extra file with a misspelt key": (
        spec("peerquest_logrotate"),
        {"peerquest_logrotate_extra_files": [{"path": "/var/log/peerquest/celery.log", "retention": 30}]},
        "peerquest_logrotate_extra_files.retention. Supported parameters include: group, handler, level, owner, "
        "path, retention_days.",
    ),
    # ------------------------------------- peerquest_monitors (phase 2)
    "monitors: not a number": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_window_minutes": "an hour"},
        "peerquest_monitors_window_minutes",
    ),
    # The filter's rules one by one: tests/test_monitor_schedule.py.
    "monitors: unknown interval": (
        "peerquest_monitors : Check the schedule",
        {"peerquest_monitors_jobs": {"cleanup": {"every": "2h", "command": "/bin/true"}}},
        "peerquest_monitors_jobs.cleanup.every: '2h' is not one of 1m, 5m, 15m, 1h, 1d, 1w, 1mo",
    ),
    "monitors: empty window": (
        THRESHOLDS + "peerquest_monitors_window_minutes must",
        {"peerquest_monitors_window_minutes": 0},
        "peerquest_monitors_window_minutes must be > 0, got 0",
    ),
    "monitors: negative slow threshold": (
        THRESHOLDS + "peerquest_monitors_slow_threshold and",
        {"peerquest_monitors_slow_threshold": -1},
        "peerquest_monitors_slow_threshold and peerquest_monitors_db_error_threshold must be >= 0",
    ),
    "monitors: negative database error threshold": (
        THRESHOLDS + "peerquest_monitors_slow_threshold and",
        {"peerquest_monitors_db_error_threshold": -1},
        "peerquest_monitors_slow_threshold and peerquest_monitors_db_error_threshold must be >= 0",
    ),
    "monitors: error rate increase 0": (
        THRESHOLDS + "peerquest_monitors_error_rate_increase_percent and",
        {"peerquest_monitors_error_rate_increase_percent": 0},
        "peerquest_monitors_error_rate_increase_percent and peerquest_monitors_degradation_percent must be > 0",
    ),
    "monitors: degradation 0": (
        THRESHOLDS + "peerquest_monitors_error_rate_increase_percent and",
        {"peerquest_monitors_degradation_percent": 0},
        "peerquest_monitors_error_rate_increase_percent and peerquest_monitors_degradation_percent must be > 0",
    ),
    "monitors: baseline trusted without samples": (
        THRESHOLDS + "peerquest_monitors_baseline_min_samples",
        {"peerquest_monitors_baseline_min_samples": 0},
        "peerquest_monitors_baseline_min_samples must be >= 1, got 0",
    ),
    "monitors: health timeout 0": (
        THRESHOLDS + "peerquest_monitors_health_timeout and",
        {"peerquest_monitors_health_timeout": 0},
        "peerquest_monitors_health_timeout and peerquest_monitors_integrity_timeout must be > 0, got 0 and 300",
    ),
    "monitors: integrity timeout 0": (
        THRESHOLDS + "peerquest_monitors_health_timeout and",
        {"peerquest_monitors_integrity_timeout": 0},
        "peerquest_monitors_health_timeout and peerquest_monitors_integrity_timeout must be > 0, got 10 and 0",
    ),
    "monitors: degradation at 100 % of the baseline": (
        THRESHOLDS + "peerquest_monitors_degradation_percent is a percentage",
        {"peerquest_monitors_degradation_percent": 100},
        "peerquest_monitors_degradation_percent is a percentage of the baseline (200: above twice the baseline) "
        "and must be over 100, got 100",
    ),
    "monitors: slow seconds 0": (
        THRESHOLDS + "peerquest_monitors_slow_seconds must",
        {"peerquest_monitors_slow_seconds": 0},
        "peerquest_monitors_slow_seconds must be > 0 (seconds), got 0",
    ),
    "monitors: the retired slow regex": (
        THRESHOLDS + "peerquest_monitors_slow_regex is no longer used",
        {"peerquest_monitors_slow_regex": "(?i)slow"},
        "peerquest_monitors_slow_regex is no longer used: a slow operation is one whose duration",
    ),
    "monitors: database failure window 0": (
        THRESHOLDS + "peerquest_monitors_db_error_window_seconds must",
        {"peerquest_monitors_db_error_window_seconds": 0},
        "peerquest_monitors_db_error_window_seconds must be > 0, got 0",
    ),
    **{
        f"monitors: review target {var} {value}": (
            REVIEWS + f"{var} must",
            {var: value},
            f"{var} must be a percentage over 0 and at most 100, got {value}",
        )
        for var, value in (
            ("peerquest_monitors_review_false_positive_max_percent", 0),
            ("peerquest_monitors_review_acknowledged_min_percent", 101),
            ("peerquest_monitors_review_uptime_min_percent", 0),
        )
    },
    **{
        f"monitors: review target {var} 0": (REVIEWS + f"{var} must", {var: 0}, f"{var} must be > 0, got 0")
        for var in ("peerquest_monitors_review_mttd_max_minutes", "peerquest_monitors_review_mttr_max_minutes")
    },
    "monitors: reviews kept 0 days": (
        REVIEWS + "peerquest_monitors_review_retention_days must",
        {"peerquest_monitors_review_retention_days": 0},
        "peerquest_monitors_review_retention_days must be >= 1, got 0",
    ),
    "monitors: relative review directory": (
        REVIEWS + "peerquest_monitors_review_dir and",
        {"peerquest_monitors_review_dir": "reviews"},
        "peerquest_monitors_review_dir and peerquest_monitors_history_file must be absolute paths, got 'reviews'",
    ),
    "monitors: relative alert history": (
        REVIEWS + "peerquest_monitors_review_dir and",
        {"peerquest_monitors_history_file": "history.jsonl"},
        "peerquest_monitors_review_dir and peerquest_monitors_history_file must be absolute paths, got '",
    ),
    "monitors: service outage seen later than 5 minutes": (
        THRESHOLDS + "peerquest_monitors_jobs.health_quick.every",
        {
            "peerquest_monitors_jobs": {
                "health_quick": {"every": "5m", "command": "/usr/local/bin/peerquest-monitor --quick health"}
            }
        },
        "peerquest_monitors_jobs.health_quick.every (5m) plus peerquest_monitors_health_timeout (10s) must not "
        "exceed 300 seconds",
    ),
    # The shape of each entry is the argument spec's (required keys, types, choices, no unknown keys).
    "monitors: pattern without a regex": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_error_patterns": [{k: v for k, v in PATTERN.items() if k != "regex"}]},
        "missing required arguments: regex found in peerquest_monitors_error_patterns",
    ),
    "monitors: pattern without a threshold": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_error_patterns": [{k: v for k, v in PATTERN.items() if k != "threshold"}]},
        "missing required arguments: threshold found in peerquest_monitors_error_patterns",
    ),
    "monitors: pattern with an unknown severity": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_error_patterns": [dict(PATTERN, severity="ERROR")]},
        "value of severity must be one of: CRITICAL, WARNING, INFO, got: ERROR found in "
        "peerquest_monitors_error_patterns",
    ),
    "monitors: pattern threshold not a number": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_error_patterns": [dict(PATTERN, threshold="three")]},
        "argument 'threshold' is of type str found in 'peerquest_monitors_error_patterns'. and we were unable to "
        "convert to int",
    ),
    "monitors: pattern that is not a mapping": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_error_patterns": ["Transaction rolled back"]},
        "Elements value for option 'peerquest_monitors_error_patterns' is of type str and we were unable to "
        "convert to dict",
    ),
    "monitors: negative pattern threshold": (
        THRESHOLDS + "error_patterns threshold",
        {"peerquest_monitors_error_patterns": [dict(PATTERN, threshold=-1)]},
        "every peerquest_monitors_error_patterns threshold must be a whole number >= 0",
    ),
    "monitors: quoted pattern threshold": (
        THRESHOLDS + "error_patterns threshold",
        {"peerquest_monitors_error_patterns": [dict(PATTERN, threshold="3")]},
        "every peerquest_monitors_error_patterns threshold must be a whole number >= 0",
    ),
    "monitors: security event without a window": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_security_events": [{k: v for k, v in SECURITY_EVENT.items() if k != "window"}]},
        "missing required arguments: window found in peerquest_monitors_security_events",
    ),
    "monitors: negative security event threshold": (
        THRESHOLDS + "security_events threshold",
        {"peerquest_monitors_security_events": [dict(SECURITY_EVENT, threshold=-1)]},
        "every peerquest_monitors_security_events threshold must be a whole number >= 0",
    ),
    "monitors: security event window 0": (
        THRESHOLDS + "security_events window",
        {"peerquest_monitors_security_events": [dict(SECURITY_EVENT, window=0)]},
        "every peerquest_monitors_security_events window must be a whole number of minutes >= 1",
    ),
    "monitors: two security events with one name": (
        THRESHOLDS + "security_events name",
        {"peerquest_monitors_security_events": [SECURITY_EVENT, dict(SECURITY_EVENT, regex="Forbidden")]},
        "every peerquest_monitors_security_events name must be unique",
    ),
    "monitors: relative security log": (
        THRESHOLDS + "security_logs entry",
        {"peerquest_monitors_security_logs": ["audit.log"]},
        "every peerquest_monitors_security_logs entry must be an absolute path, got ['audit.log']",
    ),
    "monitors: rate without its success pattern": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_rates": [{k: v for k, v in RATE.items() if k != "success"}]},
        "missing required arguments: success found in peerquest_monitors_rates",
    ),
    "monitors: rate with a min_events that is no number": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_rates": [dict(RATE, min_events="lots")]},
        "argument 'min_events' is of type str found in 'peerquest_monitors_rates'. and we were unable to convert "
        "to int",
    ),
    # A negative max_percent was once accepted.
    "monitors: negative max_percent": (
        THRESHOLDS + "rates max_percent",
        {"peerquest_monitors_rates": [dict(RATE, max_percent=-5)]},
        "every peerquest_monitors_rates max_percent must be a number between 0 and 100",
    ),
    "monitors: max_percent above 100": (
        THRESHOLDS + "rates max_percent",
        {"peerquest_monitors_rates": [RATE, dict(RATE, name="assignment", max_percent=150)]},
        "every peerquest_monitors_rates max_percent must be a number between 0 and 100",
    ),
    "monitors: max_percent with a percent sign": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_rates": [dict(RATE, max_percent="5%")]},
        "argument 'max_percent' is of type str found in 'peerquest_monitors_rates'. and we were unable to convert "
        "to float",
    ),
    # The spec takes "5" for 5; the monitor uses the value as written.
    "monitors: quoted max_percent": (
        THRESHOLDS + "rates max_percent",
        {"peerquest_monitors_rates": [dict(RATE, max_percent="5")]},
        "every peerquest_monitors_rates max_percent must be a number between 0 and 100",
    ),
    "monitors: negative min_events": (
        THRESHOLDS + "rates min_events",
        {"peerquest_monitors_rates": [dict(RATE, min_events=-1)]},
        "every peerquest_monitors_rates min_events must be a whole number >= 0",
    ),
    "monitors: rate with an unknown severity": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_rates": [dict(RATE, severity="PAGE")]},
        "value of severity must be one of: CRITICAL, WARNING, INFO, got: PAGE found in peerquest_monitors_rates",
    ),
    "monitors: follower pattern without a regex": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_follow_patterns": [{"name": "critical"}]},
        "missing required arguments: regex found in peerquest_monitors_follow_patterns",
    ),
    "monitors: follower pattern with a misspelt key": (
        spec("peerquest_monitors"),
        {"peerquest_monitors_follow_patterns": [{"name": "critical", "regex": "^CRITICAL ", "regx": "x"}]},
        "peerquest_monitors_follow_patterns.regx. Supported parameters include: name, regex.",
    ),
    "monitors: audit on a host outside the app group": (
        THRESHOLDS + "peerquest_monitors_integrity_host",
        {"peerquest_monitors_integrity_host": "app9"},
        "peerquest_monitors_integrity_host 'app9' is not in the peerquest_app group; the audit must run on an app host",
    ),
    "monitors: follower poll 0": (
        THRESHOLDS + "peerquest_monitors_follow_poll_seconds",
        {"peerquest_monitors_follow_poll_seconds": 0},
        "peerquest_monitors_follow_poll_seconds must be > 0 and peerquest_monitors_follow_takeover_seconds longer "
        "than it, got 0 and 120",
    ),
    "monitors: takeover not longer than a poll": (
        THRESHOLDS + "peerquest_monitors_follow_poll_seconds",
        {"peerquest_monitors_follow_poll_seconds": 5, "peerquest_monitors_follow_takeover_seconds": 5},
        "peerquest_monitors_follow_poll_seconds must be > 0 and peerquest_monitors_follow_takeover_seconds longer "
        "than it, got 5 and 5",
    ),
    "monitors: negative CPU budget": (
        THRESHOLDS + "peerquest_monitors_cpu_budget_ms",
        {"peerquest_monitors_cpu_budget_ms": -1},
        "peerquest_monitors_cpu_budget_ms must be a whole number of milliseconds >= 0 (0 samples any backlog), got -1",
    ),
    "monitors: relative critical log": (
        THRESHOLDS + "peerquest_monitors_critical_log and",
        {"peerquest_monitors_critical_log": "critical.log"},
        "peerquest_monitors_critical_log and peerquest_monitors_app_log must be absolute paths",
    ),
    "monitors: relative app log": (
        THRESHOLDS + "peerquest_monitors_critical_log and",
        {"peerquest_monitors_app_log": "django.log"},
        "peerquest_monitors_critical_log and peerquest_monitors_app_log must be absolute paths",
    ),
    "monitors: hour 24": (
        THRESHOLDS + "peerquest_monitors_daily_hour",
        {"peerquest_monitors_daily_hour": 24},
        "peerquest_monitors_daily_hour must be 0-23 and peerquest_monitors_weekly_day 0-6",
    ),
    "monitors: weekday 7": (
        THRESHOLDS + "peerquest_monitors_daily_hour",
        {"peerquest_monitors_weekly_day": 7},
        "peerquest_monitors_daily_hour must be 0-23 and peerquest_monitors_weekly_day 0-6",
    ),
    "monitors: relative textfile directory": (
        THRESHOLDS + "peerquest_monitors_textfile_dir",
        {"peerquest_monitors_textfile_dir": "rel"},
        "peerquest_monitors_textfile_dir must be an absolute path (or empty for no metrics), got 'rel'",
    ),
    # ----------------------------------------- peerquest_node_exporter (phase 3)
    "node_exporter: port not a number": (
        spec("peerquest_node_exporter"),
        {"peerquest_node_exporter_port": "metrics"},
        "peerquest_node_exporter_port",
    ),
    "node_exporter: port 70000": (
        "peerquest_node_exporter : Check the node_exporter settings | port must be 1-65535",
        {"peerquest_node_exporter_port": 70000},
        "peerquest_node_exporter_port must be 1-65535, got 70000",
    ),
    "node_exporter: relative textfile directory": (
        "peerquest_node_exporter : Check the node_exporter settings | textfile_dir must be an absolute path",
        # The monitors write into node_exporter's directory by default, and their check (phase 2) runs first.
        {"peerquest_node_exporter_textfile_dir": "rel/dir", "peerquest_monitors_textfile_dir": "/var/lib/pq-metrics"},
        "peerquest_node_exporter_textfile_dir must be an absolute path (or empty to turn the textfile collector "
        "off), got 'rel/dir'",
    ),
    # The message spells out only the first variable of the list in full (the others as _extra_args, ...).
    "node_exporter: unit name with a blank": (
        "peerquest_node_exporter : Check the node_exporter settings | must not hold blanks",
        {"peerquest_node_exporter_systemd_units": ["peerquest app.service"]},
        "peerquest_node_exporter_systemd_units, _extra_args, _disabled_collectors, _listen_address and "
        "_textfile_dir must not hold blanks, quotes, backslashes or $ (each is one word of ARGS)",
    ),
    "node_exporter: systemd collector without units": (
        "peerquest_node_exporter : Check the node_exporter settings | systemd_units is empty",
        {"peerquest_node_exporter_systemd_enabled": True, "peerquest_node_exporter_systemd_units": []},
        "peerquest_node_exporter_systemd_units is empty but peerquest_node_exporter_systemd_enabled is true",
    ),
    # ------------------------------------------------- peerquest_mtail (phase 3)
    "mtail: port not a number": (
        spec("peerquest_mtail"),
        {"peerquest_mtail_port": "mtail"},
        "peerquest_mtail_port",
    ),
    "mtail: port 0": (
        "peerquest_mtail : Check the mtail settings | peerquest_mtail_port must be",
        {"peerquest_mtail_port": 0},
        "peerquest_mtail_port must be 1-65535, got 0",
    ),
    "mtail: buckets out of order": (
        "peerquest_mtail : Check the mtail settings | duration_buckets",
        {"peerquest_mtail_duration_buckets": [1, 0.5]},
        "peerquest_mtail_duration_buckets must be positive numbers in increasing order, got [1, 0.5]",
    ),
    "mtail: log path with a comma": (
        "peerquest_mtail : Check the mtail settings | every log mtail reads",
        {"peerquest_mtail_level_logs": [{"path": "/x,y", "level": "INFO"}]},
        "every log mtail reads (peerquest_mtail_request_log, peerquest_mtail_level_logs, peerquest_mtail_events_log) "
        "must be an absolute path without blanks, commas, quotes, backslashes or $",
    ),
    "mtail: unknown log level": (
        "peerquest_mtail : Check the mtail settings | every peerquest_mtail_level_logs level",
        {"peerquest_mtail_level_logs": [{"path": "/x", "level": "NOTICE"}]},
        "every peerquest_mtail_level_logs level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    ),
    "mtail: event in capitals": (
        "peerquest_mtail : Check the mtail settings | every peerquest_mtail_events entry",
        {"peerquest_mtail_events": [{"event": "Bad", "text": "x"}]},
        "every peerquest_mtail_events entry needs an event (lower case letters, digits and _) and a non-empty text",
    ),
    "mtail: extra argument with a blank": (
        "peerquest_mtail : Check the mtail settings | peerquest_mtail_extra_args",
        {"peerquest_mtail_extra_args": ["a b"]},
        "peerquest_mtail_extra_args, _listen_address and _progs_dir must not hold blanks, quotes, backslashes or $",
    ),
    # -------------------------------------------- peerquest_prometheus (phase 3)
    "prometheus: not a boolean": (
        spec("peerquest_prometheus"),
        {"peerquest_prometheus_enable_lifecycle": "sometimes"},
        "peerquest_prometheus_enable_lifecycle",
    ),
    "prometheus: size with a blank": (
        "peerquest_prometheus : Check the durations, thresholds, ports and targets",
        {"peerquest_prometheus_retention_size": "10 GB"},
        "peerquest_prometheus_retention_size: a size such as 512MB or 10GB, or empty, got 10 GB",
    ),
    # ------------------------------------------ peerquest_alertmanager (phase 3)
    "alertmanager: unknown severity": (
        spec("peerquest_alertmanager"),
        {"peerquest_alertmanager_default_severity": "DEBUG"},
        "peerquest_alertmanager_default_severity",
    ),
    "alertmanager: duration in words": (
        "peerquest_alertmanager : Check the durations, ports, paths and channels",
        {"peerquest_alertmanager_group_wait": "soon"},
        "peerquest_alertmanager_group_wait: a duration such as 30s, 5m or 4h, got soon",
    ),
    # ---------------------------------------------- peerquest_blackbox (phase 3)
    "blackbox: unknown IP protocol": (
        spec("peerquest_blackbox"),
        {"peerquest_blackbox_preferred_ip_protocol": "ip5"},
        "peerquest_blackbox_preferred_ip_protocol",
    ),
    "blackbox: Host header with a path": (
        "peerquest_blackbox : Check the timeout, port, paths and Host header",
        {"peerquest_blackbox_http_host": "questhub.internal/health"},
        "peerquest_blackbox_http_host: a host name (optionally :port) or empty, got questhub.internal/health",
    ),
    # -------------------------------------------- peerquest_dashboards (phase 3)
    "dashboards: not a choice": (
        spec("peerquest_dashboards"),
        {"peerquest_dashboards_state": "gone"},
        "peerquest_dashboards_state",
    ),
    # The message spells out only the first variable of the list in full (the others as _queries_file, ...).
    "dashboards: relative consoles directory": (
        "peerquest_dashboards : Check the dashboards' paths | must be absolute paths",
        {"peerquest_dashboards_consoles_dir": "consoles"},
        "peerquest_dashboards_consoles_dir, _console_libraries_dir, _grafana_dashboards_dir, "
        "_grafana_provisioning_file and _queries_file must be absolute paths",
    ),
    "dashboards: console libraries among the consoles": (
        "peerquest_dashboards : Check the dashboards' paths | must differ",
        {"peerquest_dashboards_console_libraries_dir": "/etc/prometheus/consoles"},
        "peerquest_dashboards_consoles_dir and peerquest_dashboards_console_libraries_dir must differ (Prometheus "
        "serves every file of the consoles directory as a page)",
    ),
    # ------------------------------------------------ peerquest_trends (phase 3)
    "trends: retention not a number": (
        spec("peerquest_trends"),
        {"peerquest_trends_retention_days": "many"},
        "peerquest_trends_retention_days",
    ),
    "trends: Prometheus URL without a scheme": (
        "peerquest_trends : Check the reports' settings | peerquest_trends_prometheus_url",
        {"peerquest_trends_prometheus_url": "127.0.0.1:9090"},
        "peerquest_trends_prometheus_url must start with http:// or https://, got 127.0.0.1:9090",
    ),
    "trends: retention 0": (
        "peerquest_trends : Check the reports' settings | retention_days and",
        {"peerquest_trends_retention_days": 0},
        "peerquest_trends_retention_days and peerquest_trends_timeout must be at least 1",
    ),
    "trends: relative reports directory": (
        "peerquest_trends : Check the reports' settings | reports_dir and",
        {"peerquest_trends_reports_dir": "reports"},
        "peerquest_trends_reports_dir and peerquest_trends_config_path must be absolute paths",
    ),
    "trends: schedule of four fields": (
        "peerquest_trends : Check the reports' settings | five cron fields",
        {"peerquest_trends_daily_schedule": "15 6 * *"},
        "peerquest_trends_daily_schedule and peerquest_trends_weekly_schedule must be five cron fields "
        '(minute hour day-of-month month day-of-week) without %, got "15 6 * *" and "30 6 * * 1"',
    ),
    "trends: reports on a host outside the monitoring group": (
        "peerquest_trends : Check the reports' settings | peerquest_trends_host",
        {"peerquest_trends_host": "elsewhere"},
        "peerquest_trends_host must be a host of peerquest_monitoring, got elsewhere",
    ),
    # The SMTP settings hold the password (BASE's, containing LEAK): the output must not show it.
    "trends: e-mail without recipients": (
        "peerquest_trends : Check the reports' settings | email_enabled needs",
        {"peerquest_trends_email_enabled": True, "peerquest_trends_recipients": []},
        "peerquest_trends_email_enabled needs recipients (peerquest_trends_recipients) and an SMTP host "
        "(peerquest_trends__dependent_smtp.smtp_host)",
    ),
    # ----------------------------------------------- peerquest_runbook (phase 3)
    "runbook: alert without a name": (
        spec("peerquest_runbook"),
        {"peerquest_runbook_alerts": [{"expr": "up == 0"}]},
        "missing required arguments: alert found in peerquest_runbook_alerts",
    ),
    "runbook: relative consoles directory": (
        "peerquest_runbook : Check the runbook's settings | peerquest_runbook_consoles_dir",
        {"peerquest_runbook_consoles_dir": "consoles"},
        "peerquest_runbook_consoles_dir must be an absolute path, got consoles",
    ),
    "runbook: two alerts, one anchor": (
        "peerquest_runbook : Check the runbook's settings | unique ignoring case",
        {"peerquest_runbook_alerts": [{"alert": "A"}, {"alert": "a"}]},
        "peerquest_runbook_alerts: every alert name must be unique ignoring case (the name lowercased is its "
        "section's anchor)",
    ),
    "runbook: relative controller file": (
        "peerquest_runbook : Check the runbook's settings | peerquest_runbook_controller_file",
        {"peerquest_runbook_controller_file": "rel.html"},
        "peerquest_runbook_controller_file must be empty or an absolute path, got rel.html",
    ),
}


# ----------------------------------------------------- the checks themselves
CHECK_ACTIONS = {
    "ansible.builtin.assert": "assert",
    "assert": "assert",
    "ansible.builtin.fail": "fail",
    "fail": "fail",
    "ansible.builtin.validate_argument_spec": "spec",
    "validate_argument_spec": "spec",
}


@dataclass(frozen=True)
class Check:
    """One way a preflight can fail: a task, or one item or condition of it."""

    role: str
    task: str
    index: int | None = None  # the item (literal loop) or condition (`that` list)
    text: str = ""  # that item's msg (or the item itself) or that condition

    @property
    def task_id(self):
        return f"{self.role} : {self.task}"

    @property
    def id(self):
        return self.task_id if self.index is None else f"{self.task_id} [{self.index}]"

    def matches(self, record):
        """Whether a failure the callback recorded is this check failing."""
        if (record["role"], record["task"]) != (self.role, self.task):
            return False
        if self.index is None:
            return True
        if record["looped"]:
            item = record["item"]
            if isinstance(item, dict):
                return template_regex(self.text).fullmatch(str(item.get("msg", ""))) is not None
            return item == self.text
        return (record["assertion"] or "").strip() == self.text.strip()


def template_regex(text):
    """A regex for what a Jinja template renders to: literal text, anything where an expression was."""
    parts = re.split(r"\{\{.*?\}\}|\{%.*?%\}", text, flags=re.S)
    return re.compile(".*?".join(re.escape(part) for part in parts), re.S)


def preflight_checks():
    """Every check in every roles/*/tasks/preflight.yml, in file order."""
    checks = []
    for path in sorted(ROLES.glob("*/tasks/preflight.yml")):
        role = path.parent.parent.name
        for task in yaml.safe_load(path.read_text()) or []:
            action = next((CHECK_ACTIONS[key] for key in task if key in CHECK_ACTIONS), None)
            if action is None:
                continue
            args = task[next(key for key in task if key in CHECK_ACTIONS)] or {}
            that = args.get("that") if action == "assert" else None
            loop = task.get("loop")
            # A loop over a template (the user's data) is one check; a literal list is one per item.
            items = loop if isinstance(loop, list) else None
            conditions = that if isinstance(that, list) and len(that) > 1 else None
            if items is not None and conditions is not None:
                raise ValueError(f"{path}: {task['name']}: a literal loop and several conditions; split the task")
            subs = items if items is not None else conditions
            if subs is None:
                checks.append(Check(role, task["name"]))
            else:
                for index, sub in enumerate(subs):
                    text = sub.get("msg", "") if isinstance(sub, dict) else str(sub)
                    checks.append(Check(role, task["name"], index, text))
    return checks


CHECKS = preflight_checks()


def resolve(target):
    """The check a case's target names ("role : task" or "role : task | piece of one item/condition")."""
    task_id, _, piece = target.partition(" | ")
    candidates = [check for check in CHECKS if check.task_id == task_id]
    if not candidates:
        raise LookupError(f"{target!r}: no such preflight check")
    if candidates[0].index is None:
        if piece:
            raise LookupError(f"{target!r}: {task_id} is a single check; drop ' | {piece}'")
        return candidates[0]
    found = [check for check in candidates if piece and piece in check.text]
    if len(found) != 1:
        texts = "\n  ".join(check.text for check in candidates)
        raise LookupError(f"{target!r}: '{piece}' must be part of exactly one of:\n  {texts}")
    return found[0]


# ------------------------------------------------------------ running a case
# Records each failed task and loop item as one JSON line: host, and which check failed.
CALLBACK = """
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "pq_failures"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, looped):
        task = result.task
        data = result.result
        record = {
            "host": result.host.get_name(),
            "role": task._role.get_name() if task._role else None,
            "task": task.name,
            "looped": looped,
            "item": data.get("item") if looped else None,
            "assertion": data.get("assertion"),
            "msg": data.get("msg"),
        }
        with open(os.environ["PQ_FAILURES_FILE"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\\n")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._record(result, False)

    def v2_runner_item_on_failed(self, result):
        self._record(result, True)
"""


@pytest.fixture(scope="session")
def recording_env(ansible_env, tmp_path_factory):
    plugins = tmp_path_factory.mktemp("callback_plugins")
    (plugins / "pq_failures.py").write_text(CALLBACK)
    return dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_CALLBACKS_ENABLED="pq_failures")


@dataclass
class Outcome:
    returncode: int
    output: str
    records: list  # what failed on this case's host
    all_records: list  # what failed on any host of the run


def run_cases(workdir, recording_env, cases, playbook):
    """Run the preflight of `playbook` once, one inventory host (this machine) per case with its overrides.

    A case that passed its check, or failed an earlier one, shows up as a missing record on its host.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = {f"case{index}": name for index, name in enumerate(cases)}
    local = {"ansible_connection": "local", "ansible_python_interpreter": str(VENV_BIN / "python")}
    inventory = workdir / "hosts.yml"  # JSON is YAML: the values keep their types
    inventory.write_text(
        json.dumps(
            {
                "peerquest_app": {"hosts": {host: {**local, **BASE, **cases[name]} for host, name in hosts.items()}},
                # Each host is the monitoring host too: peerquest_logstore's checks run, and
                # peerquest_logship forwards (to the first of them).
                "peerquest_monitoring": {"hosts": {host: {} for host in hosts}},
            }
        )
    )
    failures = workdir / "failures.jsonl"
    result = run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "--check",
            "--tags",
            "preflight",
            str(ROOT / playbook),
        ],
        cwd=ROOT,
        env=dict(recording_env, PQ_FAILURES_FILE=str(failures)),
    )
    records = [json.loads(line) for line in failures.read_text().splitlines()] if failures.exists() else []
    output = result.stdout + result.stderr
    return {
        name: Outcome(result.returncode, output, [r for r in records if r["host"] == host], records)
        for host, name in hosts.items()
    }


HOSTS_PER_RUN = 10
ROLE_NAMES = sorted(path.parent.parent.name for path in ROLES.glob("*/tasks/preflight.yml"))
DEPENDENT = {
    key: str(value)
    for key, value in yaml.safe_load((ROOT / "playbooks" / "vars" / "dependent.yml").read_text()).items()
}


def roles_read_by(role):
    """role after every role whose variables its defaults or vars read, transitively.

    A role's checks resolve its defaults, which may read another role's (peerquest_logdir_group):
    that role's checks run first and load its defaults, as in the full preflight.
    """
    order, visiting = [], set()

    def visit(name):
        if name in order or name in visiting:
            return
        visiting.add(name)
        # Values, not comments; and the roles its dependent variables (playbooks/vars/dependent.yml) come from.
        files = [ROLES / name / kind / "main.yml" for kind in ("defaults", "vars")]
        text = "".join(re.sub(r"#.*", "", path.read_text()) for path in files if path.exists())
        text += "".join(value for key, value in DEPENDENT.items() if key.startswith(f"{name}__"))
        for other in ROLE_NAMES:
            if other != name and re.search(rf"\b{other}_[a-z_]", text):
                visit(other)
        order.append(name)

    visit(role)
    return order


@pytest.fixture(scope="session")
def cases_playbook(tmp_path_factory):
    """playbooks/preflight.yml as it is, except that a failed host does not stop the others.

    Each case's host then stops at its own first failed check while the other hosts go on, so
    cases of any checks share a run. That every host stops with the first (any_errors_fatal),
    and that no deploying play starts, is tested on the real playbooks below.

    A case's host runs only the checks of the role its target check is in (_pq_case_roles): the
    other roles' checks pass on the defaults (test_valid_values_pass_preflight), and running them
    on every case's host was most of this file's time.
    """
    directory = tmp_path_factory.mktemp("preflight-playbook")
    text = (ROOT / "playbooks" / "preflight.yml").read_text()
    assert text.count("any_errors_fatal: true") == 1
    roles_loop = 'loop: "{{ _peerquest_preflight_roles }}"'
    assert text.count(roles_loop) == 1
    # In the preflight's own order, which loads each role's defaults before the roles that read them.
    case_roles = "_peerquest_preflight_roles | select('in', _pq_case_roles | default(_peerquest_preflight_roles))"
    text = text.replace(roles_loop, f'loop: "{{{{ {case_roles} }}}}"')
    (directory / "preflight.yml").write_text(text.replace("any_errors_fatal: true", "any_errors_fatal: false"))
    (directory / "vars").symlink_to(ROOT / "playbooks" / "vars")  # vars_files are relative to the playbook
    return str(directory / "preflight.yml")


@pytest.fixture(scope="session")
def outcomes(request, recording_env, tmp_path_factory, cases_playbook):
    """Run every selected case, a host each, HOSTS_PER_RUN hosts a run, two runs at a time (two cores)."""
    selected = sorted(
        {
            item.callspec.params["case"]
            for item in request.session.items
            if getattr(item, "originalname", "") == "test_bad_value_stops_before_any_change"
        }
    )
    # A run's cost grows with hosts x tasks in ansible's main process: small runs.
    chunks = [
        {name: {**CASES[name][1], "_pq_case_roles": roles_read_by(resolve(CASES[name][0]).role)} for name in batch}
        for batch in (selected[start : start + HOSTS_PER_RUN] for start in range(0, len(selected), HOSTS_PER_RUN))
    ]
    workdir = tmp_path_factory.mktemp("preflight-cases")
    results = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [
            pool.submit(run_cases, workdir / f"run{index}", recording_env, cases, cases_playbook)
            for index, cases in enumerate(chunks)
        ]
        for job in jobs:
            results.update(job.result())
    return results


def names_a_changed_variable(message, overrides):
    """The message names a variable the case set (or the one it feeds: *_overrides)."""
    named = re.findall(r"peerquest_[a-z0-9_]+", message)
    return any(key == name or key.startswith(name) for name in named for key in overrides)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_stops_before_any_change(case, outcomes):
    target, overrides, expected = CASES[case]
    check = resolve(target)
    outcome = outcomes[case]
    assert outcome.returncode != 0, outcome.output
    failed = [record for record in outcome.records if check.matches(record)]
    assert failed, (
        f"expected {check.id} ({check.text}) to fail on this case's host; what failed in the run: "
        f"{json.dumps(outcome.all_records, indent=1)}"
    )
    messages = " | ".join(str(record["msg"]) for record in failed)
    assert expected in messages, messages
    assert names_a_changed_variable(messages, overrides), messages
    assert expected in outcome.output, outcome.output
    assert LEAK not in outcome.output


def test_every_preflight_check_has_a_case_that_fails_it():
    covered = {resolve(target).id for target, _, _ in CASES.values()}  # resolve() refuses stale targets
    missing = [f"{check.id}: {check.text}" for check in CHECKS if check.id not in covered]
    assert not missing, "no case makes these checks fail:\n" + "\n".join(missing)


def test_the_check_list_sees_every_kind_of_check():
    """The helper finds loop items, conditions and argument specs (or the coverage above means little)."""
    by_id = {check.id: check for check in CHECKS}
    assert "peerquest_app : Check that paths are absolute [6]" in by_id  # string items
    assert "peerquest_monitors : Check thresholds and windows [0]" in by_id  # {ok, msg} items
    assert "peerquest_logdir : Check the file mode [3]" in by_id  # conditions
    assert "peerquest_alerting : Check the email addresses" in by_id  # loop over the user's data: one check
    roles = {path.parent.parent.name for path in ROLES.glob("*/tasks/preflight.yml")}
    assert {check.role for check in CHECKS if check.task_id == spec(check.role)} == roles


def test_one_bad_host_stops_every_host(tmp_path, recording_env):
    """A run with one wrong host and one right one changes neither (any_errors_fatal)."""
    target, overrides, expected = CASES["monitors: negative max_percent"]
    outcome = run_cases(tmp_path, recording_env, {"bad": overrides, "good": {}}, "playbooks/phase2.yml")
    assert outcome["bad"].returncode != 0 and expected in outcome["bad"].output
    assert any(resolve(target).matches(record) for record in outcome["bad"].records)
    assert outcome["good"].records == []
    assert "PLAY RECAP" in outcome["good"].output and DEPLOYING_PLAYS[1] not in outcome["good"].output


# Each playbook a site runs, and a value of another phase than the ones it deploys.
PLAYBOOK_CASES = {
    "site.yml": "monitors: negative max_percent",
    "playbooks/phase1.yml": "monitors: negative max_percent",
    "playbooks/phase2.yml": "health: short token",
    "playbooks/phase3.yml": "logging: unknown log format",
}


@pytest.mark.parametrize("playbook", sorted(PLAYBOOK_CASES))
def test_every_playbook_refuses_a_bad_value_of_any_phase_before_deploying(playbook, tmp_path, recording_env):
    """playbooks/preflight.yml checks every phase's roles before any host changes, whatever phase runs."""
    target, overrides, expected = CASES[PLAYBOOK_CASES[playbook]]
    outcome = run_cases(tmp_path, recording_env, {"case": overrides}, playbook)["case"]
    assert outcome.returncode != 0, outcome.output
    assert any(resolve(target).matches(record) for record in outcome.records), outcome.all_records
    assert expected in outcome.output, outcome.output
    assert "PLAY RECAP" in outcome.output, outcome.output
    for play in DEPLOYING_PLAYS:
        assert play not in outcome.output, outcome.output


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
    # (The trend reports, mailed to the INFO recipients by default, are then not mailed.)
    "unrouted severity without recipients": {
        "peerquest_alerting_email_recipients": {"CRITICAL": ["oncall@peerquest.example.com"], "INFO": []},
        "peerquest_alerting_routes": {"CRITICAL": ["email"], "INFO": []},
        "peerquest_trends_email_enabled": False,
    },
    # /health/ without a token, opened on purpose.
    "health explicitly open": {"peerquest_health_token": "", "peerquest_health_open": True},
    # The edges of the ranges the checks enforce are allowed.
    "edge values": {
        "peerquest_logdir_dir_mode": "0700",
        "peerquest_logdir_file_mode": "600",
        "peerquest_health_token": "x" * 16,
        "peerquest_alerting_dedup_window_minutes": 0,
        "peerquest_alerting_retry_max_seconds": 60,
        "peerquest_monitors_error_patterns": [PATTERN, dict(PATTERN, name="other", severity="INFO", threshold=7)],
        "peerquest_monitors_rates": [
            dict(RATE, max_percent=0, min_events=0),
            dict(RATE, name="b", max_percent=100, severity="CRITICAL"),
            dict(RATE, name="c", max_percent=2.5, severity="INFO"),
        ],
        "peerquest_monitors_follow_patterns": [{"name": "critical", "regex": "^CRITICAL "}],
        "peerquest_monitors_baseline_min_samples": 1,
        "peerquest_monitors_slow_threshold": 0,
        "peerquest_monitors_daily_hour": 23,
        "peerquest_monitors_weekly_day": 0,
    },
    # Just over 100 % of the baseline, a fraction of a second, an outage seen at 300 s.
    "threshold edges": {
        "peerquest_monitors_degradation_percent": 101,
        "peerquest_monitors_slow_seconds": 0.5,
        "peerquest_monitors_db_error_window_seconds": 1,
        "peerquest_monitors_health_timeout": 240,
        "peerquest_logging_debug_enabled": True,
    },
}


@pytest.fixture(scope="session")
def valid_outcomes(recording_env, tmp_path_factory):
    """All valid cases in one run, a host each: the run passes only if every host passes."""
    return run_cases(tmp_path_factory.mktemp("preflight-valid"), recording_env, VALID, "playbooks/phase1.yml")


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_values_pass_preflight(case, valid_outcomes):
    # --tags preflight: the deploying play needs a real app host, not this machine.
    outcome = valid_outcomes[case]
    assert outcome.records == [], outcome.output
    assert outcome.returncode == 0, outcome.output
    assert "PLAY [Phase 1 - basic monitoring]" in outcome.output, outcome.output
    assert LEAK not in outcome.output


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


if __name__ == "__main__":
    # The coverage table: each check and the cases that make it fail.
    by_check = {}
    for name, (target, _, _) in sorted(CASES.items()):
        by_check.setdefault(resolve(target).id, []).append(name)
    for check in CHECKS:
        text = " ".join(check.text.split())
        print(f"{check.id}{': ' + text[:90] if text else ''}\n    <- {'; '.join(by_check.get(check.id, ['NONE']))}")
    sys.exit(0 if all(check.id in by_check for check in CHECKS) else 1)
