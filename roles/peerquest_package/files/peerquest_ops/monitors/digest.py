"""The daily digest: INFO alerts queued during the day and a 24-hour summary, sent as one INFO alert.

INFO alerts are appended to digest.jsonl instead of being sent. The digest
job moves that file aside (new items start a fresh one meanwhile), sends
everything in one message and removes what it sent once peerquest-alert
delivered it or queued it in its spool (EX_TEMPFAIL), which retries it.
"""

import contextlib
import json
import os
import time

from peerquest_ops.core.constants import EX_TEMPFAIL
from peerquest_ops.monitors.runtime import load_json, log
from peerquest_ops.monitors.windows import window_count

QUEUE = "digest.jsonl"


def queue(monitor, key, message):
    """Keep an INFO alert for the next digest."""
    with open(os.path.join(monitor.state_dir, QUEUE), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"time": time.time(), "key": key, "message": message}) + "\n")


def _take_queue(monitor):
    """The queued items, from a file set aside so new items start a fresh one; (items, its path)."""
    path = os.path.join(monitor.state_dir, QUEUE)
    pending = path + ".sending"
    if os.path.exists(path):
        os.replace(path, pending)
    items = []
    if os.path.exists(pending):
        with open(pending, encoding="utf-8") as handle:
            items = [json.loads(line) for line in handle if line.strip()]
    return items, pending


def _summary(monitor, now):
    lines = [f"PeerQuest daily digest for {monitor.host}, {time.strftime('%Y-%m-%d', time.localtime(now))}"]
    errors = monitor.read_state("errors", {}).get("buckets", {})
    counts = {name: window_count(b, now, 86400) for name, b in sorted(errors.items()) if not name.startswith("_")}
    lines.append("Events in the last 24 hours: " + (", ".join(f"{k}={v}" for k, v in counts.items()) or "none"))
    integrity_file = monitor.config.get("integrity", {}).get("result_file")
    if integrity_file and os.path.exists(integrity_file):
        result = load_json(integrity_file, {})
        lines.append(
            f"Last integrity audit: {result.get('status')} at {result.get('checked_at')}, "
            f"issues {result.get('total_issues')}"
        )
    return lines


def run_digest(monitor, now=None):
    """Send queued INFO items and a daily summary as one INFO alert."""
    now = now or time.time()
    items, pending = _take_queue(monitor)
    lines = _summary(monitor, now)
    lines += [f"- {time.strftime('%H:%M', time.localtime(i['time']))} {i['message']}" for i in items]
    # Each run's digest is its own message: a key per run (not per second) keeps dedup from
    # swallowing a second digest sent within the same second.
    done = monitor.send("INFO", f"{monitor.host}:digest:{time.time_ns()}", "\n".join(lines), timeout=300)
    log(f"digest: {len(items)} item(s), exit={done.returncode} {(done.stdout + done.stderr).strip()}")
    if done.returncode in (0, EX_TEMPFAIL):  # queued in the spool, which retries it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pending)
    monitor.mark_run("digest")
    return items
