"""What every monitor job writes: its lines in the job log and its JSON state files.

    log("errors: 120 new lines ...")   # 2026-11-28 06:10:11 peerquest-monitor errors: 120 new lines ...
    state = load_json(path, {})        # missing -> default; corrupt -> set aside, said in the log, default
    save_json(path, state)             # core.state's atomic, durable replace

Job output goes to standard output in monitoring.log's line format (core.eventlog):
cron and the follower's unit append it to monitoring.log.
"""

from peerquest_ops.core.eventlog import EventLog
from peerquest_ops.core.state import read_json, write_json

PROGRAM = "peerquest-monitor"
# State files: the monitoring account's, readable by its group.
STATE_MODE = 0o640

_LOG = EventLog("-", PROGRAM)


def log(message):
    """One line on standard output; cron appends it to monitoring.log."""
    _LOG.line(message)


def _warn_state(text):
    # A torn or hand-edited state file must not stop monitoring.
    log(f"WARNING {text}; starting afresh")


def load_json(path, default):
    return read_json(path, default, warn=_warn_state)


def save_json(path, data, mode=STATE_MODE):
    write_json(path, data, mode=mode)
