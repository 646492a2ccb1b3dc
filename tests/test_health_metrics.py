"""/health/metrics/: business counts in Prometheus' text format 0.0.4, behind /health/'s token.

Django is not installed here (the hosts have Debian's), so, as in
test_health_views.py, the few names the health app imports are stood in for
by minimal modules: a model registry whose models have a status field with
choices and answer one GROUP BY query. What is checked: who gets in, the
content type, one gauge per configured model with every choice (0 when none)
plus "other" for anything else, peerquest_database_up, and that no failure
puts an exception's text or a path into the answer. The real Django answers
on the hosts (molecule/default/tests/test_phase3.py scrapes it through Prometheus).
"""

import json
import logging
import re
import sys
import types

import pytest
from conftest import ROLES, StubDatabase, StubRequest, stub_django, stub_module

TOKEN = "t0ken-for-the-health-endpoint"
SECRET = "hunter2-metrics-secret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')

# ------------------------------------------------------------ a tiny Django


class HttpResponse:
    def __init__(self, content="", status=200, content_type=None):
        self.content = content.encode() if isinstance(content, str) else content
        self.status_code = status
        self.headers = {"Content-Type": content_type}


class JsonResponse(HttpResponse):
    def __init__(self, data, status=200):
        super().__init__(json.dumps(data), status, "application/json")


Request = StubRequest


Database = StubDatabase


class QuerySet:
    """order_by().values_list(field).annotate(count=Count("pk")): (status, count) rows."""

    def __init__(self, model):
        self.model = model
        self.asked = []

    def order_by(self, *fields):
        self.asked.append(("order_by", fields))
        return self

    def values_list(self, *fields):
        self.asked.append(("values_list", fields))
        return self

    def annotate(self, **kwargs):
        self.asked.append(("annotate", tuple(kwargs)))
        if self.model.error:
            raise self.model.error
        return list(self.model.rows.items())


class Model:
    def __init__(self, field, choices, rows):
        self.field_name, self.rows, self.error = field, rows, None
        status = types.SimpleNamespace(attname=field, flatchoices=[(c, c.title()) for c in choices])

        def get_field(name):
            if name != field:
                raise LookupError(f"{name} is no field of this model")
            return status

        self._meta = types.SimpleNamespace(get_field=get_field)
        self.objects = QuerySet(self)


class Registry:
    def __init__(self):
        self.models = {
            "quests.Quest": Model("status", ["open", "in_progress", "completed"], {"open": 3, "completed": 2}),
            "applications.Application": Model(
                "status", ["pending", "approved", "rejected"], {"approved": 4, "withdrawn": 1, None: 2}
            ),
            "quests.QuestParticipant": Model("state", ["joined", "left"], {}),
        }

    def get_model(self, label):
        if label not in self.models:
            raise LookupError(f"App '{label.split('.')[0]}' doesn't have a model at /srv/app password={SECRET}")
        return self.models[label]


@pytest.fixture
def app(monkeypatch, tmp_path):
    database, registry = Database(), Registry()
    stub_django(
        monkeypatch,
        database,
        registry,
        {"JsonResponse": JsonResponse, "HttpResponse": HttpResponse},
        **{"django.db.models": {"Count": lambda field: ("Count", field)}},
    )
    config_path = tmp_path / "health.json"
    monkeypatch.setitem(
        sys.modules, "peerquest_health.deployed", stub_module("peerquest_health.deployed", CONFIG_PATH=str(config_path))
    )
    conf = {
        "token": TOKEN,
        "open": False,
        "integrity_state_file": str(tmp_path / "result.json"),
        "integrity_max_age_seconds": 3600,
        "integrity_required": False,
        "log_dir": str(tmp_path),
        "min_free_disk_mb": 0,
        "models": {"quests": "quests.Quest"},
        # What the role renders from peerquest_health_metrics_models' defaults.
        "metrics": {
            "quests": {"model": "quests.Quest", "status_field": "status"},
            "applications": {"model": "applications.Application", "status_field": "status"},
            "quest_participants": {"model": "quests.QuestParticipant", "status_field": "state"},
        },
    }

    def write(**changes):
        conf.update(changes)
        config_path.write_text(json.dumps(conf))

    write()
    import peerquest_health.metrics as metrics

    return types.SimpleNamespace(metrics=metrics, write=write, conf=conf, db=database, registry=registry, tmp=tmp_path)


def scrape(app, headers=BEARER):
    response = app.metrics.metrics(Request(headers))
    return response.status_code, response.headers["Content-Type"], response.content.decode()


def parse(text):
    """{name: {labels text: value}}; every line must be HELP, TYPE or a sample."""
    found, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind == "gauge"
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not text format 0.0.4: {line!r}"
        assert match.group(1) in typed, f"{match.group(1)} has no TYPE line before it"
        found.setdefault(match.group(1), {})[match.group(2) or ""] = float(match.group(3))
    return found


# ------------------------------------------------------------- who gets in


@pytest.mark.parametrize(
    "settings, headers, expected",
    [
        ({}, {}, 401),
        ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, 401),
        ({}, BEARER, 200),
        ({}, {"X-Health-Token": TOKEN}, 200),
        ({"token": "", "open": False}, BEARER, 401),
        ({"token": "", "open": True}, {}, 200),
    ],
)
def test_the_same_token_as_health(app, settings, headers, expected):
    app.write(**settings)
    status, content_type, body = scrape(app, headers)
    assert status == expected, body
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    if expected == 401:
        assert "peerquest_" not in body


# ------------------------------------------------------------ what it says


def test_counts_by_status_every_choice_and_other(app):
    status, _, body = scrape(app)
    assert status == 200
    found = parse(body)
    assert found["peerquest_quests"] == {
        '{status="open"}': 3,
        '{status="in_progress"}': 0,
        '{status="completed"}': 2,
        '{status="other"}': 0,
    }
    # Values outside the choices (and NULL) are "other": the labels stay bounded.
    assert found["peerquest_applications"] == {
        '{status="pending"}': 0,
        '{status="approved"}': 4,
        '{status="rejected"}': 0,
        '{status="other"}': 3,
    }
    # Another field name, no rows yet: every choice is there with 0.
    assert found["peerquest_quest_participants"] == {
        '{status="joined"}': 0,
        '{status="left"}': 0,
        '{status="other"}': 0,
    }
    assert found["peerquest_database_up"] == {"": 1}
    # One GROUP BY per model, without the model's default ordering in it.
    asked = app.registry.models["quests.Quest"].objects.asked
    assert asked == [("order_by", ()), ("values_list", ("status",)), ("annotate", ("count",))]


def test_names_come_from_the_settings(app):
    app.write(metrics={"quests": {"model": "applications.Application", "status_field": "status"}})
    found = parse(scrape(app)[2])
    assert set(found) == {"peerquest_quests", "peerquest_database_up"}
    assert found["peerquest_quests"]['{status="approved"}'] == 4


def _leaks(text, app):
    return [word for word in (SECRET, str(app.tmp), "Error", "Traceback", "/srv/") if word in text]


def test_database_down_says_0_and_nothing_else(app, caplog):
    app.db.error = RuntimeError(f"could not connect to {app.tmp}/db password={SECRET}")
    with caplog.at_level(logging.WARNING, logger="peerquest_health"):
        status, _, body = scrape(app)
    assert status == 200 and parse(body) == {"peerquest_database_up": {"": 0}}
    assert not _leaks(body, app), body
    logged = [r.getMessage() for r in caplog.records if r.name == "peerquest_health"]
    assert any("metrics database failed" in line for line in logged) and not any(SECRET in x for x in logged)


def test_a_broken_entry_leaves_the_others(app, caplog):
    app.write(metrics=dict(app.conf["metrics"], missing={"model": "nowhere.Gone", "status_field": "status"}))
    app.registry.models["quests.Quest"].error = RuntimeError(f"no such table at {app.tmp} token={SECRET}")
    with caplog.at_level(logging.WARNING, logger="peerquest_health"):
        status, _, body = scrape(app)
    found = parse(body)
    assert status == 200 and set(found) == {
        "peerquest_applications",
        "peerquest_quest_participants",
        "peerquest_database_up",
    }
    assert not _leaks(body, app), body
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "metrics missing failed" in logged and "metrics quests failed" in logged and SECRET not in logged


def test_unreadable_settings_give_503_and_no_figures(app):
    (app.tmp / "health.json").write_text("{")
    status, _, body = scrape(app)
    assert status == 503 and "peerquest_" not in body
    assert not _leaks(body, app) and "Expecting" not in body, body


def test_it_is_routed_at_health_metrics():
    text = (ROLES / "peerquest_health" / "files" / "peerquest_health" / "urls.py").read_text()
    assert 'path("health/metrics/", metrics.metrics, name="health_metrics")' in text


# ------------------------------------------------------ the settings check


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({"Quests": {"model": "quests.Quest", "status_field": "status"}}, "metrics.Quests: the name must be"),
        ({"quests": {"model": "Quest", "status_field": "status"}}, "metrics.quests.model must be"),
        ({"quests": {"model": "quests.Quest", "status_field": "st-atus"}}, "metrics.quests.status_field must be"),
        ({"quests": {"model": "quests.Quest"}}, "metrics.quests must be {model, status_field}"),
    ],
)
def test_settings_check_refuses(app, entry, problem):
    from peerquest_health import config

    found = config.problems(dict(app.conf, metrics=entry))
    assert any(problem in text for text in found), found
    assert config.problems(app.conf) == []
    assert config.problems({k: v for k, v in app.conf.items() if k != "metrics"}) == []


# --------------------------------------------- the request line middleware


@pytest.fixture
def middleware(monkeypatch):
    monkeypatch.syspath_prepend(str(ROLES / "peerquest_health" / "files"))
    for name in [m for m in sys.modules if m.split(".")[0] == "peerquest_health"]:
        monkeypatch.delitem(sys.modules, name)
    from peerquest_health import middleware

    return middleware


def _request(path="/quests/4711/", method="GET", match=None):
    return types.SimpleNamespace(path=path, method=method, resolver_match=match)


@pytest.mark.parametrize(
    "match, method, view, shown_method",
    [
        (types.SimpleNamespace(url_name="detail", view_name="quests:detail", route="quests/<int:pk>/"), "get",
         "quests:detail", "GET"),
        (types.SimpleNamespace(url_name=None, view_name="quests.views.detail", route="quests/<int:pk>/"), "PATCH",
         "quests/<int:pk>/", "PATCH"),
        (types.SimpleNamespace(url_name=None, view_name="x", route=r"^q/(?P<pk>\d+)/$ x\"y"), "BREW",
         "_q/_", "OTHER"),
        (None, "DELETE", "unmatched", "DELETE"),
        (types.SimpleNamespace(url_name="n" * 300, view_name="n" * 300, route=""), "GET", "n" * 100, "GET"),
    ],
)  # fmt: skip
def test_one_bounded_line_per_response(middleware, caplog, match, method, view, shown_method):
    response = types.SimpleNamespace(status_code=201)
    with caplog.at_level(logging.INFO, logger="peerquest_health.requests"):
        got = middleware.RequestMetricsMiddleware(lambda request: response)(_request(method=method, match=match))
    assert got is response
    (line,) = [r.getMessage() for r in caplog.records if r.name == "peerquest_health.requests"]
    fields = dict(word.split("=", 1) for word in line.split()[1:])
    assert line.startswith("request ") and set(fields) == {"view", "method", "status", "duration"}
    assert fields["view"].startswith(view) and fields["method"] == shown_method and fields["status"] == "201"
    assert re.fullmatch(r"[A-Za-z0-9_.:/<>-]{1,100}", fields["view"]) and "4711" not in line
    assert float(fields["duration"]) > 0


def test_a_failing_log_never_costs_the_response(middleware, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(middleware.logger, "info", broken)
    response = types.SimpleNamespace(status_code=200)
    assert middleware.RequestMetricsMiddleware(lambda request: response)(_request()) is response
