"""Reading the application log: where the last run stopped, through rotation, in bounded chunks.

A position is {"inode", "offset"}. A file rotated away since the last read is
finished from its old inode first (delaycompress keeps that copy uncompressed
until the next rotation), so nothing is lost or counted twice; a truncated
file is read from the top. scan() counts each rule's matching lines into the
sliding windows of windows.py, at the time the line's own stamp gives.
Lines of either log format are read (logline.py): the rules search a text
line as written and a JSON record as "LEVEL logger message".
"""

import contextlib
import glob
import os
import re

from peerquest_ops.monitors.logline import parse, text_time
from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.windows import add_event, prune

CHUNK = 4 * 1024 * 1024  # bytes read at a time: memory stays flat on a huge backlog


def _find_rotated(path, inode):
    """The rotated copy of path that still has the inode we were reading."""
    for candidate in sorted(glob.glob(glob.escape(path) + "?*")):
        if candidate.endswith(".gz"):
            continue
        with contextlib.suppress(FileNotFoundError):
            if os.stat(candidate).st_ino == inode:
                return candidate
    return None


def _read_from(path, offset, max_bytes=CHUNK):
    """Complete lines from offset on (at most max_bytes), and the offset after them."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(max_bytes)
    end = data.rfind(b"\n") + 1  # a half-written last line waits for the next run
    if end == 0 and len(data) == max_bytes:
        end = len(data)  # one line longer than a chunk: take it as it is
    return data[:end].decode("utf-8", "replace").splitlines(), offset + end


def read_new_lines(path, position, max_bytes=CHUNK):
    """One chunk of new lines since position, following rotation: (lines, new position, note).

    Call again until it returns no lines to read everything.
    """
    inode, offset = position.get("inode"), position.get("offset", 0)
    note = None
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    if inode is not None and (current is None or current.st_ino != inode):
        rotated = _find_rotated(path, inode)
        if rotated:
            lines, end = _read_from(rotated, offset, max_bytes)
            if end > offset:
                return lines, {"inode": inode, "offset": end}, None
        else:
            note = f"{path} was rotated and its old copy is gone; lines after offset {offset} were not read"
        offset = 0
    if current is None:
        return [], {"inode": None, "offset": 0}, note
    if current.st_ino == inode and current.st_size < offset:
        note = f"{path} was truncated; reading from the start"
        offset = 0
    lines, offset = _read_from(path, offset, max_bytes)
    return lines, {"inode": current.st_ino, "offset": offset}, note


def iter_new_lines(path, position, max_bytes=CHUNK):
    """Every new line since position, chunk by chunk: yields (lines, position after them)."""
    while True:
        lines, position, note = read_new_lines(path, position, max_bytes)
        if note:
            log(f"WARNING {note}")
        if not lines:
            yield [], position
            return
        yield lines, position


def line_time(line, default):
    """Epoch seconds of a line's time (text stamp or JSON "time"); without a UTC offset, the host's local time."""
    if line.startswith("{"):
        return parse(line).when(default)
    return text_time(line, default)


def empty_state():
    """A scan job's state before its first run."""
    return {"position": {}, "buckets": {}, "baselines": {}, "values": {}}


def compile_rules(items):
    return {item["name"]: re.compile(item["regex"]) for item in items}


def scan(state, path, rules, now, keep_seconds, on_line=None):
    """Read new lines of path chunk by chunk and count each rule's matches into state's buckets."""
    buckets = {rule_name: state["buckets"].setdefault(rule_name, {}) for rule_name in rules}
    total = 0
    for lines, position in iter_new_lines(path, state["position"]):
        state["position"] = position
        total += len(lines)
        for line in lines:
            entry = parse(line) if line.startswith("{") else None
            text = line if entry is None else entry.text
            when = None
            for rule_name, regex in rules.items():
                if regex.search(text):
                    if when is None:
                        when = text_time(line, now) if entry is None else entry.when(now)
                    add_event(buckets[rule_name], when, 1)
            if on_line:
                on_line(line)
    for rule_bucket in buckets.values():
        prune(rule_bucket, now, keep_seconds)
    return total
