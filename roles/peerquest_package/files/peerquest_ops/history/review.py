"""The figures of a review period, per key and severity, against the plan's success targets.

    result = figures(records, since, until)   # records: store.read(path, since, until)
    result["rows"]       [{key, severity, alerts, false_positives, acked, mttd, mttr, ...}, ...]
    result["severities"] {severity: the same sums over its keys}
    result["overall"]    WARNING and CRITICAL together

An alert is an incident (incidents.fold): a key from its first record to its
resolution, however many times the monitors raised it meanwhile.
- false-positive rate: alerts an operator marked a false positive, of all alerts;
- acknowledged: alerts an operator answered (ack or false positive), of all
  alerts (the plan's "alert response rate"); INFO needs no answer and is left out;
- MTTD (time to detect): from the event (the time of the log line or failure
  the monitor alerted on, where the alert carries it) to the first delivery;
  without an event time, from the first alert record, so it measures how long
  dedup, the spool and its retries held the alert back;
- MTTR (time to resolve): from the first alert record to the resolution
  (the check passing again, or an operator's peerquest-history resolve).
"""

from peerquest_ops.history.incidents import fold

ANSWERED = ("ack", "false-positive")
# Alert records counted per outcome in a row (retried: a queued delivery tried again).
COUNTED = {
    "sent": ("sent", "handed"),
    "suppressed": ("suppressed",),
    "retried": ("retry-sent", "retry-failed"),
    "queued": ("queued", "held"),
    "failed": ("failed",),
}


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _percent(part, whole):
    return 100.0 * part / whole if whole else None


def summarize(found):
    """The figures of a group of incidents (one key, one severity, or all)."""
    alerts = len(found)
    false_positives = sum(1 for i in found if i.false_positive)
    acked = sum(1 for i in found if i.acked is not None)
    row = {"alerts": alerts, "false_positives": false_positives, "acked": acked}
    row["false_positive_percent"] = _percent(false_positives, alerts)
    row["acked_percent"] = _percent(acked, alerts)
    row["mttd"] = _mean([i.detection_seconds() for i in found])
    row["mttr"] = _mean([i.resolution_seconds() for i in found])
    row["unresolved"] = sum(1 for i in found if i.resolved is None)
    for name, outcomes in COUNTED.items():
        row[name] = sum(i.outcomes.get(o, 0) for i in found for o in outcomes)
    return row


def figures(records, since, until):
    """Rows per (key, severity) of the alerts opened within [since, until), sums per severity and overall."""
    found = [i for i in fold(records) if since <= i.opened < until]
    groups = {}
    for incident in found:
        groups.setdefault((incident.key, incident.severity), []).append(incident)
    rows = [dict(summarize(group), key=key, severity=severity) for (key, severity), group in groups.items()]
    rows.sort(key=lambda r: (-r["alerts"], r["severity"], r["key"]))
    severities = {}
    for severity in sorted({i.severity for i in found}):
        severities[severity] = summarize([i for i in found if i.severity == severity])
    answered = [i for i in found if i.severity != "INFO"]
    return {"since": since, "until": until, "rows": rows, "severities": severities, "overall": summarize(answered)}
