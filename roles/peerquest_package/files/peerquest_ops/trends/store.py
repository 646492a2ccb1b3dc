"""Reports kept as files: written atomically, older ones pruned after the retention."""

import os
import re
import time

NAME = re.compile(r"^peerquest-(daily|weekly)-\d{8}T\d{4}Z\.html$")


def save(directory, period, end, text):
    """Write the report; returns its path."""
    name = f"peerquest-{period}-{time.strftime('%Y%m%dT%H%MZ', time.gmtime(end))}.html"
    path = os.path.join(directory, name)
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o640)
    os.replace(temp, path)
    return path


def prune(directory, retention_days, now=None):
    """Remove this command's reports older than retention_days; returns the removed paths."""
    limit = (now or time.time()) - retention_days * 86400
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if NAME.match(name) and os.path.getmtime(path) < limit:
            os.remove(path)
            removed.append(path)
    return removed
