"""Records folded into incidents: one alert of a key from its first record to its resolution.

    found = fold(records)            # [Incident, ...] in the order they opened
    incident = find(found, "3f2a9c0d11ab") or find(found, "errors:approval_failed")

An incident of a key opens at the first alert record (any outcome but a mark
or a resolution) while none of that key is open. Later alert records join it
(the monitors raise a condition again at every run while it holds: those are
the suppressed duplicates). A "resolved" record closes it. A key whose alerts
stop without a resolution (a log line is an event, not a condition) starts a
new incident when it is raised again after QUIET_SECONDS of silence.

A mark (ack, false-positive) names the alert it answers by id (field alert);
it applies to the incident holding that id, else to the key's latest incident
opened before the mark.
"""

from peerquest_ops.history.store import MARKS

# Delivered: a person (or Alertmanager, or the digest) has it.
DELIVERED = ("sent", "handed", "retry-sent", "digested")
RESOLVED = "resolved"
QUIET_SECONDS = 6 * 3600


class Incident:
    def __init__(self, first):
        self.key = first["key"]
        self.severity = first.get("severity", "-")
        self.opened = first["time"]
        self.last = first["time"]
        # When what was alerted happened: the earliest event time a record carries.
        self.event_time = first.get("event_time")
        # The id an operator names it by: the one peerquest-alert's records of one alert share, else the first record's.
        self.alert_id = first.get("alert") or first.get("id", "")
        self.ids = set()
        self.outcomes = {}
        self.delivered = None
        self.resolved = None
        self.acked = None
        self.false_positive = False
        self.notes = []
        self.add(first)

    def add(self, record):
        outcome = record["outcome"]
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.last = record["time"]
        # Any record's id names the incident, and so does the id every record of one alert shares.
        self.ids.update(i for i in (record.get("id"), record.get("alert")) if i)
        when = record.get("event_time")
        if isinstance(when, (int, float)) and (self.event_time is None or when < self.event_time):
            self.event_time = when
        if outcome in DELIVERED and self.delivered is None:
            self.delivered = record["time"]

    def mark(self, record):
        # Answering is a response either way: a false positive was looked at too.
        if self.acked is None:
            self.acked = record["time"]
        if record["outcome"] == "false-positive":
            self.false_positive = True
        if record.get("note"):
            self.notes.append(record["note"])

    def detection_seconds(self):
        """From the event (or, without one, the first alert) to the first delivery; None if never delivered."""
        if self.delivered is None:
            return None
        start = self.event_time if self.event_time is not None else self.opened
        return max(0.0, self.delivered - start)

    def resolution_seconds(self):
        """From the alert to its resolution; None while unresolved."""
        return None if self.resolved is None else max(0.0, self.resolved - self.opened)


def fold(records):
    """Incidents in the order they opened (records: oldest first)."""
    found, latest, by_id = [], {}, {}
    for record in records:
        key, outcome = record.get("key"), record.get("outcome")
        if not isinstance(key, str) or not isinstance(outcome, str):
            continue
        current = latest.get(key)
        if outcome in MARKS:
            target = by_id.get(record.get("alert")) or current
            if target is not None:
                target.mark(record)
            continue
        if outcome == RESOLVED:
            if current is not None and current.resolved is None:
                current.resolved = record["time"]
                if record.get("note"):
                    current.notes.append(record["note"])
            continue
        stale = current is not None and (current.resolved is not None or record["time"] - current.last > QUIET_SECONDS)
        if current is None or stale:
            current = Incident(record)
            latest[key] = current
            found.append(current)
        else:
            current.add(record)
        for name in (record.get("id"), record.get("alert")):
            if name:
                by_id[name] = current
    return found


def find(found, ref):
    """The incident an operator names: by alert id, else by key (exact, or the key after a host prefix)."""
    for incident in reversed(found):
        if ref in incident.ids:
            return incident
    for incident in reversed(found):
        if incident.key == ref:
            return incident
    tails = [i for i in reversed(found) if i.key.endswith(":" + ref)]
    if len({i.key for i in tails}) == 1:
        return tails[0]
    return None
