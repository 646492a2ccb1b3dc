"""The one HTTP policy of every PeerQuest Ops command.

    status, text = request(url, method="POST", body={"a": 1}, token=token, timeout=10)
    if status is a 2xx ...                    # any answer, 3xx/4xx/5xx included, is returned
    except HttpError as exc: str(exc)         # no answer at all; the text never holds the URL's secret
    answer = fetch(url, ...)                  # the same, with the headers: answer.status, .text, .headers
    retry_after(answer.headers)               # seconds a 429/503 asks to wait (seconds or HTTP date), or None

The policy:
- Redirects are never followed: a 3xx comes back as its status, so a bearer
  token or a secret URL path is only ever sent to the URL the settings name.
- A timeout is always set (timeout must be > 0).
- token is sent as "Authorization: Bearer <token>"; host_header replaces the
  Host header (an app whose ALLOWED_HOSTS lacks the URL's host); ca_file
  verifies https:// with that CA bundle instead of the system's.
- body: bytes or str as given, anything else as JSON (Content-Type application/json).
- Network failures raise HttpError whose text is the reason only ("Connection
  refused", "no answer within 10 s", "cannot resolve hooks.example.com: Name or
  service not known", "[SSL: CERTIFICATE_VERIFY_FAILED] ..."), with any trace
  of the URL masked. masked(url) gives the URL as it may be printed.
  HttpError.kind says which: "timeout", "dns" or "network".
"""

import collections
import contextlib
import email.utils
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus


class HttpError(Exception):
    """No HTTP answer (refused, timed out, TLS failure, bad URL); the text is safe to print."""

    def __init__(self, text, kind="network"):
        super().__init__(text)
        # "timeout", "dns" or "network": a caller may judge them differently.
        self.kind = kind


# An answer: status, body text and headers (an email.message.Message: case-insensitive get()).
Answer = collections.namedtuple("Answer", "status text headers")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        # Following it could hand the token or the secret path to another host.
        return None


def origin(url):
    """scheme://host:port of a URL, or "(invalid URL)": never its path, query or a password in it."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if not parts.scheme or not host:
        return "(invalid URL)"
    return f"{parts.scheme}://{host}{port}"


def masked(url):
    """Scheme, host and port only: the path and query of a webhook URL are its password."""
    shown = origin(url)
    return shown if shown == "(invalid URL)" else f"{shown}/..."


def status_text(status):
    """ "HTTP 404 Not Found" (the standard phrase; HTTP/2 answers carry none of their own)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {status} {phrase}".rstrip()


def _hide_url(text, url):
    try:
        parts = urllib.parse.urlsplit(url)
        pieces = [url, parts.path, parts.query, parts.password]
    except ValueError:
        pieces = [url]
    for piece in sorted((p for p in pieces if p and len(p) > 1), key=len, reverse=True):
        text = text.replace(piece, "***" if piece != url else masked(url))
    return text


def _host(url):
    try:
        return urllib.parse.urlsplit(url).hostname or "(no host)"
    except ValueError:
        return "(invalid URL)"


def _failure(exc, url, timeout):
    """The HttpError for a request that got no answer."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        # Connected (or not) and nothing came back in time: a hung server.
        return HttpError(f"timed out: no answer within {timeout:g} s", kind="timeout")
    if isinstance(reason, socket.gaierror):
        text = reason.strerror or str(reason)
        return HttpError(f"cannot resolve {_host(url)}: {text}", kind="dns")
    if isinstance(reason, OSError) and reason.strerror:
        return HttpError(_hide_url(str(reason.strerror), url))
    return HttpError(_hide_url(str(reason), url) or type(reason).__name__)


def retry_after(headers, now=None):
    """Seconds a Retry-After header asks to wait (delay-seconds or an HTTP date), at least 0; None without one."""
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0, int(when.timestamp() - (time.time() if now is None else now) + 0.999))


def request(url, method="GET", body=None, headers=None, token="", timeout=10, host_header="", ca_file=""):
    """(status, body text) of the answer, whatever its status; HttpError when none came."""
    answer = fetch(url, method, body, headers, token, timeout, host_header, ca_file)
    return answer.status, answer.text


def fetch(url, method="GET", body=None, headers=None, token="", timeout=10, host_header="", ca_file=""):
    """The Answer (status, text, headers), whatever its status; HttpError when none came."""
    if not timeout or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    all_headers = {"User-Agent": "peerquest_ops"}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        all_headers["Content-Type"] = "application/json"
    if isinstance(body, str):
        body = body.encode("utf-8")
    all_headers.update(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if host_header:
        all_headers["Host"] = host_header
    try:
        req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
        context = ssl.create_default_context(cafile=ca_file or None)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
        with opener.open(req, timeout=timeout) as response:
            return Answer(response.status, response.read().decode("utf-8", errors="replace"), response.headers)
    except urllib.error.HTTPError as exc:
        # 3xx (not followed), 4xx and 5xx: an answer, not a network failure.
        try:
            text = exc.read().decode("utf-8", errors="replace")
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            text = ""
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                exc.close()
        return Answer(exc.code, text, exc.headers)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _failure(exc, url, timeout) from None
