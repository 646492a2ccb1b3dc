"""Which channels get an alert, and sending it there.

    route(config, severity)                          [(channel, recipients or None), ...]
    send_alert(config, log, severity, message, key)  exit status of one alert (a held channel: queued, no try)
    selftest(config, log)                            exit status of the channel test

When the configuration names Alertmanagers (channels.alertmanager.active),
an alert goes to them instead of the channels, and the channel test posts a
test alert to them (see send_via_alertmanager, selftest).

Exit statuses: 0 delivered (or suppressed duplicate, or routed nowhere on
purpose), 1 a channel failed and nothing was queued, EX_TEMPFAIL (75) a
channel failed and its delivery is queued for retry.
"""

import socket
import time

from peerquest_ops.alerting import dedup, record, spool
from peerquest_ops.alerting.channels import DeliveryError, alertmanager, deliver
from peerquest_ops.alerting.output import say
from peerquest_ops.core.constants import EX_TEMPFAIL
from peerquest_ops.history.store import new_id


def route(config, severity):
    """(channel, recipients) for each channel that gets this severity."""
    out = []
    for channel in dict.fromkeys(config["routes"].get(severity) or []):
        # config_problems refused an email route without recipients: deliver() would fail it, never drop it.
        recipients = (config["email"]["recipients"].get(severity) or []) if channel == "email" else None
        out.append((channel, recipients))
    return out


def _claim(config, key, now):
    """(duplicate, previous entry, claimed); unusable dedup state never costs the alert."""
    try:
        duplicate, previous = dedup.claim(config, key, now)
    except OSError as exc:
        say(f"warning: dedup skipped: {exc.filename or 'state'}: {exc.strerror}", error=True)
        return False, {}, False
    return duplicate, previous, True


def _failed(delivery, error, config, log, use_spool, now):
    """Report a failed delivery, queue it when allowed; returns its exit status."""
    severity, key, channel = delivery["severity"], delivery["key"], delivery["channel"]
    where = {"severity": severity, "key": key, "channel": channel}
    if not use_spool:
        say(f"{severity} alert not delivered: {error}", error=True)
        log.event("ERROR", "failed", **where, error=error)
        record.note(config, "failed", delivery, error=error)
        return 1
    try:
        entry = spool.queue(delivery, error, config, now)
        news = error.permanent and spool.hold(config, channel, error, now)
    except OSError as exc:
        say(f"{severity} alert not delivered: {error}; could not queue: {exc.strerror}", error=True)
        log.event("ERROR", "failed", **where, error=error, queue_error=exc.strerror)
        record.note(config, "failed", delivery, error=error)
        return 1
    if news:
        spool.report_hold(log, where, error)
    else:
        say(f"{severity} alert not delivered: {error}; queued for retry", error=True)
    log.event("WARNING", "queued", **where, error=error, id=entry["id"])
    record.note(config, "held" if news else "queued", delivery, error=error)
    return EX_TEMPFAIL


def _queue_held(delivery, hold, config, log, now):
    """A channel held for refused credentials: the delivery waits in the spool without a try."""
    severity, channel = delivery["severity"], delivery["channel"]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(hold.get("since", now)))
    error = DeliveryError(f"{channel} is held since {since}: {hold.get('error', '')}", permanent=True)
    entry = spool.queue(delivery, error, config, now)
    say(
        f"{severity} alert not sent to {channel}: held since {since} (refused credentials); queued until "
        "its settings change",
        error=True,
    )
    log.event("INFO", "queued", severity=severity, key=delivery["key"], channel=channel, held="yes", id=entry["id"])
    record.note(config, "held", delivery)
    return EX_TEMPFAIL


def send_via_alertmanager(config, log, severity, message, key, alertname=None, use_spool=True, event_time=None):
    """Post one alert to the Alertmanagers; queued when none accepts it.

    No local dedup on this path: Alertmanager groups and deduplicates (the same
    labels are one alert, and its notification log, shared by its cluster, sends
    one message per incident), so every alert is posted and extends its endsAt.
    routes do not apply either: Alertmanager routes by the severity label.
    """
    now = time.time()
    delivery = {"channel": alertmanager.CHANNEL, "severity": severity, "key": key, "message": message}
    delivery.update(created=now, suppressed=0, alertname=alertname or alertmanager.ALERTNAME)
    delivery["instance"] = alertmanager.instance(config)
    delivery.update(alert_id=new_id(), **({"event_time": event_time} if event_time is not None else {}))
    try:
        done = deliver(delivery, config)
    except DeliveryError as error:
        return _failed(delivery, error, config, log, bool(config["spool_dir"]) and use_spool, now)
    log.event("INFO", "sent", severity=severity, key=key, channel=alertmanager.CHANNEL, to=done)
    record.note(config, "handed", delivery)
    say(f"{severity} alert sent: {done}")
    return 0


def send_alert(config, log, severity, message, key=None, use_spool=True, alertname=None, event_time=None):
    """Send one alert to every channel routed for its severity, once per dedup window.

    alertname names the check on the Alertmanager path (ignored by the channels); event_time (epoch)
    is when what is alerted happened, kept in the alert history for the time to detect."""
    key = key or f"{severity} {message.splitlines()[0]}"
    if alertmanager.active(config):
        return send_via_alertmanager(config, log, severity, message, key, alertname, use_spool, event_time)
    # Every record of this alert (per channel, per retry) carries its id.
    alert = {"severity": severity, "key": key, "alert_id": new_id()}
    if event_time is not None:
        alert["event_time"] = event_time
    deliveries = route(config, severity)
    if not deliveries:
        # A site may route a severity nowhere on purpose; say so rather than pretend it went out.
        say(f"{severity} alert not sent: routes.{severity} lists no channel")
        record.note(config, "unrouted", alert)
        return 0
    now = time.time()
    duplicate, previous, key_claimed = _claim(config, key, now)
    if duplicate:
        say(f"suppressed duplicate {key}")
        log.event("INFO", "suppressed duplicate", severity=severity, key=key, channel="-", count=previous["suppressed"])
        record.note(config, "suppressed", alert, count=previous["suppressed"])
        return 0
    base = dict(alert, created=now, suppressed=previous.get("suppressed", 0))
    base["message"] = message + dedup.suppressed_note(previous)
    use_spool = bool(config["spool_dir"]) and use_spool
    sent, status = [], 0
    for channel, recipients in deliveries:
        delivery = dict(base, channel=channel, **({"recipients": recipients} if recipients else {}))
        hold = spool.held(config, channel, log) if use_spool else None
        if hold:
            result = _queue_held(delivery, hold, config, log, now)
            status = status or result
            continue
        try:
            sent.append(deliver(delivery, config))
        except DeliveryError as error:
            result = _failed(delivery, error, config, log, use_spool, now)
            status = 1 if result == 1 else (status or result)
            continue
        log.event("INFO", "sent", severity=severity, key=key, channel=channel, to=sent[-1])
        record.note(config, "sent", delivery)
    if status == 1 and key_claimed:
        try:
            dedup.release(config, key, now, previous)
        except OSError as exc:
            say(f"warning: dedup not released: {exc.filename or 'state'}: {exc.strerror}", error=True)
    if sent:
        say(f"{severity} alert sent: {'; '.join(sent)}")
    return status


def selftest_via_alertmanager(config, log, host):
    """A test alert to every Alertmanager (which routes it as INFO to its receivers); 1 if one did not accept it."""
    accepted, failed = alertmanager.post([alertmanager.test_alert(config, host)], config)
    where = {"severity": "INFO", "key": "selftest", "channel": alertmanager.CHANNEL}
    for done in accepted:
        say(f"channel test sent: alertmanager {done}")
        log.event("INFO", "test-sent", **where, to=done)
    for done, reason in failed:
        say(f"channel test failed: alertmanager {done}: {reason}", error=True)
        log.event("ERROR", "test-failed", **where, to=done, error=reason)
    if failed:
        say(f"channel test failed for: alertmanager {', '.join(done for done, _ in failed)}", error=True)
        return 1
    return 0


def selftest(config, log):
    """A test message to each of selftest_channels: never deduplicated, never spooled; 1 if one failed.

    Through Alertmanager: one test alert to every Alertmanager instead, when selftest_channels lists any
    channel (Alertmanager's receivers, not this host, talk to the channels)."""
    channels = config["selftest_channels"]
    if not channels:
        say("no channel listed in selftest_channels")
        return 0
    host = socket.gethostname()
    if alertmanager.active(config):
        return selftest_via_alertmanager(config, log, host)
    base = {"severity": "INFO", "key": "selftest", "message": f"PeerQuest alert channel test from {host}"}
    base.update(created=time.time(), suppressed=0)
    recipients = config["email"]["recipients"].values()
    where = {"severity": "INFO", "key": "selftest"}
    failed = []
    for channel in dict.fromkeys(channels):
        delivery = dict(base, channel=channel)
        if channel == "email":
            # Every configured mailbox is checked.
            delivery["recipients"] = list(dict.fromkeys(a for addresses in recipients for a in addresses))
        try:
            done = deliver(delivery, config)
        except DeliveryError as exc:
            failed.append(channel)
            say(f"channel test failed: {exc}", error=True)
            log.event("ERROR", "test-failed", **where, channel=channel, error=exc)
            continue
        say(f"channel test sent: {done}")
        log.event("INFO", "test-sent", **where, channel=channel, to=done)
    if failed:
        say(f"channel test failed for: {', '.join(failed)}", error=True)
        return 1
    return 0
