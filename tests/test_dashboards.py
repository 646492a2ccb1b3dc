"""The dashboards of peerquest_dashboards: every metric the monitoring plan recommends has a panel in both,
and the installed query list is exactly the queries the two dashboards run.

The console page is a Go template Prometheus renders: its queries are the `query "..."` of its tables and the
`expr: [...]` of its graphs, per `<section class="pq-panel" data-panel="...">`. The Grafana dashboard's are
the targets' `expr` per panel.
"""

import html
import json
import re

import jinja2
import pytest
import yaml
from conftest import ROLES

ROLE = ROLES / "peerquest_dashboards"
FILES = ROLE / "files"
CONSOLE = FILES / "consoles" / "peerquest.html"
GRAFANA = FILES / "grafana" / "peerquest.json"
QUERIES = FILES / "dashboard-queries.json"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

# The plan's "Recommended dashboard metrics", each with a metric or recording rule (the shared contract's
# names) its panel must query.
PLAN_METRICS = {
    "Service uptime percentage": "peerquest:service_up:ratio1d",
    "Database connection status": "peerquest_database_up",
    "API endpoint response times": "peerquest:http_request_duration_seconds:p95_5m",
    "Error rate trends": "peerquest:http_errors:ratio_rate5m",
    "Last audit check timestamp": "peerquest_integrity_last_audit_timestamp_seconds",
    "Issues detected/resolved count": "peerquest_integrity_issues",
    "Data consistency score": "peerquest_integrity_issues",
    "Transaction success rate": "peerquest_log_events_total",
    "Quest creation rate": "peerquest:quests_created:rate1h",
    "Application approval rate": "peerquest:approval_failure:ratio1h",
    "User engagement metrics": "peerquest_quest_participants",
    "Feature usage statistics": "peerquest_http_requests_total",
}

SECTION = re.compile(r'<section class="pq-panel"[^>]*data-panel="([^"]+)"[^>]*>(.*?)</section>', re.S)
GO_QUERY = re.compile(r'\bquery "((?:[^"\\]|\\.)*)"')
GRAPH_EXPR = re.compile(r"^\s*expr: (\[.*\]),$", re.M)


def console_queries(text):
    """{panel: (table queries, graph queries)} of the console page."""
    panels = {}
    for title, body in SECTION.findall(text):
        tables = [json.loads(f'"{q}"') for q in GO_QUERY.findall(body)]
        graphs = [q for found in GRAPH_EXPR.findall(body) for q in json.loads(found)]
        panels[html.unescape(title)] = (tables, graphs)
    return panels


def grafana_queries(dashboard):
    """{panel title: [expr, ...]} of the Grafana dashboard (rows excluded)."""
    panels = {}
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            if inner.get("type") != "row":
                panels[inner["title"]] = [t["expr"] for t in inner.get("targets", [])]
    return panels


@pytest.fixture(scope="module")
def console():
    return console_queries(CONSOLE.read_text())


@pytest.fixture(scope="module")
def grafana():
    return json.loads(GRAFANA.read_text())


def test_every_plan_metric_has_a_console_panel(console):
    assert set(console) == set(PLAN_METRICS)
    for title, metric in PLAN_METRICS.items():
        tables, graphs = console[title]
        assert any(metric in q for q in tables), f"{title}: no table queries {metric}"
        # The graph draws what the table shows.
        assert tables == graphs, f"{title}: table and graph queries differ"


def test_every_plan_metric_has_a_grafana_panel(grafana):
    panels = grafana_queries(grafana)
    assert set(panels) == set(PLAN_METRICS)
    for title, metric in PLAN_METRICS.items():
        assert any(metric in q for q in panels[title]), f"{title}: no target queries {metric}"


def test_both_dashboards_show_the_same_queries(console, grafana):
    assert {title: tables for title, (tables, _g) in console.items()} == grafana_queries(grafana)


def test_the_query_list_is_what_the_dashboards_run(console, grafana):
    listed = json.loads(QUERIES.read_text())
    assert all(set(entry) == {"dashboard", "panel", "expr"} for entry in listed)
    found = [("console", title, q) for title, (tables, _g) in console.items() for q in tables]
    found += [("grafana", title, q) for title, exprs in grafana_queries(grafana).items() for q in exprs]
    assert sorted((e["dashboard"], e["panel"], e["expr"]) for e in listed) == sorted(set(found))


def test_the_queries_are_plain_promql():
    """The host test runs each listed query against Prometheus as it is: no Grafana macros or variables."""
    for entry in json.loads(QUERIES.read_text()):
        assert "$" not in entry["expr"] and "[[" not in entry["expr"], entry
        assert entry["expr"].count("(") == entry["expr"].count(")"), entry


def test_grafana_dashboard_is_valid(grafana):
    assert 36 <= grafana["schemaVersion"] <= 39
    assert grafana["uid"] and grafana["title"]
    [variable] = [v for v in grafana["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    ids = [p["id"] for p in grafana["panels"]]
    assert len(ids) == len(set(ids))
    for panel in grafana["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${" + variable["name"] + "}"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)) and all(t["datasource"] == panel["datasource"] for t in panel["targets"])


def test_the_console_page_uses_only_what_prom_lib_defines():
    defined = set(re.findall(r'\{\{\s*define "([^"]+)"', (FILES / "console_libraries" / "prom.lib").read_text()))
    used = set(re.findall(r'\{\{\s*template "([^"]+)"', CONSOLE.read_text()))
    assert used and used <= defined, used - defined


def test_the_console_page_links_the_runbook():
    runbook = yaml.safe_load((ROLES / "peerquest_runbook" / "vars" / "main.yml").read_text())
    assert f'href="{runbook["_peerquest_runbook_file_name"]}"' in CONSOLE.read_text()


def _render_provisioning(**values):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text: "# " + text
    env.filters["to_json"] = json.dumps
    return yaml.safe_load(
        env.get_template("grafana-provisioning.yaml.j2").render({**DEFAULTS, "ansible_managed": "managed", **values})
    )


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "peerquest_dashboards_grafana_dashboards_dir": "/srv/grafana/pq dash",
            "peerquest_dashboards_grafana_folder": "Ops: PQ",
        },
    ],
)
def test_grafana_provisioning_points_at_the_dashboards_dir(values):
    doc = _render_provisioning(**values)
    [provider] = doc["providers"]
    expected = {**DEFAULTS, **values}
    assert provider["type"] == "file" and doc["apiVersion"] == 1
    assert provider["options"]["path"] == expected["peerquest_dashboards_grafana_dashboards_dir"]
    assert provider["folder"] == expected["peerquest_dashboards_grafana_folder"]
