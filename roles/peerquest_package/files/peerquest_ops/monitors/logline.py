"""One line of a PeerQuest log in either format peerquest_logging writes: text or JSON lines.

    entry = parse('{"time": "2026-11-28T06:10:11.123+13:00", "level": "ERROR", "logger": "quests", '
                  '"message": "Quest assignment failed", "exception": "Traceback ..."}')
    entry.text        # 'ERROR quests Quest assignment failed\\nTraceback ...': what patterns search
    entry.body        # 'Quest assignment failed': the record's own words, what an alert quotes
    entry.when(now)   # epoch seconds of the record (now when the line has no stamp)
    entry.starts_record   # False only for a traceback line under a text record

Patterns are written once for both formats. A text line is searched as it
is written ("LEVEL time ... message"); a JSON record as "LEVEL logger
message", with its exception and stack on the lines after, so a pattern
anchored on the level (``^CRITICAL ``) or naming words of the message
matches either way. A pattern that relies on the time or the process ids
between level and message matches text lines only.
"""

import json
import re
import time
from datetime import date, datetime

# "LEVEL 2026-11-28 06:10:11,123+1300 ..." as written by the verbose and standard formatters.
LINE_TIME = re.compile(r"^\S+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:[,.]\d+)?([+-]\d\d:?\d\d|Z)?")
# Level, time and pid (and the verbose format's module, process and thread) before a text record's words.
TEXT_PREFIX = re.compile(r"^\S+ \S+ \S+ (\S+ \d+ \d+ )?")


def _fields(stamp):
    """time.strptime(stamp, "%Y-%m-%d %H:%M:%S") without its cost (importing _strptime takes a
    scheduled job's run milliseconds): the same fields, None where strptime refuses the stamp."""
    year, month, day = int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10])
    hour, minute, second = int(stamp[11:13]), int(stamp[14:16]), int(stamp[17:19])
    try:
        date(year, month, day)
    except ValueError:
        return None
    if hour > 23 or minute > 59 or second > 61:
        return None
    return (year, month, day, hour, minute, second, 0, 0, -1)


# date(1970, 1, 1).toordinal(): calendar.timegm without importing calendar (and locale).
_EPOCH_ORDINAL = 719163


def _timegm(fields):
    """calendar.timegm(fields) for the fields _fields returns."""
    year, month, day, hour, minute, second = fields[:6]
    return (date(year, month, day).toordinal() - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second


def text_time(line, default):
    """Epoch seconds of a text line's stamp; one without a UTC offset is the host's local time."""
    match = LINE_TIME.match(line)
    if not match:
        return default
    fields = _fields(match.group(1))
    if fields is None:
        return default
    zone = match.group(2)
    if not zone:
        return time.mktime(fields)
    if zone == "Z":
        return _timegm(fields)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return _timegm(fields) - sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def iso_time(text, default):
    """Epoch seconds of an ISO 8601 time; one without an offset is the host's local time."""
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return default
    return stamp.timestamp()


def json_record(line):
    """The dict of a JSON log line, or None when the line is not one."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "level" not in record or "message" not in record:
        return None
    return record


class Entry:
    """A log line, read once: its searchable text, its own words, its time."""

    __slots__ = ("line", "record", "text", "body", "body_start", "starts_record")

    def __init__(self, line):
        self.line = line
        self.record = json_record(line)
        if self.record is None:
            self.text = line
            prefix = TEXT_PREFIX.match(line)
            self.body_start = prefix.end() if prefix else 0
            self.body = line[self.body_start :]
            self.starts_record = LINE_TIME.match(line) is not None
        else:
            record = self.record
            head = f"{record['level']} {record.get('logger', '')} "
            self.body = str(record["message"])
            self.body_start = len(head)
            self.text = (
                head + self.body + "".join("\n" + str(record[key]) for key in ("exception", "stack") if record.get(key))
            )
            self.starts_record = True

    def quote(self, regex):
        """The words an alert quotes for a match of regex: the record's own words when its first line
        matches, else the matching line (a traceback's exception line), stripped."""
        lines = self.text.split("\n")
        if not self.starts_record or regex.search(lines[0]):
            return (self.body.split("\n", 1)[0] if self.starts_record else self.line).strip()
        return next((line.strip() for line in lines[1:] if regex.search(line)), self.body.strip())

    def when(self, default):
        if self.record is None:
            return text_time(self.line, default)
        return iso_time(self.record.get("time"), default)


def parse(line):
    return Entry(line)


def search_text(line):
    """What patterns search in a line: the line itself, or a JSON record as "LEVEL logger message\\n..."."""
    if not line.startswith("{"):
        return line
    return Entry(line).text
