"""Filter that keeps credentials out of log files."""

import logging
import re

MASK = "********"
DEFAULT_KEYS = ("password", "passwd", "secret", "token", "api_key", "authorization", "sessionid")
# Schemes kept in front of a masked credential, so a line still shows what was sent.
SCHEMES = r"(?:Bearer|Basic|Token|Digest|JWT)\s+"
# Set-Cookie attributes: not secrets, kept readable.
COOKIE_ATTRIBUTES = {"path", "domain", "expires", "max-age", "samesite", "secure", "httponly", "priority"}


def _key_pattern(key):
    """A key as it is spelled in the wild: api_key also matches apikey, api-key and X-Api-Key."""
    return r"[_-]?".join(re.escape(part) for part in re.split(r"[_-]", key) if part)


class SecretMaskingFilter(logging.Filter):
    """Mask credentials in a log record's message, traceback and stack.

    Masks the value after a sensitive key in ``key=value``, ``key: value``,
    ``"key": "value"`` (JSON, Python reprs; the whole quoted value, spaces and
    escaped quotes included) and ``Authorization: Bearer value``; the password
    in URLs (``https://user:********@host``); every value of a ``Cookie`` or
    ``Set-Cookie`` header; a bare ``Bearer <token>`` and JWTs wherever they
    stand. Query strings are ``key=value`` pairs. The record is rewritten in
    place, so every handler after this one sees the masked text; a traceback
    is formatted here so that its text is masked too.
    """

    def __init__(self, name="", keys=DEFAULT_KEYS):
        super().__init__(name)
        alternatives = "|".join(_key_pattern(key) for key in keys) or r"(?!)"
        self._key_value = re.compile(
            rf"""(?P<key>[\w-]*(?:{alternatives})[\w-]*)(?P<sep>["']?\s*[:=]\s*)"""
            rf"""(?:(?P<quote>["'])(?P<qscheme>{SCHEMES})?(?P<quoted>(?:\\.|(?!(?P=quote)).)*)(?P=quote)"""
            rf"""|(?P<scheme>{SCHEMES})?(?P<value>[^\s"',;&]+))""",
            re.IGNORECASE,
        )
        self._url_password = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s/@]+)(?=@)", re.I)
        self._cookie_header = re.compile(
            r"(?P<name>\b(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\r\n\"']+)", re.IGNORECASE
        )
        self._cookie_pair = re.compile(r"(?P<name>[^\s;,=\"']+)=(?P<value>[^;,\s\"']*)")
        self._bearer = re.compile(r"\b(?P<scheme>(?i:bearer)\s+)(?P<value>[A-Za-z0-9._~+/=-]{16,})")
        self._jwt = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")

    def _cookies(self, match):
        def pair(m):
            if m["name"].lower() in COOKIE_ATTRIBUTES or not m["value"]:
                return m[0]
            return f"{m['name']}={MASK}"

        return match["name"] + self._cookie_pair.sub(pair, match["value"])

    def _key_value_sub(self, m):
        if m["quote"]:
            return f"{m['key']}{m['sep']}{m['quote']}{m['qscheme'] or ''}{MASK}{m['quote']}"
        return f"{m['key']}{m['sep']}{m['scheme'] or ''}{MASK}"

    def mask(self, text):
        if not text:
            return text
        text = self._url_password.sub(lambda m: m["head"] + MASK, text)
        text = self._cookie_header.sub(self._cookies, text)
        text = self._key_value.sub(self._key_value_sub, text)
        text = self._bearer.sub(lambda m: m["scheme"] + MASK, text)
        return self._jwt.sub(MASK, text)

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
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True
