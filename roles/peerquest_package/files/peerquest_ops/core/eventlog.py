"""monitoring.log: one line per event, written by several programs at once.

    log = EventLog("/var/log/x/monitoring.log", "peerquest-alert")
    log.event("INFO", "sent", severity="CRITICAL", key="CRITICAL DB down", channel="email", to="a@x.test")
    # 2026-11-28 06:10:11 peerquest-alert INFO sent severity=CRITICAL key="CRITICAL DB down" channel=email to=a@x.test
    log.line("errors: 120 new lines, alerts none")
    # 2026-11-28 06:10:11 peerquest-alert errors: 120 new lines, alerts none

Line format (the monthly review parses it, keep it byte-compatible):
    <YYYY-MM-DD HH:MM:SS local> <program> <LEVEL> <event> name=value ...
A value is written as is unless it is empty or holds a blank, '"' or '=', then
as a JSON string. Every line goes through core.config.scrub(). Each line is one
O_APPEND write, so concurrent writers never interleave. path "" turns the log
off; path "-" writes to standard output (a cron job's output appended by cron),
or, when the environment names a file in PEERQUEST_OPS_LOG_FILE (a long-running
service's unit sets it), to that file.

Rotation: the file is opened for every line, so after logrotate moved it the
next line lands in the new file, never in the rotated one (which is compressed
later and must not change any more). A service must not hand it a descriptor
opened once (systemd's StandardOutput=append:): that descriptor keeps pointing
at the rotated file.
A log that cannot be written never stops the program: it is reported once
through warn(text) (default: "<program>: warning: <text>" on stderr).
"""

import json
import os
import re
import sys

from peerquest_ops.core.config import scrub
from peerquest_ops.core.timefmt import log_stamp

_NEEDS_QUOTES = re.compile(r'[\s"=]')
# Where "-" writes instead of standard output (set by a service's unit).
LOG_FILE_ENV = "PEERQUEST_OPS_LOG_FILE"


def field_value(value):
    """A value as written after name=: bare, or a JSON string when it could be misread."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or _NEEDS_QUOTES.search(text) else text


class EventLog:
    def __init__(self, path, program, warn=None):
        if path == "-" and os.environ.get(LOG_FILE_ENV, "").startswith("/"):
            path = os.environ[LOG_FILE_ENV]
        self.path = path
        self.program = program
        self.warn = warn or (lambda text: print(scrub(f"{program}: warning: {text}"), file=sys.stderr))
        self.warned = False

    def event(self, level, event, **fields):
        """One event line; fields keep their order."""
        words = [level, event] + [f"{name}={field_value(value)}" for name, value in fields.items()]
        self.line(" ".join(words))

    def line(self, text):
        """One free-text line after the time stamp and the program name."""
        if not self.path:
            return
        data = (scrub(f"{log_stamp()} {self.program} {text}") + "\n").encode("utf-8")
        if self.path == "-":
            # Cron appends standard output to the log: on a full disk the write fails, and the job
            # must go on to alert (through the network) rather than die at its first line.
            try:
                fd = sys.stdout.fileno()
            except (OSError, ValueError):  # standard output replaced by an object without one
                sys.stdout.write(data.decode("utf-8"))
                return
            try:
                sys.stdout.flush()
                os.write(fd, data)  # unbuffered: nothing left over for the exit to fail on
            except OSError as exc:
                self._warn_once(f"cannot write the job log (standard output): {exc.strerror}")
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            self._warn_once(f"cannot write {self.path}: {exc.strerror}")

    def _warn_once(self, text):
        if self.warned:
            return
        self.warned = True
        try:
            self.warn(text)
        except OSError:
            pass  # standard error is on the same full disk: nothing left to tell it to
