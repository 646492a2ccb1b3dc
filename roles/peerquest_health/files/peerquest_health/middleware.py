"""One log line per response, for mtail to turn into request counts and latency histograms.

Add it to the app's settings (the one line it needs):

    MIDDLEWARE += ["peerquest_health.middleware.RequestMetricsMiddleware"]

Each response logs, through the logger "peerquest_health.requests" (the
deployed LOGGING gives it a file of its own):

    request view=quests:detail method=GET status=200 duration=0.012345

view is the URL's name (namespaced, as reverse() takes it) or, for a URL
without a name, its route pattern; "unmatched" when no URL matched (404s for
unknown paths). Never the path itself: label values stay bounded, no ids. A
method outside the standard ones is "OTHER". Only characters safe in a
Prometheus label and an mtail regex are kept; a long name is cut.
"""

import logging
import re
import time

logger = logging.getLogger("peerquest_health.requests")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
UNSAFE = re.compile(r"[^A-Za-z0-9_.:/<>-]")
MAX_VIEW = 100
MIN_DURATION = 0.000001


def view_label(request):
    """The bounded name of the URL the request matched."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    name = match.view_name if getattr(match, "url_name", None) else getattr(match, "route", "")
    return UNSAFE.sub("_", str(name or "unnamed"))[:MAX_VIEW]


def method_label(request):
    method = str(getattr(request, "method", "") or "").upper()
    return method if method in METHODS else "OTHER"


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        try:
            logger.info(
                "request view=%s method=%s status=%d duration=%.6f",
                view_label(request),
                method_label(request),
                int(response.status_code),
                # mtail's histograms drop an observation of 0: a response takes at least a microsecond.
                max(time.monotonic() - started, MIN_DURATION),
            )
        except Exception:  # noqa: BLE001 - a metrics line never costs a response
            pass
        return response
