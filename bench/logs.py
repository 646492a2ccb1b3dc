"""Logs in the app's verbose format ("{levelname} {asctime} {module} {process} {thread} {message}").

A log of a given size spans about a day, written minute by minute from one
block of lines whose minute is filled in per minute, so a 1 GiB log takes
seconds to write. Generated files are kept (BENCH_DIR) and reused while
their size matches what was generated.
"""

import json
import os
import random
import time
from pathlib import Path

# (level, module, message) and how many of every 10,000 lines: a busy app in a steady state, with
# the plan's patterns below their thresholds (a run that alerts measures the alert command too).
MIX = [
    ("INFO", "views", "GET /quests/ 200 took 45ms", 4000),
    ("INFO", "views", "GET /quests/{n}/ 200 took 38ms", 2000),
    ("INFO", "views", "POST /applications/ 201 took 120ms", 1000),
    ("INFO", "applications", "Application approved for quest {n}", 1500),
    ("INFO", "quests", "Quest assigned to user {n}", 1000),
    ("WARNING", "db", "slow query took 1200ms", 285),
    ("ERROR", "applications", "Application approval failed for quest {n}", 2),
    ("ERROR", "quests", "Quest assignment failed for quest {n}", 2),
    ("ERROR", "views", "Internal Server Error: /quests/{n}/", 5),
]
_WEIGHTED = [item for item in MIX for _ in range(item[3])]
random.Random(0).shuffle(_WEIGHTED)
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/srv/peerquest/app/views.py", line 88, in approve',
    "ValueError: quest {n} is closed",
]
MINUTE = "@@@@-@@-@@ @@:@@"  # filled in per minute
DAY = 86400


def zone():
    return time.strftime("%z")


def _line(rng, level, module, message, second):
    stamp = f"{MINUTE}:{second:02d},{rng.randrange(1000):03d}{zone()}"
    text = message.format(n=rng.randrange(1, 5000))
    return f"{level} {stamp} {module} {rng.randrange(1000, 60000)} {rng.randrange(10**14, 10**15)} {text}\n"


def minute_block(lines_per_minute, seed=1, level=None, message=None, offset=0):
    """One minute of lines with MINUTE in place of its minute; a traceback after each "Internal Server Error".

    Entries are taken in turn from MIX's 10,000, shuffled once, from offset on: consecutive
    blocks with consecutive offsets hold MIX's exact counts.
    """
    rng = random.Random(seed)
    out = []
    for i in range(lines_per_minute):
        second = i * 60 // lines_per_minute
        if level:
            out.append(_line(rng, level, "payments", message, second))
            continue
        lvl, module, text, _weight = _WEIGHTED[(offset + i) % len(_WEIGHTED)]
        out.append(_line(rng, lvl, module, text, second))
        if text.startswith("Internal"):
            out += [t.format(n=rng.randrange(5000)) + "\n" for t in TRACEBACK]
    return "".join(out[:lines_per_minute]).encode()  # tracebacks included: exactly that many lines


def write_minutes(handle, block, first_minute, minutes):
    """block once per minute from first_minute (epoch seconds, a minute's start) on."""
    for index in range(minutes):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(first_minute + index * 60)).encode()
        handle.write(block.replace(MINUTE.encode(), stamp))


def lines_per_minute(size):
    """The density that makes a day's log size bytes."""
    average = len(minute_block(1000)) / 1000
    return max(1, int(size / (DAY / 60) / average))


def base_log(directory, size):
    """A log of size bytes or a little more, ending two hours ago; kept and reused while its size matches."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"django-{size}.log"
    meta = directory / f"django-{size}.json"
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get("size") == path.stat().st_size:
        return path
    block = minute_block(lines_per_minute(size))
    minutes = -(-size // len(block))
    end = (time.time() - 7200) // 60 * 60
    with open(path, "wb") as handle:
        write_minutes(handle, block, end - minutes * 60, minutes)
    meta.write_text(json.dumps({"size": path.stat().st_size, "generated": time.time()}))
    return path


def append_recent(path, lines, seconds, now=None, level=None, message=None):
    """lines new lines spread over the last seconds before now, appended; the bytes written."""
    now = now or time.time()
    minutes = max(1, int(seconds // 60))
    per_minute = max(1, lines // minutes)
    first = (now - seconds) // 60 * 60
    with open(path, "ab") as handle:
        before = handle.tell()
        for index in range(minutes):
            block = minute_block(per_minute, int(now) + index, level, message, offset=index * per_minute)
            write_minutes(handle, block, first + index * 60, 1)
        return handle.tell() - before


def truncate(path, size):
    os.truncate(path, size)
