"""Answer an alert in the alert history: acknowledge it, mark it a false positive, resolve it; list alerts.

    peerquest-history --config FILE list [--days N] [--open] [--key TEXT]
    peerquest-history --config FILE ack REF [--note TEXT]
    peerquest-history --config FILE false-positive REF [--note TEXT]
    peerquest-history --config FILE resolve REF [--note TEXT]

REF names an alert by its id (as list shows it, or any record's id), or by its
key: the whole key ("app1:errors:approval_failed") or the part after the host
("errors:approval_failed") when one host's key has it. A key names its latest
alert. Each answer is one record appended to the history (state_dir/history.jsonl
of peerquest-alert's settings, the --config the command on PATH passes), with
the operator's name (SUDO_USER, else the account).

resolve is for alerts no check clears by itself (a CRITICAL log line is an
event: the follower never sees it "recover"); the monitors record the
resolution of the conditions they watch themselves.

Exit status: 0 done, 1 no such alert (or the history cannot be written), 2 bad usage or settings.
"""

import argparse
import getpass
import os
import sys
import time

from peerquest_ops.alerting.schema import load_config
from peerquest_ops.core.config import ConfigError
from peerquest_ops.history import incidents, store

PROGRAM = "peerquest-history"
# How far back a REF is looked for, and list's default.
LOOKBACK_DAYS = 30


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, metavar="FILE", help="peerquest-alert's settings file")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="alerts of the last days, newest last")
    listing.add_argument("--days", type=int, default=7, help="how far back (default 7)")
    listing.add_argument("--open", action="store_true", help="only alerts not resolved yet")
    listing.add_argument("--key", default="", help="only keys containing this text")
    for name, text in (
        ("ack", "acknowledge an alert"),
        ("false-positive", "mark an alert a false positive (the weekly review suggests a threshold from these)"),
        ("resolve", "record that an alert's cause is fixed"),
    ):
        answer = commands.add_parser(name, help=text)
        answer.add_argument("ref", metavar="REF", help="alert id or key")
        answer.add_argument("--note", default="", help="a few words kept with the record")
    return parser.parse_args(argv)


def operator():
    """Who answers: the account that ran sudo, else this one."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _stamp(epoch):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else "-"


def _state(incident):
    if incident.resolved is not None:
        return f"resolved {_stamp(incident.resolved)}"
    return "open"


def show(found, only_open, text):
    shown = 0
    for incident in found:
        if (only_open and incident.resolved is not None) or text not in incident.key:
            continue
        shown += 1
        marks = []
        if incident.false_positive:
            marks.append("false positive")
        elif incident.acked is not None:
            marks.append(f"acked {_stamp(incident.acked)}")
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(incident.outcomes.items()))
        print(
            f"{incident.alert_id}  {_stamp(incident.opened)}  {incident.severity:<8} {incident.key}  "
            f"[{_state(incident)}{'; ' + '; '.join(marks) if marks else ''}]  {outcomes}"
        )
    if not shown:
        print(f"{PROGRAM}: no alert in that period")
    return 0


def answer(path, found, command, ref, note):
    incident = incidents.find(found, ref)
    if incident is None:
        print(f"{PROGRAM}: no alert with id or key {ref!r} in the last {LOOKBACK_DAYS} days", file=sys.stderr)
        return 1
    done = store.record(
        path,
        command,
        incident.key,
        incident.severity,
        alert=incident.alert_id,
        by=operator(),
        note=note or None,
        warn=lambda text: print(f"{PROGRAM}: {text}", file=sys.stderr),
    )
    if done is None:
        return 1
    words = {"ack": "acknowledged", "false-positive": "marked a false positive", "resolved": "resolved"}[command]
    print(f"{PROGRAM}: {incident.severity} {incident.key} (alert {incident.alert_id}) {words}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    # The history is shared by root and the alert account through its group (as peerquest-alert's files).
    os.umask(0o007)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2
    path = store.history_path(config["state_dir"])
    if not path:
        print(f"{PROGRAM}: {args.config}: state_dir is empty, so no alert history is kept", file=sys.stderr)
        return 2
    days = args.days if args.command == "list" else LOOKBACK_DAYS
    found = incidents.fold(store.read(path, since=time.time() - days * 86400))
    if args.command == "list":
        return show(found, args.open, args.key)
    # resolve writes the same record a check that recovered writes.
    outcome = "resolved" if args.command == "resolve" else args.command
    return answer(path, found, outcome, args.ref, args.note)
