"""The health job: /health/quick/ (is the service up?) and /health/ (is it well?).

Probes go through core.http's one policy: a redirect is never followed (a 3xx
counts as the answer, so the bearer token only ever reaches the URL the
settings name), a timeout is always set, and a failure's text never carries
the URL's secret. Every probe sends the Host header the app's ALLOWED_HOSTS
accepts (health.host_header; empty: each URL's own host).
"""

import json

from peerquest_ops.core.http import HttpError, request
from peerquest_ops.monitors.runtime import log

VERDICTS = ("healthy", "degraded", "unhealthy")


def probe(url, token="", timeout=10, host_header=""):
    """(status, parsed JSON or None, error text); status is None when no answer came."""
    try:
        status, text = request(url, token=token, timeout=timeout, host_header=host_header)
    except HttpError as exc:
        return None, None, str(exc)
    try:
        return status, json.loads(text), None
    except ValueError:
        return status, None, None


def _answer(status, body):
    """An answer that is not what a probe wanted, as an alert shows it."""
    if status is not None and 300 <= status < 400:
        return f"HTTP {status} (a redirect; probes do not follow redirects)"
    return f"HTTP {status} {json.dumps(body) if body else ''}".strip()


def failing_checks(checks):
    """The /health/ checks that are not fine, for the alert text."""
    failing = {}
    for name, value in checks.items():
        if name == "models":
            ok = isinstance(value, dict)
        elif isinstance(value, dict):
            ok = value.get("result") == "OK"
        else:
            ok = value in ("OK", "NO_DATA")
        if not ok:
            failing[name] = value
    return failing


def _quick(monitor, cfg, state, fired):
    """Probe /health/quick/; whether the service is down."""
    status, body, error = probe(cfg["quick_url"], timeout=cfg["timeout"], host_header=cfg.get("host_header", ""))
    down = bool(error) or status != 200
    if status == 404:
        # The app runs but does not route the health URLs yet (a first deploy):
        # a setup gap for the team, not an outage to page for.
        fired.append("not_served")
        monitor.alert(
            "WARNING",
            "health:not_served",
            f"{cfg['quick_url']} answers 404: the app does not include peerquest_health.urls yet",
        )
    elif down:
        fired.append("unavailable")
        reason = error or _answer(status, body)
        monitor.alert("CRITICAL", "health:unavailable", f"service unavailable: {cfg['quick_url']}: {reason}")
    elif state.get("quick") == "down":
        monitor.alert("WARNING", "health:recovered", f"service available again: {cfg['quick_url']}")
    state["quick"] = "down" if down else "up"
    return down


def _full(monitor, cfg, state, fired):
    """Probe /health/ with the token (sent to this URL only) and alert on its verdict."""
    status, body, error = probe(
        cfg["full_url"], token=cfg.get("token") or "", timeout=cfg["timeout"], host_header=cfg.get("host_header", "")
    )
    overall = body.get("status") if isinstance(body, dict) else None
    if error or status in (401, 403) or overall not in VERDICTS:
        fired.append("health_check")
        monitor.alert(
            "WARNING",
            "health:check_failed",
            f"{cfg['full_url']} did not answer as expected: {error or _answer(status, None)}",
        )
    elif overall != "healthy":
        fired.append(overall)
        failing = failing_checks(body.get("checks", {}))
        monitor.alert(
            "CRITICAL" if overall == "unhealthy" else "WARNING",
            f"health:{overall}",
            f"{cfg['full_url']} reports {overall}: {json.dumps(failing, sort_keys=True)}",
        )
    state["full"] = overall


def run_health(monitor, quick=False):
    cfg = monitor.config["health"]
    state = monitor.read_state("health", {})
    fired = []
    down = _quick(monitor, cfg, state, fired)
    if not quick and not down:
        _full(monitor, cfg, state, fired)
    monitor.write_state("health", state)
    monitor.mark_run("health_quick" if quick else "health")
    log(
        f"health{' --quick' if quick else ''}: quick={state['quick']} full={state.get('full')}, "
        f"alerts {fired or 'none'}"
    )
    return fired
