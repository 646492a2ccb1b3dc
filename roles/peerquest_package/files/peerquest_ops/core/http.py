"""The one HTTP policy of every PeerQuest Ops command.

    status, text = request(url, method="POST", body={"a": 1}, token=token, timeout=10)
    if status is a 2xx ...                    # any answer, 3xx/4xx/5xx included, is returned
    except HttpError as exc: str(exc)         # no answer at all; the text never holds the URL's secret

The policy:
- Redirects are never followed: a 3xx comes back as its status, so a bearer
  token or a secret URL path is only ever sent to the URL the settings name.
- A timeout is always set (timeout must be > 0).
- token is sent as "Authorization: Bearer <token>"; host_header replaces the
  Host header (an app whose ALLOWED_HOSTS lacks the URL's host); ca_file
  verifies https:// with that CA bundle instead of the system's.
- body: bytes or str as given, anything else as JSON (Content-Type application/json).
- Network failures raise HttpError whose text is the reason only ("Connection
  refused", "timed out", "[SSL: CERTIFICATE_VERIFY_FAILED] ..."), with any
  trace of the URL masked. masked(url) gives the URL as it may be printed.
"""

import contextlib
import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus


class HttpError(Exception):
    """No HTTP answer (refused, timed out, TLS failure, bad URL); the text is safe to print."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        # Following it could hand the token or the secret path to another host.
        return None


def masked(url):
    """Scheme, host and port only: the path and query of a webhook URL are its password."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if not parts.scheme or not host:
        return "(invalid URL)"
    return f"{parts.scheme}://{host}{port}/..."


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


def _reason(exc, url):
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return _hide_url(str(reason.strerror), url)
    return _hide_url(str(reason), url) or type(reason).__name__


def request(url, method="GET", body=None, headers=None, token="", timeout=10, host_header="", ca_file=""):
    """(status, body text) of the answer, whatever its status; HttpError when none came."""
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
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        # 3xx (not followed), 4xx and 5xx: an answer, not a network failure.
        try:
            text = exc.read().decode("utf-8", errors="replace")
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            text = ""
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                exc.close()
        return exc.code, text
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise HttpError(_reason(exc, url)) from None
