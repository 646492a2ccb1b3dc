"""Filter that keeps credentials out of log files."""

import logging
import re

MASK = "********"


class SecretMaskingFilter(logging.Filter):
    """Mask values that follow sensitive keys in a log message.

    Handles ``password=hunter2``, ``token: abc``, ``"api_key": "abc"`` and
    ``Authorization: Bearer abc``. The record is rewritten in place so every
    handler after this one sees the masked text.
    """

    def __init__(self, name="", keys=("password", "passwd", "secret", "token", "api_key", "authorization")):
        super().__init__(name)
        alternatives = "|".join(re.escape(key) for key in keys)
        # key, optional closing quote, separator, optional opening quote, value.
        # "Bearer"/"Basic" is kept so the scheme still shows what was sent.
        self._pattern = re.compile(
            rf"""(?P<key>[\w-]*(?:{alternatives})[\w-]*)(?P<sep>["']?\s*[:=]\s*["']?)"""
            rf"""(?P<scheme>(?:Bearer|Basic|Token)\s+)?(?P<value>[^\s"',;&]+)""",
            re.IGNORECASE,
        )

    def mask(self, text):
        return self._pattern.sub(lambda m: f"{m['key']}{m['sep']}{m['scheme'] or ''}{MASK}", text)

    def filter(self, record):
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            # Format the traceback now so its text can be masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True
