"""Formatter whose timestamps say which time zone they are in."""

import logging
import time


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
