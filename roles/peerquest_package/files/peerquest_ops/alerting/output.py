"""What peerquest-alert prints: one line, prefixed with the program name, secrets scrubbed."""

import sys

from peerquest_ops.core.config import scrub

PROGRAM = "peerquest-alert"


def say(text, error=False):
    print(scrub(f"{PROGRAM}: {text}"), file=sys.stderr if error else sys.stdout)


def warn(text):
    """For core helpers that report a problem the command survives."""
    say(f"warning: {text}", error=True)
