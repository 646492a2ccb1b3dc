"""What peerquest-alert prints: one line, prefixed with the program name, secrets scrubbed."""

import sys

from peerquest_ops.core.config import scrub

PROGRAM = "peerquest-alert"


def say(text, error=False):
    print(scrub(f"{PROGRAM}: {text}"), file=sys.stderr if error else sys.stdout)


_RECORD = []


def record_warnings(log):
    """From now on warn() also writes a WARNING event to log (core.eventlog.EventLog)."""
    _RECORD[:] = [log]


def warn(text):
    """For core helpers that report a problem the command survives."""
    say(f"warning: {text}", error=True)
    # The log's own trouble (unwritable) is said once, never recorded in it (nor looped on).
    recording, _RECORD[:] = list(_RECORD), []
    try:
        for log in recording:
            log.event("WARNING", "state", severity="-", key="-", channel="-", problem=text)
    finally:
        _RECORD[:] = recording
