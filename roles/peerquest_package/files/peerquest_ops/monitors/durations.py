"""Timed operations in log lines: how long each took, and what it was.

    timed = Durations(r"(?:(?P<op>GET /\\S*)\\s+)?took\\s*(?P<value>\\d+)(?P<unit>ms|s)")
    timed.parse("INFO 2026-11-28 06:10:11,123 views 1 1 GET /quests/12/ took 6200ms")
    # -> (6.2, "GET /quests/N/")

The regular expression names the duration (groups value and unit: ms or s)
and may name the operation (group op). Without an op, the operation is the
message text before the duration, after the level, time and the verbose
format's module, process and thread (a JSON line: its message, logline.py). Digits in an operation's name become N,
so /quests/12/ and /quests/13/ count as one operation.
"""

import re

from peerquest_ops.monitors.logline import parse

DIGITS = re.compile(r"\d+")
MAX_NAME = 80
UNNAMED = "(unnamed operation)"


def operation_name(text):
    name = DIGITS.sub("N", text).strip(" \t:;,-=")
    return name[-MAX_NAME:] if name else UNNAMED


class Durations:
    def __init__(self, regex):
        self.regex = re.compile(regex)
        self.has_op = "op" in self.regex.groupindex

    def parse(self, line):
        """(seconds, operation) of a timed line of either log format; None when it carries no duration."""
        entry = parse(line)
        match = self.regex.search(entry.text)
        if not match:
            return None
        value = float(match.group("value"))
        seconds = value / 1000.0 if (match.group("unit") or "s").lower() == "ms" else value
        op = match.group("op") if self.has_op else None
        if not op:
            before = entry.text[: match.start()]
            op = before[entry.body_start :] if len(before) >= entry.body_start else before
        return seconds, operation_name(op)
