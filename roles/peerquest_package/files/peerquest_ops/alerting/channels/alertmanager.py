"""Delivery through Alertmanager: POST /api/v2/alerts to every configured Alertmanager.

    active(config)                  True when alerts go through Alertmanager (enabled, at least one URL)
    payload(delivery, config, now)  the alert as Alertmanager's API takes it
    send(delivery, config)          post it to every URL; what was done, or DeliveryError when none accepted
    post(alerts, config)            ([address that accepted, ...], [(address, reason), ...])
    refresh(config, log)            post the alerts still firing again (--flush-spool)
    resolve(config, key, log)       post key's firing alerts as ended now and forget them (--resolve)
    test_alert(config, host)        the alert --test-channels posts on this path

On this path nothing is sent to a channel directly: Alertmanager routes by the
severity label to its receivers. An alert is posted to every Alertmanager (each
member of a cluster, as Prometheus does) and counts as delivered when at least
one answered 2xx; when none did, the caller spools it (channel "alertmanager")
and --flush-spool posts it again.

Labels: alertname (PeerQuestLogAlert, or the caller's --alertname), severity,
key, instance (this host), job="peerquest-alert". Annotations: summary (the
message's first line), description (the message) and, when a runbook base URL
is set, runbook_url. The key and the message are scrubbed of the
configuration's secrets: Alertmanager shows them to anyone who reaches its API.
startsAt is when the alert was raised; endsAt is resolve_seconds after it was
posted (a retried alert still fires for the whole period once it is through).

Alertmanager keeps its alerts in memory only. So that a restarted one still
knows them, every alert it accepted is kept in state_dir/alertmanager-firing/
until its endsAt and posted again (unchanged) by each --flush-spool, as
Prometheus re-sends its firing alerts; Alertmanager's notification log (kept on
disk and shared by its cluster) makes sure such a re-post is never a second
message.
"""

import concurrent.futures
import contextlib
import hashlib
import os
import socket
import time

from peerquest_ops.alerting.channels.base import DeliveryError
from peerquest_ops.alerting.message import first_line, truncate
from peerquest_ops.alerting.output import PROGRAM, warn
from peerquest_ops.alerting.schema import alertmanager_insecure
from peerquest_ops.core.config import scrub
from peerquest_ops.core.http import HttpError, fetch, origin, status_text
from peerquest_ops.core.state import fsync_dir, read_json, write_json
from peerquest_ops.core.timefmt import iso_utc

CHANNEL = "alertmanager"
# The alertname of an alert raised from a log line or a monitor's finding, unless the caller names its check.
ALERTNAME = "PeerQuestLogAlert"
# The alertname of --test-channels on this path.
TEST_ALERTNAME = "PeerQuestChannelTest"
API_PATH = "/api/v2/alerts"
FIRING_DIR = "alertmanager-firing"
SUMMARY_LIMIT = 250


def active(config):
    section = config["alertmanager"]
    return bool(section["enabled"] and section["urls"])


def instance(config):
    return config["alertmanager"]["instance"] or socket.gethostname()


def address(url):
    """scheme://host:port of a URL, as printed (never a password written into it)."""
    return origin(url)


def payload(delivery, config, now=None):
    """One alert of Alertmanager's API v2 for a delivery (severity, key, message, created, alertname, instance)."""
    now = time.time() if now is None else now
    section = config["alertmanager"]
    alertname = delivery.get("alertname") or ALERTNAME
    message = scrub(delivery["message"])
    annotations = {"summary": truncate(first_line(message), SUMMARY_LIMIT), "description": message}
    if section["runbook_base_url"]:
        annotations["runbook_url"] = f"{section['runbook_base_url']}#{alertname.lower()}"
    return {
        "labels": {
            "alertname": alertname,
            "severity": delivery["severity"],
            # The default key is the message's first line: scrubbed like it.
            "key": scrub(delivery["key"]),
            "instance": delivery.get("instance") or instance(config),
            "job": PROGRAM,
        },
        "annotations": annotations,
        "startsAt": iso_utc(delivery["created"]),
        "endsAt": iso_utc(max(now, delivery["created"]) + section["resolve_seconds"]),
    }


def _post_one(url, alerts, config):
    """(address, None) when this Alertmanager accepted the alerts, (address, reason) otherwise."""
    where = address(url)
    refusal = alertmanager_insecure(config, url)
    if refusal:
        # Judged again at send time: a spooled retry cannot post in clear either.
        return where, "refused: " + refusal
    try:
        status, _text, _headers = fetch(
            url.rstrip("/") + API_PATH,
            method="POST",
            body=alerts,
            headers={"User-Agent": PROGRAM},
            timeout=config["http_timeout"],
            ca_file=config["ca_file"],
        )
    except HttpError as exc:
        return where, str(exc)
    return where, None if 200 <= status < 300 else status_text(status)


def post(alerts, config):
    """Post alerts to every Alertmanager at once: ([addresses that accepted], [(address, reason)])."""
    urls = list(dict.fromkeys(config["alertmanager"]["urls"]))
    # At once: a dead host's timeout does not hold up the one that answers.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(urls)) as pool:
        results = list(pool.map(lambda url: _post_one(url, alerts, config), urls))
    accepted = [where for where, reason in results if reason is None]
    failed = [(where, reason) for where, reason in results if reason is not None]
    return accepted, failed


def failures_text(failed):
    return "; ".join(f"{where}: {reason}" for where, reason in failed)


def send(delivery, config):
    """Post one delivery to every Alertmanager; what was done, or DeliveryError when none accepted it."""
    alert = payload(delivery, config)
    accepted, failed = post([alert], config)
    if not accepted:
        raise DeliveryError(f"no Alertmanager accepted it: {failures_text(failed)}")
    remember(config, alert)
    done = f"alertmanager {', '.join(accepted)}"
    return done + (f" (not accepted by {failures_text(failed)})" if failed else "")


# ------------------------------------------------------------------ alerts still firing


def firing_dir(config):
    return os.path.join(config["state_dir"], FIRING_DIR) if config["state_dir"] else None


def remember(config, alert):
    """Keep an accepted alert until its endsAt, for refresh(); a state problem never costs the delivery."""
    directory = firing_dir(config)
    if not directory:
        return
    labels = "\n".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
    name = hashlib.sha256(labels.encode("utf-8")).hexdigest()[:32]
    ends = time.time() + config["alertmanager"]["resolve_seconds"]
    try:
        os.makedirs(directory, exist_ok=True)
        write_json(os.path.join(directory, f"{name}.json"), {"ends": ends, "alert": alert})
    except OSError as exc:
        warn(f"firing alert not kept for re-posting: {exc.filename or directory}: {exc.strerror}")


def refresh(config, log, now=None):
    """Post every alert still firing again (unchanged); drop those past their end. Returns how many were posted."""
    directory = firing_dir(config)
    if not directory or not os.path.isdir(directory):
        return 0
    now = time.time() if now is None else now
    alerts = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        record = read_json(path, {}, warn=warn)
        alert, ends = record.get("alert"), record.get("ends")
        if not isinstance(alert, dict) or not isinstance(ends, (int, float)) or ends <= now:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            fsync_dir(directory)
            continue
        alerts.append(alert)
    if not alerts:
        return 0
    accepted, failed = post(alerts, config)
    if not accepted:
        # Already delivered once: a refresh that fails loses nothing and is only recorded.
        log.event("INFO", "refresh-failed", severity="-", key="-", channel=CHANNEL, error=failures_text(failed))
        return 0
    return len(alerts)


def resolve(config, key, log, now=None):
    """The condition behind key is over: its firing alerts are posted with endsAt now (Alertmanager
    sends the resolution where a receiver asks for it) and no longer re-posted. How many ended."""
    directory = firing_dir(config)
    if not directory or not os.path.isdir(directory):
        return 0
    now = time.time() if now is None else now
    wanted = scrub(key)  # as payload() labels it
    ended, paths = [], []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        alert = read_json(path, {}, warn=warn).get("alert")
        if isinstance(alert, dict) and alert.get("labels", {}).get("key") == wanted:
            ended.append(dict(alert, endsAt=iso_utc(now)))
            paths.append(path)
    if not ended:
        return 0
    accepted, failed = post(ended, config)
    if not accepted:
        # Kept, so refresh() goes on posting them until their own end: Alertmanager resolves them then.
        log.event("INFO", "resolve-failed", severity="-", key=key, channel=CHANNEL, error=failures_text(failed))
        return 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fsync_dir(directory)
    log.event("INFO", "resolved", severity=ended[0]["labels"]["severity"], key=key, channel=CHANNEL)
    return len(ended)


def test_alert(config, host):
    """What --test-channels posts on this path: an INFO alert named TEST_ALERTNAME, never kept for re-posting."""
    delivery = {"severity": "INFO", "key": "selftest", "message": f"PeerQuest alert channel test from {host}"}
    delivery.update(created=time.time(), alertname=TEST_ALERTNAME)
    return payload(delivery, config)
