"""Time stamps the commands print, log and send.

log_stamp()          "2026-11-28 06:10:11", local time: the first two words of a monitoring.log line
iso_utc(epoch)       "2026-11-28T05:10:11Z" for JSON payloads
parse_log_stamp(s)   epoch of a log_stamp() text (local time)
"""

import time
from datetime import UTC, datetime

LOG_STAMP = "%Y-%m-%d %H:%M:%S"


def log_stamp(epoch=None):
    return time.strftime(LOG_STAMP, time.localtime(epoch))


def parse_log_stamp(text):
    return time.mktime(time.strptime(text, LOG_STAMP))


def iso_utc(epoch):
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
