"""Database connection failures, in seconds: page when they persist, not on one transient failure.

The follower runs db_pass() after every read of the CRITICAL log (every
follow.poll_seconds), so a failing database pages well within the plan's
five minutes; an errors scan runs it in the follower's place when the
follower is off or silent (errors.py). Both share one cursor in
database.json under database.lock.

A failure is a log record (its first line and the traceback lines after
it, up to the next stamped line) with a line matching database.regex:
Django's OperationalError and InterfaceError, connection refused or timed
out, "could not connect". One record counts once, however many of its
traceback lines match. More than database.threshold failures within
database.window_seconds (by the records' own time stamps) page once
(database.severity); the episode ends when the window holds no failure.
"""

import json
import os
import re
import time

from peerquest_ops.core.locking import locked
from peerquest_ops.metrics import live
from peerquest_ops.monitors.logline import parse
from peerquest_ops.monitors.runtime import load_json, log, save_json
from peerquest_ops.monitors.scan import read_new_lines

STATE = "database"


def db_lock(monitor):
    return locked(os.path.join(monitor.state_dir, f"{STATE}.lock"))


def count_failures(lines, regex, state, now):
    """Add one failure time per failing record in lines to state["failures"]; the last failure's text.

    state["record"] (the current record's time) and state["counted"] carry a record across reads.
    """
    last = None
    for line in lines:
        entry = parse(line)
        if entry.starts_record:
            state["record"] = entry.when(now)
            state["counted"] = False
        if not state.get("counted") and regex.search(entry.text):
            state["failures"].append(state.get("record") or now)
            state["counted"] = True
            last = entry.quote(regex)[:300]
    return last


def _start_at_the_end(state, log_file):
    """First run: only what is written from now on; old failures are history, not an outage."""
    try:
        st = os.stat(log_file)
    except FileNotFoundError:
        state["position"] = {}
        return
    state["position"] = {"inode": st.st_ino, "offset": st.st_size}


def _judge(monitor, cfg, state, now, last):
    """Page once per episode; what happened ("paged", "ended" or None)."""
    window = cfg["window_seconds"]
    state["failures"] = sorted(t for t in state["failures"] if now - window < t <= now + 60)
    recent = len(state["failures"])
    if last:
        state["last"] = last
    if recent > cfg["threshold"] and not state.get("paged"):
        state["paged"] = now
        monitor.alert(
            cfg["severity"],
            "database:failures",
            f"database failures persist: {recent} in the last {window}s (more than {cfg['threshold']} "
            f"tolerated) in {cfg['log_file']}; latest: {state.get('last', '')}",
            event_time=state["failures"][0],
        )
        return "paged"
    if recent == 0 and state.get("paged"):
        state["paged"] = None
        log(f"database: no failure in the last {window}s; the episode that paged is over")
        # Paged once per episode: its end is the resolution (base.EVENT_KEYS).
        monitor.resolve("database:failures", cfg["severity"])
        return "ended"
    return None


def db_pass(monitor, now=None):
    """Read the database log from the shared cursor and judge the window; what happened (see _judge)."""
    cfg = monitor.config.get("database")
    if not cfg:
        return None
    regex = re.compile(cfg["regex"])
    path = monitor.state_path(STATE)
    with db_lock(monitor):
        state = load_json(path, {})
        before = json.dumps(state, sort_keys=True)
        state.setdefault("failures", [])
        if "position" not in state:
            _start_at_the_end(state, cfg["log_file"])
        last = None
        while True:
            lines, position, note = read_new_lines(cfg["log_file"], state["position"])
            if note:
                log(f"WARNING {note}")
            state["position"] = position
            if not lines:
                break
            last = count_failures(lines, regex, state, now or time.time()) or last
        outcome = _judge(monitor, cfg, state, now or time.time(), last)
        if json.dumps(state, sort_keys=True) != before:
            save_json(path, state)
        live.database_errors(monitor, len(state["failures"]))
    return outcome
