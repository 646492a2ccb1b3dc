"""JSON state files: read forgivingly, replace atomically and durably.

    data = read_json(path, {"keys": {}})     # missing -> the default; corrupt -> set aside, the default
    write_json(path, data)                   # readers see the old file or the new one, never half

A state file must never stop a command: a torn, empty or hand-edited file (not
JSON, or JSON of another kind than the default: a list where an object is
expected, a bare number left by a truncation) is renamed
to <path>.corrupt-<UTC time stamp> (kept for a look, out of the way of the
next write), reported through `warn`, and the default is returned. Any other
OSError (no permission, ...) is raised for the caller to judge.
"""

import contextlib
import json
import os
import sys
import time


def _warn_stderr(text):
    print(f"warning: {text}", file=sys.stderr)


def _fresh(default):
    """A deep copy of a JSON value (without the copy module: its import is a tenth of a short job's CPU)."""
    return json.loads(json.dumps(default))


def read_json(path, default, warn=None):
    """The JSON value in path; a fresh copy of default when it is missing or unreadable as JSON.

    warn(text) is called once for a corrupt file (default: a line on stderr).
    """
    try:
        with open(path, "rb") as handle:
            read_stat = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError:
        return _fresh(default)
    try:
        value = json.loads(data.decode("utf-8"))
        if isinstance(default, (dict, list)) and not isinstance(value, type(default)):
            raise ValueError(f"holds {type(value).__name__}, not {type(default).__name__}")
        return value
    except ValueError as exc:
        aside = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        moved = False
        with contextlib.suppress(OSError):
            current = os.stat(path)
            # Only the file that was read: a writer may have replaced it since.
            if (current.st_dev, current.st_ino) == (read_stat.st_dev, read_stat.st_ino):
                os.rename(path, aside)
                moved = True
        where = f"; kept as {aside}" if moved else ""
        (warn or _warn_stderr)(f"ignoring unreadable {path}: {exc}{where}")
        return _fresh(default)


def fsync_dir(directory):
    """Make a rename or unlink in directory durable."""
    fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path, data, mode=None):
    """Replace path with data as JSON, atomically and durably.

    A temporary file in the same directory is written and fsynced, renamed over
    path, and the directory is fsynced. mode: the file's permission bits exactly
    (e.g. 0o644 for a file others read); None creates it 0666 minus the process
    umask, so a group-shared directory stays usable by root and the service
    account alike.
    """
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.urandom(16).hex()}")
    # Not mkstemp: its 0600 would keep the group out.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
