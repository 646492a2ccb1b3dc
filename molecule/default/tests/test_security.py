"""Security on real hosts: /health/ is closed and says nothing internal; secrets never reach a log file.

Every path, account and secret comes from the deployed variables (pqtest), so
the same tests hold with custom_site's values.
"""

import json
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    app_dir,
    app_json,
    app_python,
    app_user,
    host,
    log_dir,
    log_through_django,
    marker,
    monitoring_log_dir,
    ops_python_dir,
    wait_for,
)

APP = host("app")
VARS = V("app")
TOKEN = VARS["peerquest_health_token"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STATE_FILE = VARS["peerquest_health_integrity_state_file"]
CONFIG = VARS["peerquest_health_config_path"]
# Nothing of these may show in any answer of /health/.
INTERNAL = [
    log_dir(),
    STATE_FILE,
    CONFIG,
    app_dir(),
    ops_python_dir(),
    VARS["peerquest_app_ops_config_dir"],
    "Traceback",
    "Errno",
    "Error:",
]


def internals_in(body):
    text = json.dumps(body)
    return [item for item in INTERNAL if item and item in text] + ([TOKEN] if TOKEN in text else [])


def warnings_about(tag_line):
    return APP.run(f"grep -rhF {shlex.quote(tag_line)} {shlex.quote(log_dir())}").stdout


# ------------------------------------------------------------------ /health/


def test_health_is_closed_in_this_inventory():
    assert VARS["peerquest_health_open"] is False
    assert len(TOKEN) >= 16


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "empty bearer", "almost the token", "another scheme"],
)
def test_health_refuses_without_the_token(headers):
    assert app_json("GET", "/health/", headers=headers) == (401, {"status": "unauthorized"})


def test_health_answers_with_the_token_and_names_nothing_internal():
    status, body = app_json("GET", "/health/", headers=AUTH)
    assert status in (200, 503) and body["status"] in ("healthy", "degraded", "unhealthy"), body
    assert internals_in(body) == [], body


def test_quick_health_stays_open():
    assert app_json("GET", "/health/quick/") == (200, {"status": "OK"})


@pytest.fixture
def unreadable_integrity_result():
    """A result file the endpoint cannot parse; the previous one (if any) comes back afterwards."""
    saved = APP.run(f"cat {shlex.quote(STATE_FILE)}")
    APP.check_output(
        f"mkdir -p $(dirname {shlex.quote(STATE_FILE)}) && printf %s '{{\"checked_at\": ' > {shlex.quote(STATE_FILE)}"
    )
    try:
        yield
    finally:
        if saved.rc == 0:
            APP.check_output(f"printf %s {shlex.quote(saved.stdout)} > {shlex.quote(STATE_FILE)}")
        else:
            APP.check_output(f"rm -f {shlex.quote(STATE_FILE)}")


def test_a_failing_check_says_error_and_the_reason_is_logged(unreadable_integrity_result):
    status, body = app_json("GET", "/health/", headers=AUTH)
    assert status == 503 and body["checks"]["data_integrity"] == "ERROR", body
    assert internals_in(body) == [], body
    # The reason is in the app's own log, not in the answer.
    assert wait_for(lambda: warnings_about("health check data_integrity failed"), what="the reason in the log")


def test_unreadable_settings_give_no_detail():
    mode = APP.check_output(f"stat -c %a {shlex.quote(CONFIG)}")
    APP.check_output(f"chmod 600 {shlex.quote(CONFIG)}")
    try:
        status, body = app_json("GET", "/health/", headers=AUTH)
        assert (status, body) == (503, {"status": "unavailable"})
    finally:
        APP.check_output(f"chmod {mode} {shlex.quote(CONFIG)}")
    assert app_json("GET", "/health/", headers=AUTH)[0] in (200, 503)


def test_the_health_token_is_in_no_log_file():
    app_json("GET", "/health/", headers={"Authorization": f"Bearer {TOKEN}x"})  # a refused attempt too
    dirs = " ".join(shlex.quote(d) for d in (log_dir(), monitoring_log_dir()))
    assert APP.run(f"grep -rlF -e {shlex.quote(TOKEN)} {dirs}").stdout == ""


# ------------------------------------------------------------- log redaction


def realistic(tag):
    """(message, its secrets) as an app really logs them; each secret unique to this run."""
    s = {k: f"{tag}-{k}-s3cr3t" for k in ("bearer", "json", "url", "query", "cookie", "exc", "kv")}
    return [
        (f"{tag} upstream call with Authorization: Bearer {s['bearer']}", [s["bearer"]]),
        (f'{tag} login body={{"username": "alice", "password": "correct horse {s["json"]}"}}', [s["json"]]),
        (f"{tag} fetching https://deploy:{s['url']}@git.example.com/repo.git", [s["url"]]),
        (f"{tag} GET /api/export/?page=2&access_token={s['query']}&format=csv 200", [s["query"]]),
        (f"{tag} Cookie: csrftoken=abc123; sessionid={s['cookie']}; theme=dark", [s["cookie"]]),
        (f"{tag} retry with password={s['kv']}", [s["kv"]]),
    ], s["exc"]


def test_no_secret_reaches_any_log_file():
    tag = marker("redact")
    messages, exc_secret = realistic(tag)
    # Through the running app's workers: the deployed LOGGING as the app configured it.
    for logger, level in (("quests", "INFO"), ("quests", "WARNING"), ("audit", "INFO")):
        for message, _ in messages:
            log_through_django("app", logger, level, message)
    # An exception whose text (and so its traceback) carries a secret, logged through the deployed
    # settings module by the app's own interpreter and account.
    script = (
        "import logging, logging.config\n"
        "from peerquest_logging.settings import LOGGING\n"
        "logging.config.dictConfig(LOGGING)\n"
        "try:\n"
        f"    raise ConnectionError('POST https://svc:{exc_secret}@hooks.example.com/x failed, token={exc_secret}')\n"
        "except ConnectionError as exc:\n"
        f"    logging.getLogger('quests').warning('{tag} delivery failed: %s', exc, exc_info=True)\n"
    )
    APP.check_output(
        f"cd / && runuser -u {shlex.quote(app_user())} -- env PYTHONPATH={shlex.quote(ops_python_dir())} "
        f"{shlex.quote(app_python())} -c {shlex.quote(script)}"
    )
    secrets = [secret for _, found in messages for secret in found] + [exc_secret]
    directory = shlex.quote(log_dir())
    # The lines arrived (or the absence of secrets proves nothing) ...
    wait_for(
        lambda: int(APP.run(f"grep -rhF {shlex.quote(tag)} {directory} | wc -l").stdout) >= 3 * len(messages) + 1,
        what="every line in the logs",
    )
    assert "Traceback (most recent call last)" in APP.check_output(f"grep -rh -A3 '{tag} delivery failed' {directory}")
    # ... and no secret reached any file in the log directory.
    patterns = " ".join(f"-e {shlex.quote(secret)}" for secret in secrets)
    leaked = APP.run(f"grep -rnF {patterns} {directory}").stdout
    assert leaked == "", leaked
