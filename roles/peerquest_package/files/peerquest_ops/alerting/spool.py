"""Deliveries a channel refused, kept until they go out.

spool_dir/<id>.json per pending delivery: the delivery plus id, attempts,
next_attempt (epoch) and last_error. --flush-spool retries those that are due,
one flusher at a time (spool_dir/.lock), with a backoff that doubles per
attempt from retry_base_seconds up to retry_max_seconds.
"""

import json
import os
import time
import uuid

from peerquest_ops.alerting.channels import DeliveryError, deliver
from peerquest_ops.alerting.output import say
from peerquest_ops.core.constants import EX_TEMPFAIL
from peerquest_ops.core.locking import locked
from peerquest_ops.core.state import fsync_dir, write_json


def backoff(config, attempts):
    return min(config["retry_base_seconds"] * 2 ** (attempts - 1), config["retry_max_seconds"])


def queue(delivery, error, config, now):
    """Spool a delivery that failed with error (a DeliveryError); returns the entry."""
    spool_dir = config["spool_dir"]
    os.makedirs(spool_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    entry = dict(delivery, id=f"{stamp}-{delivery['channel']}-{uuid.uuid4().hex[:12]}", attempts=1)
    entry.update(next_attempt=int(now + backoff(config, 1)), last_error=str(error))
    if error.recipients:
        entry["recipients"] = error.recipients
    write_json(os.path.join(spool_dir, f"{entry['id']}.json"), entry)
    return entry


def _retry(path, entry, config, log):
    """Try one due entry; True when delivered (and removed)."""
    severity, key, channel = entry["severity"], entry["key"], entry["channel"]
    now = time.time()
    try:
        done = deliver(entry, config)
    except DeliveryError as exc:
        entry["attempts"] = entry.get("attempts", 1) + 1
        entry["next_attempt"] = int(now + backoff(config, entry["attempts"]))
        entry["last_error"] = str(exc)
        if exc.recipients:
            entry["recipients"] = exc.recipients
        write_json(path, entry)
        say(f"{severity} alert not delivered: {exc}; queued for retry (attempt {entry['attempts']})", error=True)
        where = {"severity": severity, "key": key, "channel": channel}
        log.event("WARNING", "retry-failed", **where, error=exc, attempts=entry["attempts"])
        return False
    os.unlink(path)
    fsync_dir(os.path.dirname(path))
    attempts = entry.get("attempts", 1) + 1
    log.event("INFO", "retry-sent", severity=severity, key=key, channel=channel, to=done, attempts=attempts)
    return True


def flush(config, log):
    """Retry every due entry; exit status 0 when the spool is empty afterwards, EX_TEMPFAIL otherwise."""
    spool_dir = config["spool_dir"]
    if not spool_dir:
        say("no spool_dir configured; nothing to flush")
        return 0
    if not os.path.isdir(spool_dir):
        say("spool flushed: 0 delivered, 0 still queued")
        return 0
    delivered = queued = 0
    # One flusher at a time, so a slow retry is never sent twice.
    with locked(os.path.join(spool_dir, ".lock")):
        for name in sorted(os.listdir(spool_dir)):
            if name.startswith(".") or not name.endswith(".json"):
                continue
            path = os.path.join(spool_dir, name)
            try:
                with open(path, encoding="utf-8") as handle:
                    entry = json.load(handle)
                entry["severity"], entry["key"], entry["channel"]  # noqa: B018 - KeyError/TypeError when malformed
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError) as exc:
                say(f"cannot read queued alert {path}: {exc}", error=True)
                log.event("ERROR", "unreadable", severity="-", key="-", channel="-", file=path)
                queued += 1
                continue
            if entry.get("next_attempt", 0) > time.time():
                queued += 1
            elif _retry(path, entry, config, log):
                delivered += 1
            else:
                queued += 1
    say(f"spool flushed: {delivered} delivered, {queued} still queued")
    return EX_TEMPFAIL if queued else 0
