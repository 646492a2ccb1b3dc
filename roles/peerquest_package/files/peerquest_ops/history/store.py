"""history.jsonl: one JSON record per line, appended by peerquest-alert, the monitors and operators.

    path = history_path(config["state_dir"])          # "" when the alert command keeps no state
    append(path, {"outcome": "sent", "key": ..., "severity": ..., "channel": "email"})
    for record in read(path, since=now - 30 * 86400):  # the file and its rotated copies, .gz too
        ...

A record: id (12 hex digits), time (epoch), outcome, key, severity, channel,
host; optional event_time (when what was alerted happened, where the monitor
knows it), alert (the id of the alert a retry, mark or resolution answers),
attempts, error, by, note. Outcomes: see OUTCOMES.

Each record is one write(2) on a descriptor opened with O_APPEND, so records
of concurrent writers never interleave (a record is kept well under a page).
A history that cannot be written never stops an alert: it is said through
warn(text) and the alert goes on.

Rotation: logrotate renames history.jsonl to history.jsonl-<dateext> and
compresses it a day later; read() takes every copy whose last change is
within the period, compressed or not. A line torn by a crash is skipped.
"""

import contextlib
import glob
import json
import os
import sys
import time
import zlib

from peerquest_ops.core.config import scrub

FILE_NAME = "history.jsonl"
# What became of an alert (one record per channel), and what answers one.
OUTCOMES = {
    "sent": "delivered to a channel",
    "handed": "accepted by an Alertmanager",
    "suppressed": "a duplicate within the dedup window",
    "queued": "a channel failed; waits in the spool",
    "held": "waits in the spool for a channel that refused our credentials",
    "failed": "a channel failed and nothing was queued",
    "unrouted": "its severity is routed to no channel, on purpose",
    "retry-sent": "a queued delivery went out",
    "retry-failed": "a queued delivery failed again",
    "digested": "an INFO finding kept for the daily digest",
    "resolved": "the condition cleared (the check that raised it passed), or an operator resolved it",
    "ack": "an operator acknowledged the alert",
    "false-positive": "an operator marked the alert a false positive",
}
MARKS = ("ack", "false-positive")
# Longer free text is cut: a record stays one small write.
TEXT_LIMIT = 500
GZ = ".gz"


def history_path(state_dir):
    return os.path.join(state_dir, FILE_NAME) if state_dir else ""


def new_id():
    return os.urandom(6).hex()


def _warn_stderr(text):
    print(f"warning: {text}", file=sys.stderr)


def make(outcome, key, severity, channel="-", **fields):
    """A record with its id, time and host; None-valued fields are left out, long texts cut."""
    record = {"id": new_id(), "time": round(time.time(), 3), "outcome": outcome, "key": key}
    record.update(severity=severity, channel=channel, host=os.uname().nodename)
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, (str, Exception)):
            value = str(value)[:TEXT_LIMIT]
        record[name] = value
    return record


def _open(path):
    # 0660 minus the umask: root (an operator) and the alert account share the file through its group.
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o660)


def append(path, record, warn=None):
    """Append one record (one O_APPEND write); the record, or None when there is no history or it failed."""
    if not path:
        return None
    data = (scrub(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) + "\n").encode("utf-8")
    try:
        try:
            fd = _open(path)
        except FileNotFoundError:
            # As the dedup state's lock does: the state directory is made when missing.
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = _open(path)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        (warn or _warn_stderr)(f"alert history not written: {path}: {exc.strerror}")
        return None
    return record


def record(path, outcome, key, severity, channel="-", warn=None, **fields):
    """make() and append() in one call."""
    return append(path, make(outcome, key, severity, channel, **fields), warn=warn)


def files(path, since=None):
    """The history file and its rotated copies (compressed or not) that may hold records at or after since."""
    found = [p for p in glob.glob(glob.escape(path) + "-*") if not p.endswith((".lock", ".tmp"))]
    found.append(path)
    kept = []
    for name in found:
        with contextlib.suppress(FileNotFoundError):
            # A copy last changed before the period holds nothing of it.
            if since is None or os.stat(name).st_mtime >= since:
                kept.append(name)
    return kept


def _lines(name):
    # Here, not at the top: the commands that only append never load gzip.
    import gzip

    opener = gzip.open if name.endswith(GZ) else open
    try:
        with opener(name, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except FileNotFoundError:
        return
    except (EOFError, zlib.error, gzip.BadGzipFile):
        # A compressed copy cut short: what was read stands.
        return


def read(path, since=None, until=None):
    """Every whole record of the history and its rotated copies with since <= time < until, oldest first."""
    records = []
    for name in files(path, since):
        for line in _lines(name):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if not isinstance(item, dict) or not isinstance(item.get("time"), (int, float)):
                continue
            if (since is None or item["time"] >= since) and (until is None or item["time"] < until):
                records.append(item)
    records.sort(key=lambda r: r["time"])
    return records
