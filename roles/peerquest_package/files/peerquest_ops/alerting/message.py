"""The words of an alert, shared by every channel.

A delivery is a dict: channel, severity, key, message, created (epoch),
suppressed (count) and, for email, recipients. Spool entries are deliveries
plus retry bookkeeping (see spool).
"""

import time

FOOTER = "PeerQuest Monitoring"
COLOURS = {"CRITICAL": 0xFF0000, "WARNING": 0xFF9900, "INFO": 0x0099FF}


def subject(config, severity):
    return config["subject"].format(severity=severity)


def body(severity, message, config, when=None):
    """The plan's send_alert layout."""
    when = time.localtime(when)
    return (
        f"Time: {time.strftime('%a %b %d %H:%M:%S %Z %Y', when)}\n"
        f"Severity: {severity}\n"
        f"Message: {message}\n"
        "\n"
        f"Check logs at: {config['log_dir']}/\n"
    )


def title(delivery):
    return f"{delivery['severity']}: PeerQuest Alert"


def first_line(text):
    return text.splitlines()[0] if text else ""


def truncate(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
