"""peerquest-alert's settings file: what it must hold and what it may not ask for.

    config = load_config(path)       # ConfigError naming every problem, each by its key
    problems = config_problems(config)

The configuration carries every setting: no key has a built-in default, so a
value a site changed is never replaced by one of ours. Once read, its secrets
(SMTP password, webhook URLs, token) are registered with core.config so that no
printed or logged text shows them.
"""

import os
import urllib.parse

from peerquest_ops.core import config as core_config
from peerquest_ops.core.config import ConfigError
from peerquest_ops.core.constants import CHANNELS, EMAIL_ADDRESS, SEVERITIES

# The key of each HTTP channel's URL in its section.
URL_KEYS = {"slack": "webhook_url", "discord": "webhook_url", "webhook": "url"}


def is_count(value, minimum=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# kind: (test, problem text, show the value in the problem?)
KINDS = {
    "str": (lambda v: isinstance(v, str), "must be a string", False),
    "bool": (lambda v: isinstance(v, bool), "must be true or false", False),
    "list": (lambda v: isinstance(v, list), "must be a list", False),
    "object": (lambda v: isinstance(v, dict), "must be an object", False),
    "count": (is_count, "must be a non-negative integer", True),
    "positive": (lambda v: is_count(v, 1), "must be a positive integer", True),
    "port": (lambda v: is_count(v, 1) and v <= 65535, "must be 1-65535", True),
}
# Every key the role renders, with its kind.
SCHEMA = {
    "subject": "str",
    "log_dir": "str",
    "log_file": "str",
    "state_dir": "str",
    "spool_dir": "str",
    "dedup_window_seconds": "count",
    "retry_base_seconds": "count",
    "retry_max_seconds": "count",
    "retry_after_max_seconds": "positive",
    "routes": "object",
    "selftest_channels": "list",
    "http_timeout": "positive",
    "ca_file": "str",
    "allow_insecure_transport": "bool",
    "email": {
        "enabled": "bool",
        "from": "str",
        "recipients": "object",
        "smtp": {
            "host": "str",
            "port": "port",
            "starttls": "bool",
            "ssl": "bool",
            "user": "str",
            "password": "str",
            "ca_file": "str",
            "timeout": "positive",
        },
    },
    "slack": {"enabled": "bool", "webhook_url": "str"},
    "discord": {"enabled": "bool", "webhook_url": "str"},
    "webhook": {"enabled": "bool", "url": "str", "token": "str"},
    # Delivery through Alertmanager (channels.alertmanager): used when enabled and urls is not empty.
    "alertmanager": {
        "enabled": "bool",
        "urls": "list",
        "resolve_seconds": "positive",
        "instance": "str",
        "runbook_base_url": "str",
    },
}


def shape_problems(section, schema, prefix=""):
    """Missing keys and wrong kinds, each naming the key."""
    problems = []
    for key, kind in schema.items():
        name = f"{prefix}{key}"
        if key not in section:
            problems.append(f"{name}: missing (the configuration must set every key)")
        elif isinstance(kind, dict):
            if isinstance(section[key], dict):
                problems += shape_problems(section[key], kind, f"{name}.")
            else:
                problems.append(f"{name}: must be an object")
        else:
            test, text, show = KINDS[kind]
            if not test(section[key]):
                problems.append(f"{name}: {text}" + (f", got {section[key]!r}" if show else ""))
    return problems


def email_problems(config):
    email = config["email"]
    if not email["enabled"]:
        return []
    problems = []
    smtp = email["smtp"]
    if not smtp["host"]:
        problems.append("email.smtp.host: required when email is enabled")
    if smtp["starttls"] and smtp["ssl"]:
        problems.append("email.smtp: starttls and ssl exclude each other")
    if smtp["user"] and not smtp["password"]:
        problems.append("email.smtp.password: required when email.smtp.user is set")
    if not EMAIL_ADDRESS.match(email["from"]):
        problems.append(f"email.from: not an email address: {email['from']!r}")
    for severity, addresses in email["recipients"].items():
        if severity not in SEVERITIES:
            problems.append(f"email.recipients.{severity}: unknown severity")
        elif not isinstance(addresses, list):
            problems.append(f"email.recipients.{severity}: must be a list of addresses")
        else:
            for address in addresses:
                if not isinstance(address, str) or not EMAIL_ADDRESS.match(address):
                    problems.append(f"email.recipients.{severity}: not an email address: {address!r}")
    return problems


def url_problem(key, url):
    # The URL itself is a secret: the message names the key only.
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("https", "http") and parts.hostname:
            parts.port  # noqa: B018 - raises on a bad port
            return None
    except ValueError:
        pass
    return f"{key}: must be an https:// or http:// URL"


def insecure_transport(config, channel):
    """Why this channel would send a secret in clear; None when it would not or the configuration allows it.

    Judged again at send time, so no code path can log in or post in clear by mistake."""
    if config["allow_insecure_transport"]:
        return None
    if channel == "email":
        smtp = config["email"]["smtp"]
        if smtp["user"] and not (smtp["starttls"] or smtp["ssl"]):
            return (
                "email.smtp.user: an SMTP login over a connection without TLS would send the password in clear; "
                "turn on email.smtp.starttls or email.smtp.ssl, or set allow_insecure_transport: true"
            )
        return None
    url_key = URL_KEYS[channel]
    if urllib.parse.urlsplit(config[channel][url_key]).scheme == "http":
        # Only the key: the URL is the secret.
        return (
            f"{channel}.{url_key}: an http:// URL would send the webhook's secret in clear; "
            "use https:// or set allow_insecure_transport: true"
        )
    return None


def alertmanager_problems(config):
    """The Alertmanager URLs: each an http(s) base URL; http:// only when allow_insecure_transport."""
    section = config["alertmanager"]
    problems = []
    for index, url in enumerate(section["urls"]):
        key = f"alertmanager.urls[{index}]"
        if not isinstance(url, str):
            problems.append(f"{key}: must be an https:// or http:// URL")
            continue
        problems.append(url_problem(key, url) or alertmanager_insecure(config, url, key))
    if section["runbook_base_url"]:
        problems.append(url_problem("alertmanager.runbook_base_url", section["runbook_base_url"]))
    return problems


def alertmanager_insecure(config, url, key="alertmanager.urls"):
    """Why posting to this Alertmanager would cross the network in clear; None when allowed."""
    if config["allow_insecure_transport"] or urllib.parse.urlsplit(url).scheme != "http":
        return None
    return f"{key}: an http:// URL would send alerts in clear; use https:// or set allow_insecure_transport: true"


def configured(config, channel):
    if channel == "email":
        return config["email"]["enabled"]
    return config[channel]["enabled"] and bool(config[channel][URL_KEYS[channel]])


def channel_list_problems(config, key, channels):
    if not isinstance(channels, list):
        return [f"{key}: must be a list of channels"]
    problems = []
    for channel in channels:
        if channel not in CHANNELS:
            problems.append(f"{key}: unknown channel {channel!r}")
        elif not configured(config, channel):
            problems.append(f"{key}: channel {channel!r} is not configured")
    return problems


def path_problems(config):
    problems = []
    # The app's log directory, named in every email: required.
    if not os.path.isabs(config["log_dir"]):
        problems.append(f"log_dir: must be an absolute path, got {config['log_dir']!r}")
    # Empty turns the feature off (no event log, no dedup, no spool, the system's CAs).
    for key in ("log_file", "state_dir", "spool_dir", "ca_file"):
        if config[key] and not os.path.isabs(config[key]):
            problems.append(f"{key}: must be an absolute path, got {config[key]!r}")
    if config["email"]["smtp"]["ca_file"] and not os.path.isabs(config["email"]["smtp"]["ca_file"]):
        problems.append(f"email.smtp.ca_file: must be an absolute path, got {config['email']['smtp']['ca_file']!r}")
    return problems


def route_problems(config):
    problems = []
    for severity, channels in config["routes"].items():
        if severity not in SEVERITIES:
            problems.append(f"routes.{severity}: unknown severity")
            continue
        found = channel_list_problems(config, f"routes.{severity}", channels)
        problems += found
        # An alert routed to email with nobody to send it to would go nowhere and exit 0.
        if not found and "email" in channels and not config["email"]["recipients"].get(severity):
            problems.append(
                f"email.recipients.{severity}: empty, but routes.{severity} sends {severity} alerts by email; "
                "add a recipient or drop email from the route"
            )
    return problems


def config_problems(config):
    """Every mistake in the configuration, each naming the key."""
    if not isinstance(config, dict):
        return ["(top level): must be a JSON object"]
    # The meaning of a value can only be judged once every key is there with its kind.
    problems = shape_problems(config, SCHEMA)
    if problems:
        return problems
    try:
        if "{severity}" not in config["subject"]:
            raise ValueError
        config["subject"].format(severity="CRITICAL")
    except (KeyError, IndexError, ValueError):
        problems.append(f"subject: must contain {{severity}} and no other {{field}}, got {config['subject']!r}")
    problems += path_problems(config) + email_problems(config)
    if config["email"]["enabled"]:
        problems.append(insecure_transport(config, "email"))
    for channel, url_key in URL_KEYS.items():
        if config[channel]["enabled"]:
            # The scheme of a URL is judged only once it parses.
            problems.append(
                url_problem(f"{channel}.{url_key}", config[channel][url_key]) or insecure_transport(config, channel)
            )
    problems += alertmanager_problems(config)
    problems += route_problems(config)
    problems += channel_list_problems(config, "selftest_channels", config["selftest_channels"])
    return [problem for problem in problems if problem]


def remember_secrets(config):
    """Register every secret of the configuration, whatever its shape, before anything is printed."""
    if not isinstance(config, dict):
        return
    smtp = (config.get("email") if isinstance(config.get("email"), dict) else {}).get("smtp")
    values = [smtp.get("password")] if isinstance(smtp, dict) else []
    for channel, url_key in URL_KEYS.items():
        section = config.get(channel) if isinstance(config.get(channel), dict) else {}
        values += core_config.url_secrets(section.get(url_key))
    if isinstance(config.get("webhook"), dict):
        values.append(config["webhook"].get("token"))
    section = config.get("alertmanager") if isinstance(config.get("alertmanager"), dict) else {}
    urls = section.get("urls") if isinstance(section.get("urls"), list) else []
    # An Alertmanager URL is an address, not a secret: only a password written into it is one.
    values += [_url_password(url) for url in urls]
    core_config.remember(*values)


def _url_password(url):
    try:
        return urllib.parse.urlsplit(url).password if isinstance(url, str) else None
    except ValueError:
        return None


def load_config(path):
    """The checked configuration in path; ConfigError naming every problem."""
    config = core_config.load(path)
    remember_secrets(config)
    problems = config_problems(config)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return config
