"""The manifest: an append-only hash chain, one JSON object per line.

    {"seq": 3, "event": "rotated", "log": "<log dir>/django.log",
     "file": "<log dir>/django.log-20261128-1795872000", "sha256": "<content>", "size": 1234,
     "time": "2026-11-28T00:00:01Z", "prev": "<hash of entry 2>", "hash": "<hash of this entry>"}

hash is the sha256 of the entry's other fields as canonical JSON (sorted keys, no
blanks), prev the hash of the entry before (GENESIS for the first). Changing,
removing, inserting or reordering a line breaks the chain from there on: each
entry's seq, prev and hash are checked. event "expired" records a file that
logrotate's retention removed (its preremove hook), so its absence is expected.

The chain is tamper-evident against whoever can change the logs (the app
account, the log readers): the manifest is root's. Root can rewrite it whole; a
copy of the last hash kept elsewhere (the alert log, a ticket) pins it.
"""

import hashlib
import json
import os
import time

from peerquest_ops.core.locking import locked
from peerquest_ops.core.state import fsync_dir

GENESIS = "0" * 64


def entry_hash(entry):
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read(path):
    """(entries, problems): every line parsed, and what is wrong with the chain."""
    entries, problems = [], []
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return [], []
    prev = GENESIS
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(f"{path} line {number}: not a manifest entry (edited or truncated)")
            prev = None
            continue
        where = f"{path} line {number} ({entry.get('file', '?')})"
        if entry.get("hash") != entry_hash(entry):
            problems.append(f"{where}: entry changed (its hash does not match its content)")
        elif prev is not None and entry.get("prev") != prev:
            problems.append(f"{where}: chain broken (an entry before it was removed, inserted or reordered)")
        elif entry.get("seq") != number:
            problems.append(f"{where}: out of sequence (seq {entry.get('seq')}, expected {number})")
        entries.append(entry)
        prev = entry.get("hash")
    return entries, problems


def append(path, event, log, file, sha256, size):
    """Add one entry under the manifest's lock; returns it."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o750, exist_ok=True)
    with locked(f"{path}.lock"):
        entries, _ = read(path)
        last = entries[-1] if entries else {}
        entry = {
            "seq": len(entries) + 1,
            "event": event,
            "log": log,
            "file": file,
            "sha256": sha256,
            "size": size,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "prev": last.get("hash", GENESIS),
        }
        entry["hash"] = entry_hash(entry)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(directory)
    return entry
