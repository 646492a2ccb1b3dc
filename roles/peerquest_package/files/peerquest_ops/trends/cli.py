"""Make the daily or weekly trend report, keep it as a file and e-mail it.

    peerquest-trends --config FILE daily|weekly [--no-email] [--end EPOCH]
    peerquest-trends --config FILE check-config

The report asks Prometheus (prometheus_url) for the period ending now (or --end): system health, performance
trend, user activity, alerts fired; the weekly one adds the alert threshold review. It is written to
reports_dir (files older than retention_days are removed) and, when email.enabled, sent as HTML with a
plain-text part to email.recipients. The SMTP password is read from the settings file, never from the
command line.

Exit status: 0 done; 1 the report was made but a query failed or the e-mail did not go out (the report
says which query, this command's output says why); 2 bad usage or settings.
"""

import argparse
import os
import sys
import time

from peerquest_ops.alerting.channels.base import DeliveryError
from peerquest_ops.core.config import ConfigError, load, remember, scrub
from peerquest_ops.trends import mail, report, sections, store
from peerquest_ops.trends.prom import Client

PROGRAM = "peerquest-trends"
SMTP_KEYS = {"host": str, "port": int, "starttls": bool, "ssl": bool, "user": str, "password": str, "ca_file": str}


def say(text, error=False):
    print(f"{PROGRAM}: {scrub(text)}", file=sys.stderr if error else sys.stdout)


def _problems(settings):
    problems = []

    def need(where, key, kind, value):
        if not isinstance(value.get(key), kind) or (kind is int and isinstance(value.get(key), bool)):
            problems.append(f"{where}{key}: missing or not {getattr(kind, '__name__', 'a number')}")

    for key, kind in (("prometheus_url", str), ("reports_dir", str), ("retention_days", int), ("name", str)):
        need("", key, kind, settings)
    need("", "timeout", (int, float), settings)
    need("", "links", list, settings)
    need("", "email", dict, settings)
    if problems:
        return problems
    if not settings["prometheus_url"].startswith(("http://", "https://")):
        problems.append(f"prometheus_url: must start with http:// or https://, got {settings['prometheus_url']!r}")
    if not os.path.isabs(settings["reports_dir"]):
        problems.append(f"reports_dir: must be an absolute path, got {settings['reports_dir']!r}")
    if settings["retention_days"] < 1 or settings["timeout"] <= 0:
        problems.append("retention_days must be at least 1 and timeout above 0")
    for index, link in enumerate(settings["links"]):
        if not (isinstance(link, dict) and isinstance(link.get("text"), str) and isinstance(link.get("url"), str)):
            problems.append(f"links[{index}]: must have text and url")
    email = settings["email"]
    need("email.", "enabled", bool, email)
    if email.get("enabled"):
        need("email.", "from", str, email)
        need("email.", "subject", str, email)
        need("email.", "smtp", dict, email)
        if not (
            isinstance(email.get("recipients"), list)
            and email["recipients"]
            and all(isinstance(r, str) and "@" in r for r in email["recipients"])
        ):
            problems.append("email.recipients: a non-empty list of addresses when email.enabled")
        smtp = email.get("smtp") if isinstance(email.get("smtp"), dict) else {}
        for key, kind in SMTP_KEYS.items():
            need("email.smtp.", key, kind, smtp)
        if not smtp.get("host"):
            problems.append("email.smtp.host: empty while email.enabled")
        clear = smtp.get("user") and not smtp.get("starttls") and not smtp.get("ssl")
        if clear and not email.get("allow_insecure_transport"):
            problems.append("email.smtp: a login without starttls or ssl would send the password in clear")
    return problems


def load_settings(path):
    settings = load(path)
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    smtp = (settings.get("email") or {}).get("smtp") if isinstance(settings.get("email"), dict) else None
    if isinstance(smtp, dict):
        remember(smtp.get("password"))
    problems = _problems(settings)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return settings


def make(settings, period, end):
    """(html, text, title, errors) of the report."""
    client = Client(settings["prometheus_url"], settings["timeout"])
    found, errors = sections.build(client, period, end)
    heading = report.title(settings["name"], period, end)
    links = [(link["text"], link["url"]) for link in settings["links"]]
    return (
        report.html_page(heading, found, end, period, links),
        report.text_page(heading, found, end, period, links),
        heading,
        errors,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="settings file (JSON)")
    parser.add_argument("command", choices=["daily", "weekly", "check-config"])
    parser.add_argument("--no-email", action="store_true", help="keep the report as a file only")
    parser.add_argument("--end", type=float, help="end of the period (epoch seconds; default now)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        say(str(exc), error=True)
        return 2
    if args.command == "check-config":
        say(f"{args.config}: OK")
        return 0
    end = args.end if args.end is not None else time.time()
    html, text, heading, errors = make(settings, args.command, end)
    status = 0
    for error in errors:
        say(f"query failed: {error}", error=True)
        status = 1
    try:
        os.makedirs(settings["reports_dir"], mode=0o750, exist_ok=True)
        path = store.save(settings["reports_dir"], args.command, end, html)
        say(f"wrote {path}")
        for old in store.prune(settings["reports_dir"], settings["retention_days"]):
            say(f"removed {old} (older than {settings['retention_days']} days)")
    except OSError as exc:
        say(f"cannot keep the report in {settings['reports_dir']}: {exc.strerror or exc}", error=True)
        status = 1
    email = settings["email"]
    if email["enabled"] and not args.no_email:
        subject = email["subject"].format(period=args.command, title=heading)
        smtp = dict(email["smtp"], timeout=settings["timeout"])
        try:
            mail.send(mail.build(subject, email["from"], email["recipients"], text, html), smtp)
            say(f"sent to {', '.join(email['recipients'])}")
        except DeliveryError as exc:
            say(str(exc), error=True)
            status = 1
    return status
