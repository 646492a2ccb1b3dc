"""Counting rules over a chunk of whole log lines as bytes, with the answer line-by-line reading gives.

    count_chunk(data, rules, add, now)   # add(rule_name, when, count) for every run of lines

The lines are cut into runs that share a time bucket: a run of text lines
stamped in the same minute (and zone), a run of unstamped lines (a
traceback: counted at now, as text_time() says), a run of JSON lines. Per
run, each rule counts its lines with the regex engine over the bytes
(rules.py); JSON lines and rules that cannot be run over bytes are read line
by line, decoded, as before. The answer is the same as searching every line
of data.decode("utf-8", "replace").splitlines(): a chunk holding a line
break other than "\\n" (which splitlines() also breaks on) is read that way.
"""

import re

from peerquest_ops.monitors.logline import parse, text_time

# Where a text line's time is ("LEVEL 2026-11-28 06:10:11,123+1300 ..."), as logline.LINE_TIME reads it.
STAMP = re.compile(rb"\S+ (\d{4}-\d\d-\d\d \d\d:\d\d):(\d\d)(?:[,.]\d++)?+([+-]\d\d:?\d\d|Z)?")
_JSON_RUN_END = re.compile(rb"\n(?!\{)")
_PLAIN_RUN_END = re.compile(rb"\n(?=\{|\S+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
_JSON_LINE = re.compile(rb"(?<=\n)\{")
_NO_ZONE = rb"(?![+-]\d\d:?\d\d|Z)"
# Line breaks str.splitlines() knows besides "\n": single bytes, and two UTF-8 ones found by their
# lead byte first (a one-byte search is a memchr; a three-byte one costs a chunk half a millisecond).
_ODD_BYTES = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
_ODD_UTF8 = ((b"\xc2", (b"\xc2\x85",)), (b"\xe2", (b"\xe2\x80\xa8", b"\xe2\x80\xa9")))


def has_odd_breaks(data):
    """Whether data holds a line break other than "\n" that str.splitlines() breaks on."""
    if any(mark in data for mark in _ODD_BYTES):
        return True
    return any(lead in data and any(mark in data for mark in marks) for lead, marks in _ODD_UTF8)


class Times:
    """Epoch seconds per stamp, and the regex ending a minute's run, both kept across chunks."""

    def __init__(self, now):
        self.now = now
        self._when = {}
        self._run_ends = {}

    def when(self, match):
        key = match.group(0)
        if key not in self._when:
            self._when[key] = text_time(key.decode("utf-8", "replace"), self.now)
        return self._when[key]

    def run_end(self, match):
        """The newline before the first line not stamped in match's minute and zone."""
        key = (match.group(1), match.group(3))
        if key not in self._run_ends:
            minute, zone = key
            zone_part = re.escape(zone) if zone else _NO_ZONE
            self._run_ends[key] = re.compile(
                rb"\n(?!\S+ " + re.escape(minute) + rb":[0-5]\d(?:[,.]\d++)?+" + zone_part + rb")"
            )
        return self._run_ends[key]


def count_line(line, rules, add, now):
    """One decoded line, searched as it is written or as its JSON record's "LEVEL logger message"."""
    entry = parse(line) if line.startswith("{") else None
    text = line if entry is None else entry.text
    when = None
    for name, rule in rules.items():
        if rule.regex.search(text):
            if when is None:
                when = text_time(line, now) if entry is None else entry.when(now)
            add(name, when, 1)


def _runs(data, times):
    """(start, stop, when or None for JSON) of each run of lines in data ("\\n" + lines, each ending "\\n")."""
    last = len(data) - 1
    pos = 1
    while pos <= last:
        if data[pos] == 0x7B:  # "{": JSON records, parsed one by one
            stop = _JSON_RUN_END.search(data, pos).start()
            yield pos, stop, None
        else:
            match = STAMP.match(data, pos)
            if match is None:
                found = _PLAIN_RUN_END.search(data, pos)
                stop = found.start() if found else last
                yield pos, stop, times.now
            elif int(match.group(2)) >= 60:  # a leap second belongs to the next minute: a run of its own
                stop = data.find(b"\n", pos)
                yield pos, stop, times.when(match)
            else:
                stop = times.run_end(match).search(data, pos).start()
                yield pos, stop, times.when(match)
        pos = stop + 1


def _candidates(rule, data, start, stop):
    """Decoded lines of data[start:stop] holding the rule's literal."""
    line_end = -1
    for found in rule.finder.finditer(data, start, stop):
        at = found.start()
        if at < line_end:
            continue
        line_start = data.rfind(b"\n", 0, at) + 1
        line_end = data.find(b"\n", at)
        yield data[line_start:line_end].decode("utf-8", "replace")


def count_chunk(data, rules, add, now, times=None):
    """Count each rule's matching lines of data (whole lines, bytes) through add(name, when, count); lines read."""
    if not data:
        return 0
    if not data.endswith(b"\n"):
        data += b"\n"
    if has_odd_breaks(data):
        lines = data.decode("utf-8", "replace").splitlines()
        for line in lines:
            count_line(line, rules, add, now)
        return len(lines)
    times = times or Times(now)
    data = b"\n" + data
    slow = {name: rule for name, rule in rules.items() if rule.counter is None and rule.finder is None}
    for start, stop, when in _runs(data, times):
        if when is None:
            for line in data[start:stop].decode("utf-8", "replace").split("\n"):
                count_line(line, rules, add, now)
            continue
        for name, rule in rules.items():
            if rule.counter is not None:
                count = rule.count(data, start - 1, stop)
                if count:
                    add(name, when, count)
            elif rule.finder is not None:
                count = sum(1 for text in _candidates(rule, data, start, stop) if rule.regex.search(text))
                if count:
                    add(name, when, count)
        if slow:
            for line in data[start:stop].decode("utf-8", "replace").split("\n"):
                count_line(line, slow, add, now)
    return data.count(b"\n") - 1


def matching_lines(chunk, rules):
    """(start, end) of each line of chunk (whole lines, bytes) that any of rules matches, or that is
    JSON (its text is known only once parsed), in order. Under sampling these are read in full."""
    data = b"\n" + chunk
    found = {hit.start() for hit in _JSON_LINE.finditer(data)}
    for rule in rules.values():
        finder = rule.finder or rule.counter
        if finder is None:
            at = 0
            for raw in data.split(b"\n"):
                if at not in found and raw and _line_matches(rule, raw):
                    found.add(at)
                at += len(raw) + 1
            continue
        line_end = -1
        for hit in finder.finditer(data):
            at = hit.start() + (1 if data[hit.start()] == 0x0A else 0)
            if at < line_end:
                continue
            line_start = data.rfind(b"\n", 0, at) + 1
            line_end = _line_end(data, at)
            if line_start not in found and _line_matches(rule, data[line_start:line_end]):
                found.add(line_start)
    # Offsets in data are one past those in chunk.
    return [(start - 1, _line_end(data, start) - 1) for start in sorted(found)]


def _line_end(data, start):
    end = data.find(b"\n", start)
    return len(data) if end < 0 else end


def _line_matches(rule, raw):
    line = raw.decode("utf-8", "replace")
    return rule.regex.search(parse(line).text if line.startswith("{") else line) is not None
