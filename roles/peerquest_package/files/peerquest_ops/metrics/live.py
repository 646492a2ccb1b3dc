"""Figures of the long-running follower, written at most every INTERVAL seconds (or when they change).

    heartbeat(monitor, now)            # <dir>/peerquest_follow.prom
    database_errors(monitor, 2, now)   # <dir>/peerquest_database.prom

The follower passes every second; rewriting a file that often is wasted work,
so a file is rewritten when its value changed or INTERVAL seconds went by.
With the default poll (1 s) the heartbeat is at most 26 s old; Prometheus alerts
on one older than a few multiples of that.
"""

import time

from peerquest_ops.metrics import names, textfile
from peerquest_ops.metrics.runs import textfile_dir

# Under 30 s between two writes with the default 1 s poll.
INTERVAL = 25
_LAST = {}


def _due(key, value, now):
    last = _LAST.get(key)
    if last is not None and last[1] == value and now - last[0] < INTERVAL:
        return False
    _LAST[key] = (now, value)
    return True


def heartbeat(monitor, now=None):
    """The follower finished a pass; whether the file was written now."""
    now = time.time() if now is None else now
    directory = textfile_dir(monitor.config)
    if not directory or not _due((directory, "follow"), None, now):
        return False
    return textfile.write(directory, "follow", [(names.FOLLOWER_HEARTBEAT, "gauge", [({}, round(now, 3))])])


def database_errors(monitor, count, now=None):
    """Failures in the database window (dbwatch.py); whether the file was written now."""
    now = time.time() if now is None else now
    directory = textfile_dir(monitor.config)
    if not directory or not _due((directory, "database"), int(count), now):
        return False
    return textfile.write(directory, "database", [(names.DATABASE_ERRORS, "gauge", [({}, int(count))])])
