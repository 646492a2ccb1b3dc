"""Helpers for the Molecule verify steps (testinfra over the podman backend)."""

import json
import os
import shlex
import time
import uuid

import testinfra

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "phase1")
LOG_DIR = "/var/log/peerquest"
APP_URL = "http://127.0.0.1:8000"


def host(role):
    """The scenario's container for a role: app or sink."""
    return testinfra.get_host(f"podman://pq-{SCENARIO}-{role}")


def marker(prefix="pq"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def http(target, method, url, data=None, headers=None, timeout=10):
    """An HTTP request made inside a container with curl: (status, body)."""
    cmd = ["curl", "-sS", "-m", str(timeout), "-X", method, "-o", "/dev/stdout", "-w", "\n%{http_code}"]
    for key, value in (headers or {}).items():
        cmd += ["-H", f"{key}: {value}"]
    for key, value in (data or {}).items():
        cmd += ["--data-urlencode", f"{key}={value}"]
    cmd.append(url)
    out = target.check_output(shlex.join(cmd))
    body, _, status = out.rpartition("\n")
    return int(status), body


def http_json(target, method, url, **kwargs):
    status, body = http(target, method, url, **kwargs)
    return status, json.loads(body) if body else None


def log_through_django(app, logger, level, message, count=1):
    """Make the running gunicorn workers log, as the real app would."""
    status, body = http(
        app,
        "POST",
        f"{APP_URL}/standin/log/",
        data={"logger": logger, "level": level, "message": message, "count": count},
    )
    assert status == 204, body


def file_lines(target, path):
    result = target.run(f"cat {shlex.quote(path)}")
    return result.stdout.splitlines() if result.rc == 0 else []


def wait_for(predicate, timeout=30, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def captured_mail(sink):
    status, mails = http_json(sink, "GET", "http://127.0.0.1:8025/_captured/mail")
    assert status == 200
    return mails


SPOOL_DIR = "/var/spool/peerquest-alert"


def make_spool_due(app):
    """Pull every pending delivery's next attempt to now, instead of waiting out the backoff."""
    app.check_output(
        f'for f in {SPOOL_DIR}/*.json; do [ -e "$f" ] || continue; '
        'sed -i -E \'s/"next_attempt": [0-9.]+/"next_attempt": 0/\' "$f"; done'
    )


def spooled(app):
    return app.check_output(f"ls {SPOOL_DIR}").split()


def output(target, command):
    """Standard output of a command as UTF-8 text, whatever the container's locale."""
    result = target.run(command)
    assert result.rc == 0, result.stderr
    return result.stdout_bytes.decode("utf-8", "replace")
