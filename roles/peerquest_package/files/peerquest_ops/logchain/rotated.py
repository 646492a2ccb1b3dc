"""Rotated copies of a log on disk and the hash of what they hold.

logrotate renames django.log to django.log-<dateext>, and compresses it at the
next rotation (delaycompress) to django.log-<dateext>.gz. A rotated file is
named in the manifest without .gz, and its hash is that of its content
uncompressed: the same whether it is checked before or after compression, so
the hook may run at any point of logrotate's run.
"""

import glob
import gzip
import hashlib
import os
import zlib

GZ = ".gz"


def base_name(path):
    return path[: -len(GZ)] if path.endswith(GZ) else path


def rotated_copies(log):
    """The rotated copies of log (names without .gz), oldest name first."""
    names = {base_name(p) for p in glob.glob(glob.escape(log) + "-*")}
    return sorted(n for n in names if not n.endswith((".lock", ".tmp")))


def on_disk(name):
    """The path holding name now (itself or name.gz); None when neither exists."""
    for path in (name, name + GZ):
        if os.path.exists(path):
            return path
    return None


def content_hash(path):
    """(sha256 hex, size) of the content of path, uncompressed if it ends in .gz."""
    digest, size = hashlib.sha256(), 0
    opener = gzip.open if path.endswith(GZ) else open
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def readable_hash(path):
    """content_hash, or (None, reason) when the file cannot be read whole (a damaged .gz)."""
    try:
        return content_hash(path)
    except (OSError, EOFError, zlib.error) as exc:
        return None, str(exc) or type(exc).__name__
