"""Settings files and the secrets that must never be printed or logged.

    config = load(path)             # dict from a JSON settings file; ConfigError names the file
    remember(password, url, ...)    # register secrets (too short values are ignored)
    print(scrub(text))              # every registered secret replaced by ***

Each command registers the secrets of its settings as soon as it has read
them; everything it prints or logs then goes through scrub(). The event log
(core.eventlog) scrubs every line itself.
"""

import json

# Values shorter than this are not registered: they would scrub ordinary text ("/" as a whole path).
MIN_SECRET_LENGTH = 4

_SECRETS = []


class ConfigError(Exception):
    """A settings file that cannot be read or does not hold what the command needs."""


def load(path):
    """The JSON value in path (its shape is the caller's to check); ConfigError when unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc


def url_secrets(url):
    """The parts of a URL that carry its secret: the whole URL, its path, query and password."""
    if not isinstance(url, str) or not url:
        return []
    import urllib.parse  # noqa: PLC0415 - only callers with URLs pay for it (it loads ipaddress)

    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    return [url, parts.path, parts.query, password]


def remember(*values):
    """Register secrets; non-strings and values shorter than MIN_SECRET_LENGTH are skipped."""
    found = set(_SECRETS) | {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
    # Longest first, so a secret containing another is replaced whole.
    _SECRETS[:] = sorted(found, key=len, reverse=True)


def forget():
    """Drop every registered secret (tests; a process that loads other settings)."""
    _SECRETS.clear()


def scrub(text):
    """text with every registered secret replaced by ***."""
    text = str(text)
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text
