"""An exclusive lock on a file, held for a block of code.

    with locked("/var/lib/x/dedup.lock"):
        ...                                  # one process at a time

    try:
        with locked(path, blocking=False):
            ...
    except BlockingIOError:
        ...                                  # someone else holds it

The lock is fcntl.flock on the file (created 0660 minus the umask, with its
parent directory if missing); the kernel releases it when the process dies,
so a crashed holder never leaves a stale lock. flock needs only a readable
descriptor, so a lock file another account created (root running flock(1)
by hand leaves one 0644) still serves.
"""

import contextlib
import fcntl
import os


@contextlib.contextmanager
def locked(path, blocking=True):
    """Hold an exclusive flock on path for the with-block; BlockingIOError when not blocking and taken."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o660)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)
