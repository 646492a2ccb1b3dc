"""Deliveries a channel refused, kept until they go out.

spool_dir/<id>.json per pending delivery: the delivery plus id, attempts,
next_attempt (epoch), last_error and reported (the fault last reported).
--flush-spool retries those that are due, one flusher at a time
(spool_dir/.lock; a second flusher says so and leaves), so every delivery goes
out once however many flushers start together.

When a retry may happen: the backoff doubles per attempt from
retry_base_seconds up to retry_max_seconds; a receiver that answered 429/503
with Retry-After is not asked again before that time (capped at
retry_after_max_seconds, so a receiver cannot park alerts for a day).

Reporting: a fault is reported once (a line on standard error and a WARNING
event in the log); the same fault on a later retry is only recorded (an INFO
retry-failed event), a different fault is reported again.

Held channels (holds): a channel that refused our credentials (SMTP login
refused, webhook 401/403) is not retried: every try would fail the same way
and could lock the account. spool_dir/.held-<channel>.json records it with a
salted fingerprint of the channel's settings; its deliveries (and new alerts
for it) wait in the spool until the settings change, then go out with the
next flush. Reported once, as an ERROR event naming what to fix.

Entries of channel "alertmanager" (channels.alertmanager: no Alertmanager
accepted the alert) carry alertname and instance besides; the other entries
keep their format. Should the configuration stop naming Alertmanagers while
such an entry waits, the next flush hands it to the channels routed for its
severity (reroute) instead of keeping it forever.

Unreadable entries (torn, hand-edited) are moved to spool_dir/.corrupt/,
reported once (an ERROR event and a WARNING alert naming the file); the rest
of the queue is still delivered.
"""

import contextlib
import hashlib
import json
import os
import re
import time

from peerquest_ops.alerting import record
from peerquest_ops.alerting.channels import DeliveryError, alertmanager, deliver
from peerquest_ops.alerting.output import say, warn
from peerquest_ops.core.constants import EX_TEMPFAIL
from peerquest_ops.core.locking import locked
from peerquest_ops.core.state import fsync_dir, read_json, write_json

CORRUPT_DIR = ".corrupt"
# A fault's identity, whatever the receiver's current Retry-After.
_RETRY_AFTER = re.compile(r" \(Retry-After: \d+ s\)")


def backoff(config, attempts):
    return min(config["retry_base_seconds"] * 2 ** (attempts - 1), config["retry_max_seconds"])


def delay(config, attempts, error):
    """Seconds until the next try: the backoff, or longer when the receiver asked (capped)."""
    wait = backoff(config, attempts)
    if getattr(error, "retry_after", None) is not None:
        wait = max(wait, min(error.retry_after, config["retry_after_max_seconds"]))
    return wait


def fault(error):
    return _RETRY_AFTER.sub("", str(error))


# ------------------------------------------------------------------ holds


def _settings(config, channel):
    return config["email"]["smtp"] if channel == "email" else config[channel]


def _fingerprint(config, channel, salt):
    # Salted: the hold file never gives away a hash of the password alone.
    data = json.dumps(_settings(config, channel), sort_keys=True)
    return hashlib.sha256(f"{salt}\n{data}".encode()).hexdigest()


def _hold_path(config, channel):
    return os.path.join(config["spool_dir"], f".held-{channel}.json")


def held(config, channel, log=None):
    """The hold on channel while its settings are unchanged; None otherwise (a stale hold is lifted)."""
    if not config["spool_dir"]:
        return None
    path = _hold_path(config, channel)
    hold = read_json(path, None, warn=warn)
    if not isinstance(hold, dict):
        return None
    if hold.get("fingerprint") == _fingerprint(config, channel, hold.get("salt", "")):
        return hold
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    if log is not None:
        log.event("INFO", "released", severity="-", key="-", channel=channel, reason="settings changed")
    return None


def hold(config, channel, error, now):
    """Hold channel after a permanent failure; True when this is news (to be reported)."""
    if held(config, channel):
        return False
    salt = os.urandom(16).hex()
    record = {"since": now, "error": str(error), "salt": salt, "fingerprint": _fingerprint(config, channel, salt)}
    os.makedirs(config["spool_dir"], exist_ok=True)
    write_json(_hold_path(config, channel), record)
    return True


def report_hold(log, where, error):
    say(
        f"{where['severity']} alert not delivered: {error}; {where['channel']} is held: its deliveries wait in the "
        "spool, not retried, until its settings change",
        error=True,
    )
    log.event("ERROR", "held", **where, error=error)


# ------------------------------------------------------------------ queue


def queue(delivery, error, config, now, reported=True):
    """Spool a delivery that failed with error (a DeliveryError); returns the entry."""
    spool_dir = config["spool_dir"]
    os.makedirs(spool_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    entry = dict(delivery, id=f"{stamp}-{delivery['channel']}-{os.urandom(6).hex()}", attempts=1)
    entry.update(next_attempt=int(now + delay(config, 1, error)), last_error=str(error))
    if reported:
        entry["reported"] = fault(error)
    if error.recipients:
        entry["recipients"] = error.recipients
    write_json(os.path.join(spool_dir, f"{entry['id']}.json"), entry)
    return entry


def _retry(path, entry, config, log):
    """Try one due entry; True when delivered (and removed)."""
    severity, key, channel = entry["severity"], entry["key"], entry["channel"]
    where = {"severity": severity, "key": key, "channel": channel}
    now = time.time()
    try:
        done = deliver(entry, config)
    except DeliveryError as exc:
        entry["attempts"] = entry.get("attempts", 1) + 1
        entry["next_attempt"] = int(now + delay(config, entry["attempts"], exc))
        entry["last_error"] = str(exc)
        if exc.recipients:
            entry["recipients"] = exc.recipients
        news = fault(exc) != entry.get("reported")
        entry["reported"] = fault(exc)
        try:
            write_json(path, entry)
        except OSError as problem:
            # A full or broken spool disk must not end the flush: the entry stays as it was (due, so tried
            # again next time) and the entries after it are still tried.
            say(f"cannot record the attempt in {path}: {problem.strerror}; it stays queued as it was", error=True)
            log.event("WARNING", "spool-unwritable", **where, file=path, error=problem.strerror)
        record.note(config, "retry-failed", entry, error=exc, attempts=entry["attempts"])
        if exc.permanent:
            if hold(config, channel, exc, now):
                report_hold(log, where, exc)
        elif news:
            say(f"{severity} alert not delivered: {exc}; queued for retry (attempt {entry['attempts']})", error=True)
            log.event("WARNING", "retry-failed", **where, error=exc, attempts=entry["attempts"])
        else:
            # Already reported: recorded, not reported again.
            log.event("INFO", "retry-failed", **where, attempts=entry["attempts"], repeated="yes")
        return False
    os.unlink(path)
    fsync_dir(os.path.dirname(path))
    attempts = entry.get("attempts", 1) + 1
    log.event("INFO", "retry-sent", severity=severity, key=key, channel=channel, to=done, attempts=attempts)
    record.note(config, "retry-sent", entry, attempts=attempts)
    return True


def set_aside(path, config, log, problem):
    """Move an unreadable entry to spool_dir/.corrupt/ and report it; returns where it went."""
    corrupt = os.path.join(config["spool_dir"], CORRUPT_DIR)
    os.makedirs(corrupt, exist_ok=True)
    aside = os.path.join(corrupt, os.path.basename(path))
    os.replace(path, aside)
    fsync_dir(config["spool_dir"])
    say(f"cannot read queued alert {path}: {problem}; moved to {aside}", error=True)
    log.event("ERROR", "unreadable", severity="-", key="-", channel="-", file=path, kept=aside, error=problem)
    return aside


def _read(path):
    """The entry in path; ValueError/KeyError/TypeError when it is not a whole one."""
    with open(path, encoding="utf-8") as handle:
        entry = json.load(handle)
    if not isinstance(entry, dict):
        raise TypeError("not a JSON object")
    for name in ("severity", "key", "channel", "message"):
        if not isinstance(entry.get(name), str):
            raise KeyError(f"{name} missing")
    return entry


def _rerouted(path, entry, reroute):
    """An Alertmanager entry while no Alertmanager is configured: handed to the channels; True when done."""
    if reroute is None or reroute(entry) == 1:
        return False
    # Sent, or queued again per channel (exit status 75): this entry is done.
    os.unlink(path)
    fsync_dir(os.path.dirname(path))
    return True


def _flush_locked(config, log, reroute=None):
    """(delivered, queued, held, set aside) for one pass over the spool."""
    spool_dir = config["spool_dir"]
    counts = {"delivered": 0, "queued": 0, "held": 0}
    aside = []
    holds = {}
    released = set()
    for name in sorted(os.listdir(spool_dir)):
        if name.startswith(".") or not name.endswith(".json"):
            continue
        path = os.path.join(spool_dir, name)
        try:
            entry = _read(path)
        except FileNotFoundError:
            continue
        except (ValueError, KeyError, TypeError) as exc:
            aside.append(set_aside(path, config, log, str(exc) or type(exc).__name__))
            continue
        channel = entry["channel"]
        if channel == alertmanager.CHANNEL and not alertmanager.active(config):
            counts["delivered" if _rerouted(path, entry, reroute) else "queued"] += 1
            continue
        if channel not in holds:
            was_held = os.path.exists(_hold_path(config, channel))
            holds[channel] = held(config, channel, log)
            if was_held and not holds[channel]:
                # The settings changed: what waited for them goes now.
                released.add(channel)
        if holds[channel]:
            counts["held"] += 1
        elif entry.get("next_attempt", 0) > time.time() and channel not in released:
            counts["queued"] += 1
        elif _retry(path, entry, config, log):
            counts["delivered"] += 1
        else:
            counts["queued"] += 1
            # A channel that just refused our credentials holds the rest of its entries too.
            holds[channel] = held(config, channel)
    return counts, aside


def flush(config, log, alert=None, reroute=None):
    """Retry every due entry; exit status 0 when the spool is empty afterwards, EX_TEMPFAIL otherwise.

    alert(severity, message) reports entries that had to be set aside (after the lock is released);
    reroute(entry) sends an Alertmanager entry through the channels when no Alertmanager is configured
    (an exit status: 1 keeps it queued).
    """
    spool_dir = config["spool_dir"]
    if not spool_dir:
        say("no spool_dir configured; nothing to flush")
        return 0
    if not os.path.isdir(spool_dir):
        say("spool flushed: 0 delivered, 0 still queued")
        return 0
    lock = os.path.join(spool_dir, ".lock")
    try:
        # One flusher at a time: a delivery is read, sent and removed by one process only.
        with locked(lock, blocking=False):
            counts, aside = _flush_locked(config, log, reroute)
    except BlockingIOError:
        say(f"another --flush-spool is running (it holds {lock}); it delivers what is due")
        return EX_TEMPFAIL
    held_text = f", {counts['held']} held (a channel refused our credentials)" if counts["held"] else ""
    say(f"spool flushed: {counts['delivered']} delivered, {counts['queued']} still queued{held_text}")
    for path in aside:
        if alert is not None:
            alert("WARNING", f"a queued alert could not be read and was set aside: {path}")
    return EX_TEMPFAIL if counts["queued"] or counts["held"] else 0
