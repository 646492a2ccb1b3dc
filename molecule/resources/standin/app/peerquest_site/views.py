"""Test-support views that make the running gunicorn workers emit log records."""

import logging

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
MAX_COUNT = 100000
audit = logging.getLogger("audit")


@require_GET
def ping(request):
    return HttpResponse("pong", content_type="text/plain")


@csrf_exempt
@require_POST
def emit_log(request):
    """Log `message` `count` times to logger `logger` at `level`; `{i}` becomes the index."""
    logger_name = request.POST.get("logger", "")
    level = LEVELS.get(request.POST.get("level", "INFO").upper())
    message = request.POST.get("message", "")
    try:
        count = int(request.POST.get("count", "1"))
    except ValueError:
        count = -1
    if not logger_name or level is None or not 1 <= count <= MAX_COUNT:
        return HttpResponseBadRequest(
            f"need logger, level in DEBUG/INFO/WARNING/ERROR/CRITICAL, count 1..{MAX_COUNT}\n",
            content_type="text/plain",
        )
    logger = logging.getLogger(logger_name)
    for i in range(count):
        # str.replace, not format(): messages may contain other braces.
        logger.log(level, message.replace("{i}", str(i)))
    return HttpResponse(status=204)


@require_GET
def raise_error(request):
    """Fail with an unhandled exception so Django logs a real `django.request` ERROR with traceback."""
    raise RuntimeError("standin: deliberate error for log tests")


@receiver(user_login_failed)
def log_failed_login(sender, credentials, request=None, **kwargs):
    """What PeerQuest records for a failed login: the audit logger (credentials come cleansed)."""
    address = request.META.get("REMOTE_ADDR", "-") if request is not None else "-"
    audit.warning("Failed login for user %r from %s", credentials.get("username"), address)


@csrf_exempt
@require_POST
def login(request):
    """Check username and password as a login form would: 204 when they hold, 401 (and a failed login) when not."""
    user = authenticate(request, username=request.POST.get("username", ""), password=request.POST.get("password", ""))
    return HttpResponse(status=204 if user is not None else 401)
