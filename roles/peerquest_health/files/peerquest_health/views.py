"""/health/quick/ for load balancers, /health/ for people and monitors.

No answer carries an exception's text or a path of this host: a failing check
says "ERROR" and the reason goes to the app's log (logger "peerquest_health"),
with secrets masked.
"""

import hmac
import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime

from django.apps import apps
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import config as health_config

logger = logging.getLogger("peerquest_health")

try:  # The app's LOGGING masks too; this holds where it is not deployed.
    from peerquest_logging.filters import SecretMaskingFilter

    _mask = SecretMaskingFilter().mask
except ImportError:  # pragma: no cover - peerquest_logging deployed without its filter

    def _mask(text):
        return "(details withheld: peerquest_logging.filters is not importable)"


def _failed(check, exc):
    """Log why a check failed (masked); the answer only ever says ERROR."""
    logger.warning("health check %s failed: %s", check, _mask(f"{type(exc).__name__}: {exc}"))
    return "ERROR"


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _token_ok(request, conf):
    """An open /health/ (explicitly) lets anyone in; otherwise the token must match, and no token refuses all."""
    token = conf.get("token") or ""
    if conf.get("open") is True and not token:
        return True
    if not token:
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "")
    given = header[7:] if header.startswith("Bearer ") else request.META.get("HTTP_X_HEALTH_TOKEN", "")
    return hmac.compare_digest(given.encode(), token.encode())


def _integrity(conf):
    """Last result the scheduled audit recorded; never runs the audit itself."""
    try:
        with open(conf["integrity_state_file"], encoding="utf-8") as handle:
            state = json.load(handle)
        checked = datetime.fromisoformat(state["checked_at"])
    except FileNotFoundError:
        return ("NO_DATA", "unhealthy" if conf["integrity_required"] else None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return (_failed("data_integrity", exc), "degraded")
    if checked.tzinfo is None:
        checked = checked.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - checked).total_seconds()
    detail = {"checked_at": state["checked_at"], "total_issues": state.get("total_issues")}
    if state.get("status") != "ok":
        return (dict(detail, result="ISSUES_DETECTED" if state.get("status") == "issues" else "ERROR"), "degraded")
    if age > conf["integrity_max_age_seconds"]:
        return (dict(detail, result="STALE"), "degraded")
    return (dict(detail, result="OK"), None)


def _log_dir(path):
    # A real write as the app's own account: os.access() ignores ACLs and
    # read-only mounts.
    with tempfile.TemporaryFile(dir=path):
        pass


def _worse(current, new):
    order = ["healthy", "degraded", "unhealthy"]
    return new if new and order.index(new) > order.index(current) else current


@never_cache
@require_GET
def health_check(request):
    """Comprehensive health check: 200 when healthy, 503 otherwise."""
    try:
        conf = health_config.load()
    except Exception as exc:  # noqa: BLE001 - no settings: no verdict, and nothing about why in the answer
        _failed("settings", exc)
        return JsonResponse({"status": "unavailable"}, status=503)
    if not _token_ok(request, conf):
        return JsonResponse({"status": "unauthorized"}, status=401)
    status = "healthy"
    checks = {}

    try:
        _database()
        checks["database"] = "OK"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = _failed("database", exc)
        status = "unhealthy"

    checks["data_integrity"], effect = _integrity(conf)
    status = _worse(status, effect)

    if checks["database"] == "OK":
        try:
            checks["models"] = {name: apps.get_model(label).objects.count() for name, label in conf["models"].items()}
        except Exception as exc:  # noqa: BLE001
            checks["models"] = _failed("models", exc)
            status = "unhealthy"

    try:
        _log_dir(conf["log_dir"])
        checks["log_dir"] = "OK"
    except OSError as exc:
        checks["log_dir"] = _failed("log_dir", exc)
        status = _worse(status, "degraded")

    try:
        free_mb = shutil.disk_usage(conf["log_dir"]).free // (1024 * 1024)
        checks["disk"] = {"free_mb": free_mb, "min_free_mb": conf["min_free_disk_mb"]}
        if free_mb < conf["min_free_disk_mb"]:
            checks["disk"]["result"] = "LOW"
            status = _worse(status, "degraded")
        else:
            checks["disk"]["result"] = "OK"
    except OSError as exc:
        checks["disk"] = _failed("disk", exc)
        status = _worse(status, "degraded")

    body = {
        "timestamp": datetime.now(UTC).isoformat(),
        "status": status,
        "host": os.uname().nodename,
        "checks": checks,
    }
    return JsonResponse(body, status=200 if status == "healthy" else 503)


@never_cache
@require_GET
def quick_health(request):
    """Database only, for load balancers."""
    try:
        _database()
    except Exception:  # noqa: BLE001
        return JsonResponse({"status": "ERROR"}, status=503)
    return JsonResponse({"status": "OK"})
