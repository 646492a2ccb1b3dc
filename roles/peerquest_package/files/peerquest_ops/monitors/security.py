"""The security job: security events in the app's log and the audit log, each against its own window.

Events come from the inventory (peerquest_monitors_security_events), each
{name, regex, severity, threshold, window (minutes)}: Django's
"Invalid HTTP_HOST header" (DisallowedHost), "Forbidden (CSRF ...)",
"Forbidden (Permission denied)", other SuspiciousOperations, failed logins the
app writes to its audit logger. Each log file is read from where the last run
stopped (scan.py), in either log format (logline.py). An event counts once
per log record: the traceback under a text record repeats the message on its
exception line, and must not count it twice. More than threshold records
within the event's window alert through peerquest-alert (key
security:<name>; routing and dedup are the alert command's), quoting the
latest one.
"""

import re
import time

from peerquest_ops.monitors.logline import parse
from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.scan import iter_new_lines
from peerquest_ops.monitors.windows import add_event, prune, window_count

STATE = "security"
QUOTE = 300  # characters of the latest matching record an alert quotes


def empty_state():
    return {"files": {}, "buckets": {}, "latest": {}}


def count_lines(lines, rules, cursor, state, now):
    """Count each rule once per record of lines into state's buckets; cursor carries a record across reads."""
    for line in lines:
        entry = parse(line)
        if entry.starts_record:
            cursor["record"] = entry.when(now)
            cursor["counted"] = []
        for name, regex in rules.items():
            if name in cursor.setdefault("counted", []) or not regex.search(entry.text):
                continue
            add_event(state["buckets"].setdefault(name, {}), cursor.get("record") or now)
            cursor["counted"].append(name)
            state["latest"][name] = entry.quote(regex)[:QUOTE]


def read_files(cfg, rules, state, now):
    """New lines of every security log counted; how many were read."""
    total = 0
    for path in cfg["log_files"]:
        cursor = state["files"].setdefault(path, {"position": {}})
        for lines, position in iter_new_lines(path, cursor["position"]):
            cursor["position"] = position
            total += len(lines)
            count_lines(lines, rules, cursor, state, now)
    return total


def judge(monitor, cfg, state, now):
    """Alert every event over its threshold in its window; the names that alerted."""
    fired = []
    files = ", ".join(cfg["log_files"])
    for event in cfg["events"]:
        name, minutes = event["name"], event["window"]
        count = window_count(state["buckets"].get(name, {}), now, minutes * 60)
        if count > event["threshold"]:
            fired.append(name)
            monitor.alert(
                event["severity"],
                f"security:{name}",
                f"security event {name}: {count} in the last {minutes} minutes (threshold {event['threshold']}) "
                f"in {files}; latest: {state['latest'].get(name, '')}",
            )
    return fired


def run_security(monitor, now=None):
    cfg = monitor.config["security"]
    now = now or time.time()
    rules = {event["name"]: re.compile(event["regex"]) for event in cfg["events"]}
    state = monitor.read_state(STATE, empty_state())
    total = read_files(cfg, rules, state, now)
    keep = max([event["window"] * 60 for event in cfg["events"]], default=0)
    for name in list(state["buckets"]):
        if name in rules:
            prune(state["buckets"][name], now, keep)
        else:  # an event dropped from the inventory
            del state["buckets"][name]
            state["latest"].pop(name, None)
    fired = judge(monitor, cfg, state, now)
    monitor.write_state(STATE, state)
    monitor.mark_run(STATE)
    log(f"security: {total} new lines, alerts {fired or 'none'}")
    return fired
