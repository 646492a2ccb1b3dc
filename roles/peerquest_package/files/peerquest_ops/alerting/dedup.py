"""The same alert key is sent at most once per window.

state_dir/dedup.json maps each key to {last_sent, suppressed, since}; every
change happens under state_dir/dedup.lock, so concurrent duplicates are each
counted once. The next alert of a key after its window says how many were
suppressed (suppressed_note).
"""

import contextlib
import os
import time

from peerquest_ops.alerting.output import warn
from peerquest_ops.core.locking import locked
from peerquest_ops.core.state import read_json, write_json


def dedup_path(config):
    state_dir = config["state_dir"]
    return os.path.join(state_dir, "dedup.json") if state_dir and config["dedup_window_seconds"] else None


def _lock_path(path):
    return os.path.join(os.path.dirname(path), "dedup.lock")


def read_state(path):
    # A broken state file must not stop alerts; at worst one duplicate goes out.
    state = read_json(path, None, warn=warn)
    if isinstance(state, dict) and isinstance(state.get("keys"), dict):
        return state
    return {"version": 1, "keys": {}}


def claim(config, key, now):
    """(True, entry) when the key was sent within the window (counted as suppressed); otherwise
    record it as sent now and return (False, previous entry), for the note and a rollback."""
    path = dedup_path(config)
    if not path:
        return False, {}
    window = config["dedup_window_seconds"]
    with locked(_lock_path(path)):
        state = read_state(path)
        keys = state["keys"]
        entry = keys.get(key) or {}
        duplicate = bool(entry) and 0 <= now - entry.get("last_sent", 0) < window
        if duplicate:
            if not entry.get("suppressed"):
                entry["since"] = entry["last_sent"]
            entry["suppressed"] = entry.get("suppressed", 0) + 1
        else:
            keys[key] = {"last_sent": now, "suppressed": 0}
        # Forget keys that are out of their window and owe no count.
        for old in [k for k, e in keys.items() if now - e.get("last_sent", 0) >= window and not e.get("suppressed")]:
            del keys[old]
        write_json(path, state)
    return duplicate, entry


@contextlib.contextmanager
def _editing(config):
    """The dedup state, locked, to change in place (written back when the block ends); None when off."""
    path = dedup_path(config)
    if not path:
        yield None
        return
    with locked(_lock_path(path)):
        state = read_state(path)
        yield state["keys"]
        write_json(path, state)


def release(config, key, claimed_at, previous):
    """Undo a claim whose alert went nowhere, so the caller's retry is not suppressed."""
    with _editing(config) as keys:
        entry = keys.get(key) if keys is not None else None
        if not entry or entry.get("last_sent") != claimed_at:
            return
        restored = dict(previous) if previous else {"last_sent": 0}
        restored["suppressed"] = previous.get("suppressed", 0) + entry.get("suppressed", 0)
        if restored["suppressed"]:
            restored["since"] = previous.get("since") if previous.get("suppressed") else entry.get("since", claimed_at)
        keys[key] = restored


def forget(config, key):
    """The condition behind key is over: its next alert is a new one, never suppressed (a count it owes stays)."""
    with _editing(config) as keys:
        if keys is None or key not in keys:
            return
        if keys[key].get("suppressed"):
            keys[key]["last_sent"] = 0
        else:
            del keys[key]


def suppressed_note(previous):
    count = previous.get("suppressed", 0)
    if not count:
        return ""
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(previous.get("since") or previous["last_sent"]))
    return f"\n({count} similar alerts suppressed since {since})"
