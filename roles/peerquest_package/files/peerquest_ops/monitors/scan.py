"""Reading the application log: where the last run stopped, through rotation, in bounded chunks.

A position is {"inode", "offset"}. A file rotated away since the last read is
finished from its old inode first (delaycompress keeps that copy uncompressed
until the next rotation), so nothing is lost or counted twice; a truncated
file is read from the top. scan() counts each rule's matching lines into the
sliding windows of windows.py, at the time the line's own stamp gives.
Lines of either log format are read (logline.py): the rules search a text
line as written and a JSON record as "LEVEL logger message".

scan() reads bytes: each 4 MiB chunk is counted by the regex engine, rule by
rule, over runs of lines stamped in the same minute (chunks.py, rules.py),
with the answer line-by-line reading gives. A first run starts at the
window's first line, found by time (timeseek.py); a run over its CPU budget
samples (sampling.py).
"""

import contextlib
import glob
import os
import re

from peerquest_ops.monitors.chunks import Times, count_chunk, count_line, has_odd_breaks, matching_lines
from peerquest_ops.monitors.logline import parse, text_time
from peerquest_ops.monitors.rules import Rule
from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.timeseek import offset_at
from peerquest_ops.monitors.windows import add_event, bucket_key, prune

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


def _read_bytes_from(path, offset, max_bytes=CHUNK):
    """Complete lines from offset on (at most max_bytes) as bytes, and the offset after them."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(max_bytes)
    end = data.rfind(b"\n") + 1  # a half-written last line waits for the next run
    if end == 0 and len(data) == max_bytes:
        end = len(data)  # one line longer than a chunk: take it as it is
    return data[:end], offset + end


def read_new_chunk(path, position, max_bytes=CHUNK):
    """One chunk of new complete lines since position as bytes, following rotation: (data, new position, note).

    Call again until it returns no data to read everything.
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
            data, end = _read_bytes_from(rotated, offset, max_bytes)
            if end > offset:
                return data, {"inode": inode, "offset": end}, None
        else:
            note = f"{path} was rotated and its old copy is gone; lines after offset {offset} were not read"
        offset = 0
    if current is None:
        return b"", {"inode": None, "offset": 0}, note
    if current.st_ino == inode and current.st_size < offset:
        note = f"{path} was truncated; reading from the start"
        offset = 0
    data, offset = _read_bytes_from(path, offset, max_bytes)
    return data, {"inode": current.st_ino, "offset": offset}, note


def read_new_lines(path, position, max_bytes=CHUNK):
    """One chunk of new lines since position, following rotation: (lines, new position, note).

    Call again until it returns no lines to read everything.
    """
    data, position, note = read_new_chunk(path, position, max_bytes)
    return data.decode("utf-8", "replace").splitlines(), position, note


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
    """{name: Rule} (rules.py): rule.regex for a line, rule.counter or rule.finder for a chunk."""
    return {item["name"]: Rule(item["name"], re.compile(item["regex"])) for item in items}


def backlog(path, position):
    """Bytes not read yet since position (a rotated copy's rest included)."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return 0
    inode, offset = position.get("inode"), position.get("offset", 0)
    if inode is None:
        return current.st_size
    if current.st_ino == inode:
        return max(0, current.st_size - offset) if current.st_size >= offset else current.st_size
    rotated = _find_rotated(path, inode)
    rest = max(0, os.path.getsize(rotated) - offset) if rotated else 0
    return rest + current.st_size


def _start_in_window(state, path, since):
    """First run: start at the window's first line (timeseek.py), not at the top of a big log."""
    with contextlib.suppress(FileNotFoundError):
        inode = os.stat(path).st_ino
        state["position"] = {"inode": inode, "offset": offset_at(path, since)}


def _sampled(data, rules, budget, add, scaled_add, now, times):
    """Count the follower's lines (and JSON records) of data in full and the first budget.fraction of the rest."""
    keep = matching_lines(data, budget.critical)
    cut = data.find(b"\n", int(len(data) * budget.fraction)) + 1 or len(data)
    full, sample, at = [], [], 0
    for start, end in keep:
        if at < cut:
            sample.append(data[at : min(start, cut)])
        full.append(data[start : end + 1])
        at = end + 1
    if at < cut:
        sample.append(data[at:cut])
    sample = b"".join(sample)
    budget.kept_lines += len(keep)
    budget.sampled_bytes += len(sample)
    budget.skipped_bytes += len(data) - len(sample) - sum(map(len, full))
    count_chunk(b"".join(full), rules, add, now, times)
    count_chunk(sample, rules, scaled_add, now, times)
    return data.count(b"\n")


def scan(state, path, rules, now, keep_seconds, on_line=None, since=None, budget=None):
    """Read new lines of path chunk by chunk and count each rule's matches into state's buckets.

    rules maps names to regexes (or rules.Rule). since: on a first run (no position yet), start
    at the first line stamped at or after since instead of the top of the file. budget: a
    sampling.Budget the scan keeps to (see sampling.py). on_line(line) sees every line (then
    the lines are read one by one, decoded).
    """
    buckets = {rule_name: state["buckets"].setdefault(rule_name, {}) for rule_name in rules}
    if since is not None and not state["position"]:
        _start_in_window(state, path, since)
    if on_line:
        return _scan_lines(state, path, rules, buckets, now, keep_seconds, on_line)
    rules = {name: rule if isinstance(rule, Rule) else Rule(name, rule) for name, rule in rules.items()}
    if budget:
        budget.backlog = backlog(path, state["position"])
    scaled = {}

    def add(name, when, count):
        add_event(buckets[name], when, count)

    def scaled_add(name, when, count):
        key = (name, bucket_key(when))
        scaled[key] = scaled.get(key, 0.0) + count / budget.fraction

    times = Times(now)
    total = done = 0
    while True:
        data, position, note = read_new_chunk(path, state["position"])
        if note:
            log(f"WARNING {note}")
        state["position"] = position
        if not data:
            break
        fraction = budget.plan(done) if budget else None
        if fraction is None or has_odd_breaks(data):
            total += count_chunk(data, rules, add, now, times)
        else:
            total += _sampled(data, rules, budget, add, scaled_add, now, times)
        done += len(data)
    for (name, key), count in scaled.items():
        buckets[name][key] = buckets[name].get(key, 0) + round(count)
    if budget:
        budget.report()
    for rule_bucket in buckets.values():
        prune(rule_bucket, now, keep_seconds)
    return total


def _scan_lines(state, path, rules, buckets, now, keep_seconds, on_line):
    """The line-by-line reading, for a caller that sees every line (on_line)."""
    total = 0

    def add(name, when, count):
        add_event(buckets[name], when, count)

    rules = {name: rule if isinstance(rule, Rule) else Rule(name, rule) for name, rule in rules.items()}
    for lines, position in iter_new_lines(path, state["position"]):
        state["position"] = position
        total += len(lines)
        for line in lines:
            count_line(line, rules, add, now)
            on_line(line)
    for rule_bucket in buckets.values():
        prune(rule_bucket, now, keep_seconds)
    return total
