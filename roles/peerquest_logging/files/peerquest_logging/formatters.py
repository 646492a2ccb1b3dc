"""Formatters whose timestamps say which time zone they are in: text, and JSON lines."""

import json
import logging
import time


def _zone(struct):
    """The UTC offset of a struct_time as ISO 8601 writes it: +13:00."""
    offset = time.strftime("%z", struct)
    return f"{offset[:3]}:{offset[3:]}" if len(offset) == 5 else "Z"


class ZonedFormatter(logging.Formatter):
    """``{asctime}`` with the UTC offset in force: ``2026-11-28 06:10:11,123+1300``.

    Django sets the process time zone to its TIME_ZONE, which need not be the
    host's; with the offset in each line the monitors place every line on the
    right minute whatever either zone is. An explicit ``datefmt`` is left as
    it is.
    """

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's hook name
        text = super().formatTime(record, datefmt)
        if datefmt:
            return text
        return text + time.strftime("%z", self.converter(record.created))


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line (peerquest_logging_format: json).

    ``{"time": "2026-11-28T06:10:11.123+13:00", "level": "ERROR", "logger": "quests",
    "module": "views", "process": 12, "thread": 140, "message": "...", "exception": "Traceback ..."}``

    ``exception`` and ``stack`` appear when the record has them. The handler's
    secret-masking filter runs before this formatter: it has already masked
    the message and formatted and masked the traceback (``exc_text``) and the
    stack, which are taken as they are. A newline in a message stays inside
    its JSON string, so one record is always one line.
    """

    def isotime(self, record):
        struct = self.converter(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", struct) + f".{int(record.msecs):03d}" + _zone(struct)

    def format(self, record):
        record.message = record.getMessage()
        entry = {
            "time": self.isotime(record),
            "level": record.levelname,
            "logger": record.name,
            "module": record.module,
            "process": record.process,
            "thread": record.thread,
            "message": record.message,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
