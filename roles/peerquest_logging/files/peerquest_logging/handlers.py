"""File handler that survives logrotate, never leaves a world-readable log, and never fails the caller."""

import logging.handlers
import os


class PrivateWatchedFileHandler(logging.handlers.WatchedFileHandler):
    """A WatchedFileHandler that creates its file with a fixed mode.

    WatchedFileHandler reopens the file when logrotate has moved it away, so
    lines never keep landing in the rotated copy. The mode is applied when this
    process creates the file (not through the process-wide umask, which other
    threads share); an existing file created by logrotate keeps its mode.
    """

    def __init__(self, filename, mode="a", encoding=None, delay=False, errors=None, permissions=0o640):
        if isinstance(permissions, str):
            permissions = int(permissions, 8)
        self.permissions = permissions
        super().__init__(filename, mode=mode, encoding=encoding, delay=delay, errors=errors)

    def _open(self):
        try:
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, self.permissions)
        except FileExistsError:
            pass
        else:
            # The umask may have masked bits off; set exactly what was asked.
            os.fchmod(fd, self.permissions)
            os.close(fd)
        return super()._open()

    def emit(self, record):
        # WatchedFileHandler reopens (and flushes the old file) before
        # StreamHandler's own error handling: a log directory removed or made
        # unwritable, or a full disk, would raise into the code that logged
        # (a 500, a dead worker). It costs the record instead, said on stderr
        # (handleError); the next record tries the file again.
        try:
            super().emit(record)
        except OSError:
            self.handleError(record)
