"""The monthly review: which alerts fired in 30 days, how often, how many were suppressed or failed.

Reads peerquest-alert's event lines in monitoring.log and its uncompressed
rotated copies (core.eventlog's format) and sends the tally as an INFO alert,
which the digest carries.
"""

import glob
import re
import time

from peerquest_ops.core.timefmt import parse_log_stamp

# "<date> <time> peerquest-alert <level> <event> ... severity=<S> key=<K>"
ALERT_LOG = re.compile(r"^(\S+ \S+) peerquest-alert \S+ (\w+) .*?severity=(\S+) key=(\S+)")
DAYS = 30


def tally(alert_log, since):
    """{(severity, key): {event: count}} of the alert events at or after since."""
    totals = {}
    for path in sorted(glob.glob(alert_log + "*")):
        if path.endswith(".gz"):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = ALERT_LOG.match(line)
                if not match:
                    continue
                if parse_log_stamp(match.group(1)) >= since:
                    entry = totals.setdefault((match.group(3), match.group(4)), {})
                    entry[match.group(2)] = entry.get(match.group(2), 0) + 1
    return totals


def run_review(monitor, now=None):
    """Monthly: which alerts fired, how often, how many were suppressed or failed."""
    now = now or time.time()
    totals = tally(monitor.config["review"]["alert_log"], now - DAYS * 86400)
    lines = [f"Monthly alert review for {monitor.host}: {len(totals)} alert key(s) in {DAYS} days"]
    for (severity, key), events in sorted(totals.items(), key=lambda kv: -sum(kv[1].values())):
        lines.append(f"- {severity} {key}: " + ", ".join(f"{k}={v}" for k, v in sorted(events.items())))
    monitor.alert("INFO", "review", "\n".join(lines))
    monitor.mark_run("review")
    return totals
