"""The health endpoints' own rules, without Django: who gets in, and what an answer may say.

Django is not installed here (the hosts have Debian's), so the few names
views.py imports are stood in for by minimal modules; the real wiring is proved
on the hosts (molecule/default/tests/test_security.py).
"""

import json
import logging
import sys
import types

import pytest
from conftest import StubDatabase, StubRequest, stub_django, stub_module

SECRET = "hunter2-health-secret"
TOKEN = "t0ken-for-the-health-endpoint"


# ------------------------------------------------------------ a tiny Django


class JsonResponse:
    def __init__(self, data, status=200):
        self.data = data
        self.status_code = status
        self.content = json.dumps(data).encode()


Request = StubRequest


FakeDatabase = StubDatabase


class FakeApps:
    error = None

    def get_model(self, label):
        if self.error:
            raise self.error
        return types.SimpleNamespace(objects=types.SimpleNamespace(count=lambda: 3))


@pytest.fixture
def django_stub(monkeypatch):
    database, registry = FakeDatabase(), FakeApps()
    stub_django(monkeypatch, database, registry, {"JsonResponse": JsonResponse})
    return database, registry


@pytest.fixture
def health(django_stub, monkeypatch, tmp_path):
    """(views module, settings dict to edit, the fake database, the fake app registry)."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    conf = {
        "token": TOKEN,
        "open": False,
        "integrity_state_file": str(tmp_path / "audit" / "last-result.json"),
        "integrity_max_age_seconds": 3600,
        "integrity_required": False,
        "log_dir": str(log_dir),
        "min_free_disk_mb": 0,
        "models": {"quests": "quests.Quest"},
    }
    config_path = tmp_path / "health.json"
    monkeypatch.setitem(
        sys.modules, "peerquest_health.deployed", stub_module("peerquest_health.deployed", CONFIG_PATH=str(config_path))
    )
    import peerquest_health.views as views

    def write(**changes):
        conf.update(changes)
        config_path.write_text(json.dumps(conf))

    write()
    database, registry = django_stub
    return types.SimpleNamespace(views=views, write=write, conf=conf, db=database, apps=registry, tmp=tmp_path)


def call(health, view="health_check", headers=None):
    response = getattr(health.views, view)(Request(headers))
    return response.status_code, response.data


# ------------------------------------------------------------ who gets in

BEARER = {"Authorization": f"Bearer {TOKEN}"}
ACCESS = [
    # (settings, request headers, expected status)
    ({"token": TOKEN, "open": False}, {}, 401),
    ({"token": TOKEN, "open": False}, {"Authorization": "Bearer wrong-token-wrong-token"}, 401),
    ({"token": TOKEN, "open": False}, {"Authorization": f"Basic {TOKEN}"}, 401),
    ({"token": TOKEN, "open": False}, {"Authorization": f"Bearer {TOKEN}x"}, 401),
    ({"token": TOKEN, "open": False}, BEARER, 200),
    ({"token": TOKEN, "open": False}, {"X-Health-Token": TOKEN}, 200),
    # No token and not opened on purpose: closed to everyone, even an empty bearer.
    ({"token": "", "open": False}, {}, 401),
    ({"token": "", "open": False}, {"Authorization": "Bearer "}, 401),
    # Settings written before "open" existed are closed too.
    ({"token": "", "open": None}, {}, 401),
    # Opened on purpose.
    ({"token": "", "open": True}, {}, 200),
]


@pytest.mark.parametrize(("settings", "headers", "expected"), ACCESS)
def test_who_gets_into_health(health, settings, headers, expected):
    health.write(**settings)
    status, body = call(health, headers=headers)
    assert status == expected, body
    if expected == 401:
        assert body == {"status": "unauthorized"}


def test_quick_health_needs_no_token(health):
    assert call(health, "quick_health") == (200, {"status": "OK"})


# -------------------------------------------------- what an answer may say


def _leaks(body, *texts):
    dumped = json.dumps(body)
    return [text for text in texts if text in dumped]


FAILURES = {
    "database": lambda h: setattr(h.db, "error", RuntimeError(f"cannot open {h.tmp}/db.sqlite3 password={SECRET}")),
    "models": lambda h: setattr(h.apps, "error", LookupError(f"no model in {h.tmp}/app token={SECRET}")),
    "log_dir": lambda h: h.write(log_dir=f"{h.tmp}/missing"),
    "data_integrity": lambda h: (
        (h.tmp / "audit").mkdir(),
        (h.tmp / "audit" / "last-result.json").write_text(f'{{"checked_at": "{SECRET}"'),
    ),
}


@pytest.mark.parametrize("check", sorted(FAILURES))
def test_a_failing_check_says_error_and_logs_the_reason_masked(health, check, caplog):
    FAILURES[check](health)
    with caplog.at_level(logging.WARNING, logger="peerquest_health"):
        status, body = call(health, headers=BEARER)
    assert status == 503 and body["status"] in ("degraded", "unhealthy"), body
    assert body["checks"][check] == "ERROR", body
    assert not _leaks(body, str(health.tmp), SECRET, "Error", "Errno"), body
    logged = [r.getMessage() for r in caplog.records if r.name == "peerquest_health"]
    assert any(f"health check {check} failed" in line for line in logged), logged
    assert not any(SECRET in line for line in logged), logged


def test_unreadable_settings_give_no_verdict_and_no_detail(health, caplog):
    (health.tmp / "health.json").write_text('{"token": ')
    with caplog.at_level(logging.WARNING, logger="peerquest_health"):
        status, body = call(health, headers=BEARER)
    assert (status, body) == (503, {"status": "unavailable"})
    assert any("health check settings failed" in r.getMessage() for r in caplog.records)


def test_quick_health_says_only_error(health):
    health.db.error = RuntimeError(f"{health.tmp}/db.sqlite3 password={SECRET}")
    assert call(health, "quick_health") == (503, {"status": "ERROR"})


def test_a_healthy_answer_names_no_path(health):
    status, body = call(health, headers=BEARER)
    assert status == 200 and body["status"] == "healthy", body
    assert not _leaks(body, str(health.tmp), TOKEN), body


# ------------------------------------------------------ the settings check


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"token": "", "open": False}, "'token' is empty and 'open' is false"),
        ({"token": TOKEN, "open": True}, "'open' is true but a 'token' is set"),
        ({"open": "yes"}, "'open' must be bool"),
    ],
)
def test_settings_check_refuses(health, changes, problem):
    from peerquest_health import config

    conf = dict(health.conf, **changes)
    found = config.problems(conf)
    assert any(problem in text for text in found), found
    assert not any(TOKEN in text for text in found), found


def test_settings_check_needs_open(health):
    from peerquest_health import config

    assert config.problems({k: v for k, v in health.conf.items() if k != "open"}) == ["missing key 'open'"]
    assert config.problems(health.conf) == []
    assert config.problems(dict(health.conf, token="", open=True)) == []
