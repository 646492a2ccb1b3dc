"""Where a log's window starts, found by the lines' own time stamps: a first run reads the window, not the file.

    offset = offset_at(path, since)   # the first line stamped at or after since (epoch seconds)

A log is written in time order (near enough: processes interleave within
milliseconds), so a binary search over byte offsets finds the window's start:
seek, skip to the next line, read the first line that has a time (text stamp
or JSON "time"; traceback lines have none), go left or right. A 1 GiB log
takes some twenty reads of a few KiB instead of reading 1 GiB.
"""

import os

from peerquest_ops.monitors.logline import parse, text_time

BLOCK = 16 * 1024  # bytes read per probe; a probe finds no stamp only inside a longer traceback


def _time_of(raw):
    line = raw.decode("utf-8", "replace")
    if line.startswith("{"):
        return parse(line).when(None)
    return text_time(line, None)


def _stamped_after(handle, offset):
    """(start, time) of the first line with a time that starts after offset (at offset 0: at 0); or None."""
    handle.seek(offset)
    data = handle.read(BLOCK)
    start = 0 if offset == 0 else data.find(b"\n") + 1
    if offset and start == 0:
        return None
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return None
        when = _time_of(data[start:end])
        if when is not None:
            return offset + start, when
        start = end + 1


def offset_at(path, since):
    """Offset of the first line of path stamped at or after since; the end of its last whole line if none is."""
    size = os.path.getsize(path)
    lo, hi = 0, size
    with open(path, "rb") as handle:
        # Invariant: the lines before lo are older than since; the answer starts before hi + BLOCK.
        while hi - lo > BLOCK:
            mid = (lo + hi) // 2
            found = _stamped_after(handle, mid)
            if found is None or found[1] >= since:
                hi = mid
            else:
                lo = mid
        # The rest, line by line from lo: lines without a time belong to the record above them.
        handle.seek(lo)
        offset = lo
        if lo:
            handle.readline()  # the line lo falls in started before lo
            offset = handle.tell()
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a half-written line: where the next run starts
            when = _time_of(raw[:-1])
            if when is not None and when >= since:
                return offset
            offset += len(raw)
    return offset
