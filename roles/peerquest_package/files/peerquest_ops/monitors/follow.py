"""The CRITICAL follower: alert each follow-pattern line within seconds, never twice;
after each read, the database failures pass (dbwatch.py).

The follower (a systemd service) and an errors scan standing in for a silent
follower share one cursor in follow.json, read and written under follow.lock
(core.locking): the start of the chunk being worked on ("position") and how
many of its lines are done ("done"), saved after every alert. A follower
stopped or killed between two alerts resumes with the next line, neither
repeating nor skipping one. The follower touches follow.heartbeat after every
pass; its age tells the self-check and the scans whether it is alive.
"""

import contextlib
import math
import os
import signal
import time

from peerquest_ops.core.locking import locked
from peerquest_ops.metrics import live
from peerquest_ops.monitors.dbwatch import db_pass
from peerquest_ops.monitors.logline import parse
from peerquest_ops.monitors.runtime import load_json, log, save_json
from peerquest_ops.monitors.scan import compile_rules, read_new_lines

# peerquest-alert's exit statuses after which a key's repeats may be held back: delivered (or
# suppressed as a duplicate), or queued in its spool for retry.
SENT_OR_QUEUED = (0, 75)

# Set by SIGTERM in the follower: finish the alert in hand, record it, stop.
_STOP = {"requested": False}


def request_stop(signum=None, frame=None):
    _STOP["requested"] = True


def stop_requested():
    return _STOP["requested"]


def follow_lock(monitor):
    """Held while the follower's lines are read and alerted, by the follower or a scan standing in."""
    return locked(os.path.join(monitor.state_dir, "follow.lock"))


def _start_at_the_end(state, state_path, log_file):
    """First start: only what is written from now on. Saved at once, so a
    restart later catches up on what was written while it was down."""
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(log_file)
        state["position"] = {"inode": st.st_ino, "offset": st.st_size}
    save_json(state_path, state)


def _alert_line(monitor, cfg, rules, line, held):
    """Alert line once per matching pattern, or hold it back as a repeat; whether an alert went out.

    A key alerted less than follow.hold_seconds ago (the alert command's dedup window) is not
    handed to the alert command again: the repeat is counted in held, and the key's next alert
    after the window says how many were held back. In a storm of one failure the follower runs
    one alert command per window, not one per line (bench/: 10,000 lines cost 75 ms each).
    """
    alerted = False
    entry = parse(line)
    hold = cfg.get("hold_seconds", 0)
    for name, rule in rules.items():
        if not rule.regex.search(entry.text):
            continue
        # Without level, time and pid (or logger), so the key dedups on what happened.
        text = entry.body[:500]
        key = f"follow:{name}:{text[:120]}"
        record = held.get(key)
        if record and 0 <= time.time() - record["sent"] < hold:
            record["count"] += 1
            record["pass"] = record.get("pass", 0) + 1
            continue
        note = ""
        if record and record["count"]:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["sent"]))
            note = f"\n({record['count']} more like it since {since} held back within the dedup window)"
        # The line's own time: the history's MTTD runs from when it was logged.
        code = monitor.alert(
            cfg["severity"], key, f"{text}\n(in {cfg['log_file']}){note}", event_time=entry.when(time.time())
        )
        if code in SENT_OR_QUEUED:
            # After the command returned: never earlier than the time its own dedup recorded.
            held[key] = {"sent": time.time(), "count": 0}
        # else: nothing went out and nothing waits in the spool; the next line of the kind tries again.
        alerted = True
    return alerted


def _held_now(held, hold):
    """held without the keys whose window is over and that owe no count; each pass's repeats logged."""
    for key, record in held.items():
        if record.pop("pass", 0):
            log(
                f"follow: {record['count']} repeats of {key} held back since the alert at "
                f"{time.strftime('%H:%M:%S', time.localtime(record['sent']))} (dedup window {hold}s)"
            )
    now = time.time()
    return {key: r for key, r in held.items() if r["count"] or now - r["sent"] < hold}


def follow_pass(monitor):
    """Alert every follow-pattern line written since the shared cursor; how many new lines were read."""
    cfg = monitor.config["follow"]
    rules = compile_rules(cfg["patterns"])
    state_path = monitor.state_path("follow")
    read = 0
    with follow_lock(monitor):
        state = load_json(state_path, {})
        if "position" not in state:
            _start_at_the_end(state, state_path, cfg["log_file"])
        position, done = state.get("position", {}), int(state.get("done", 0))
        # Repeats held back (see _alert_line), saved with the cursor: counted exactly once too.
        held = _held_now(state.get("held", {}), cfg.get("hold_seconds", 0))

        def save(at, count):
            save_json(state_path, {"position": at, "done": count, **({"held": held} if held else {})})

        while not stop_requested():
            lines, end, note = read_new_lines(cfg["log_file"], position)
            if note:
                log(f"WARNING {note}")
                done = 0  # the lines no longer start where the count was taken
            if not lines:
                if end != position:
                    save(end, 0)
                break
            read += max(0, len(lines) - done)
            for index in range(done, len(lines)):
                if stop_requested():
                    save(position, index)
                    return read
                if _alert_line(monitor, cfg, rules, lines[index], held):
                    save(position, index + 1)
            position, done = end, 0
            held = _held_now(held, cfg.get("hold_seconds", 0))
            save(position, 0)
    return read


def heartbeat_path(monitor):
    """Touched by the follower after every pass; its age tells whether the follower is alive."""
    return os.path.join(monitor.state_dir, "follow.heartbeat")


def follower_silent_for(monitor, now=None):
    """Seconds since the follower's last heartbeat; None when it never beat, infinite once it stopped."""
    try:
        beat = os.stat(heartbeat_path(monitor)).st_mtime
    except FileNotFoundError:
        return None
    # A follower stopped on request dates its heartbeat to the epoch (run_follow): nothing to wait for.
    return math.inf if beat == 0 else (now or time.time()) - beat


def follower_alive(monitor, now=None):
    """Whether the follower is enabled and beat within its takeover time."""
    cfg = monitor.config.get("follow", {})
    if not cfg.get("enabled"):
        return False
    silent = follower_silent_for(monitor, now)
    return silent is not None and silent <= cfg["takeover_seconds"]


def stand_in_for_follower(monitor, now=None):
    """A scan's share of the follower's work when the follower has gone quiet."""
    cfg = monitor.config.get("follow", {})
    if not cfg.get("enabled"):
        return None
    silent = follower_silent_for(monitor, now)
    if silent is not None and silent <= cfg["takeover_seconds"]:
        return None
    read = follow_pass(monitor)
    quiet = "never started" if silent is None else "stopped" if silent == math.inf else f"silent for {int(silent)}s"
    log(f"WARNING the CRITICAL follower is {quiet}; this scan alerted its lines ({read} new)")
    return read


def run_follow(monitor, iterations=None, stop_on_sigterm=False):
    """Stay running: alert on each follow-pattern line within seconds.

    With stop_on_sigterm (the service), SIGTERM lets the alert in hand finish
    and be recorded before the follower exits; the unit's KillMode=mixed
    leaves that alert's own process alone meanwhile.
    """
    cfg = monitor.config["follow"]
    beat = heartbeat_path(monitor)
    if stop_on_sigterm:
        signal.signal(signal.SIGTERM, request_stop)
    log(f"follow: watching {cfg['log_file']} for {', '.join(p['name'] for p in cfg['patterns'])}")
    count = 0
    while (iterations is None or count < iterations) and not stop_requested():
        count += 1
        follow_pass(monitor)
        # Database failures persist or pass within seconds too (dbwatch.py).
        db_pass(monitor)
        with open(beat, "a", encoding="utf-8"):
            os.utime(beat)
        live.heartbeat(monitor)
        deadline = time.monotonic() + cfg["poll_seconds"]
        while not stop_requested() and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    if stop_requested():
        # The scans need not wait for the heartbeat to age: they take the follower's lines from their next run.
        with open(beat, "a", encoding="utf-8"):
            os.utime(beat, (0, 0))
        log("follow: stopped on request; the cursor is saved; the scans alert its lines until it runs again")
