"""The runbook (templates/runbook.html.j2 through roles/peerquest_runbook) lists what the inventory says.

Rendered with values that differ from every default: each schedule, threshold, channel and log path must
appear, each alert must have its section anchored by its name lowercased, and the page must hold no "{{"
(Prometheus reads console pages as Go templates). One test runs the role itself with ansible-playbook.
"""

import html.parser
import json
import os
import re

import jinja2
import pytest
import yaml
from conftest import ROLES, ROOT, local_playbook, run

ROLE = ROLES / "peerquest_runbook"
TEMPLATE = ROOT / "templates" / "runbook.html.j2"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
CONSOLE = ROLES / "peerquest_dashboards" / "files" / "consoles" / "peerquest.html"

ALERTS = [
    {
        "alert": "PeerQuestServiceDown",
        "expr": 'min by (instance) (probe_success{job="blackbox_quick"}) == 0',
        "for": "7m",
        "labels": {"severity": "CRITICAL", "key": "availability"},
        "annotations": {"summary": "The service is unavailable", "description": "Failing for {{ $value }}."},
    },
    {
        "alert": "PeerQuestApprovalFailureRate",
        "expr": "peerquest:approval_failure:ratio1h > 0.07",
        "for": "11m",
        "labels": {"severity": "WARNING", "key": "approval_failure"},
        "annotations": {"summary": "Approval failures above 7 %", "description": "More than 7 %."},
    },
    {
        "alert": "Watchdog",
        "expr": "vector(1)",
        "for": "0s",
        "labels": {"severity": "INFO", "key": "watchdog"},
        "annotations": {"summary": "Alive", "description": "Always firing."},
    },
]
MONITORS = {
    "jobs": {
        "errors": {"every": "15m", "command": "/opt/site/bin/pq-monitor errors"},
        "integrity": {"every": "1h", "command": "/opt/site/bin/pq-monitor integrity", "integrity": True},
        "digest": {"every": "1d", "command": "/opt/site/bin/pq-monitor digest"},
        "selfcheck": {"every": "1w", "command": "/opt/site/bin/pq-monitor selfcheck"},
        "review": {"every": "1mo", "command": "/opt/site/bin/pq-monitor review", "state": "absent"},
    },
    "daily_hour": 4,
    "weekly_day": 3,
    "window_minutes": 45,
    "error_patterns": [
        {
            "name": "rollback",
            "label": "Transaction rolled back",
            "regex": "rolled back",
            "severity": "CRITICAL",
            "threshold": 2,
        },
    ],
    "rates": [
        {
            "name": "approval",
            "label": "Application approval",
            "max_percent": 7,
            "min_events": 33,
            "severity": "WARNING",
        },
    ],
    "error_rate_increase_percent": 65,
    "error_rate_min_events": 9,
    "degradation_percent": 250,
    "slow_seconds": 3,
    "slow_threshold": 17,
    "db_error_threshold": 4,
    "db_error_window_seconds": 180,
    "health_timeout": 8,
    "security_events": [{"name": "failed_login", "threshold": 6, "window": 20, "severity": "WARNING"}],
    "security_logs": ["/srv/pqlogs/site-audit.log"],
    "log_file": "/srv/pqmon/monitor-output.log",
    "app_log": "/srv/pqlogs/site-app.log",
    "critical_log": "/srv/pqlogs/site-critical.log",
    "db_error_log": "/srv/pqlogs/site-warnings.log",
}
CHANNELS = {
    "routes": {"CRITICAL": ["email", "discord"], "WARNING": ["slack"], "INFO": ["webhook"]},
    "recipients": {"CRITICAL": ["pager@site.example"], "WARNING": [], "INFO": []},
    "log_file": "/srv/pqmon/monitor-output.log",
}
LOG_FILES = [
    {"path": "/srv/pqlogs/site-app.log", "level": "INFO", "handler": "file"},
    {"path": "/srv/pqlogs/site-errors.log", "level": "ERROR", "handler": "error_file"},
]
VALUES = {
    "peerquest_runbook_environment": "staging-eu",
    "peerquest_runbook_base_url": "https://mon.site.example/consoles/peerquest-runbook.html",
    "peerquest_runbook_dashboard_url": "peerquest.html",
    "peerquest_runbook_alerts": ALERTS,
    "peerquest_runbook__dependent_evaluation_interval": "30s",
    "peerquest_runbook__dependent_monitors": MONITORS,
    "peerquest_runbook__dependent_channels": CHANNELS,
    "peerquest_runbook__dependent_log_files": LOG_FILES,
}


def render(**values):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)), undefined=jinja2.StrictUndefined, trim_blocks=True
    )
    env.filters["dirname"] = os.path.dirname
    return env.get_template(TEMPLATE.name).render({**VALUES, **values})


class Sections(html.parser.HTMLParser):
    """id -> text of each element with an id (nested ids each get their own text)."""

    def __init__(self):
        super().__init__()
        self.open, self.text, self.hrefs = [], {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        self.open.append(attrs.get("id"))
        if attrs.get("id"):
            self.text.setdefault(attrs["id"], "")

    def handle_endtag(self, tag):
        if self.open:
            self.open.pop()

    def handle_data(self, data):
        for ident in filter(None, self.open):
            self.text[ident] += data


def parse(page):
    parser = Sections()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def page():
    return render()


def test_no_go_template_braces(page):
    # The description's Prometheus template and the expression's label braces are shown, not executed.
    assert "{{" not in page and "}}" not in page
    assert "&#123;&#123; $value &#125;&#125;" in page


def test_each_alert_has_its_section(page):
    found = parse(page).text
    for alert in ALERTS:
        section = found[alert["alert"].lower()]
        assert alert["annotations"]["summary"] in section
        assert f"fires after {alert['for']}" in section and "every 30s" in section
    down = found["peerquestservicedown"]
    assert "email (pager@site.example), discord" in down
    assert "/srv/pqlogs/site-app.log" in down and "/srv/pqmon/monitor-output.log" in down
    assert 'probe_success{job="blackbox_quick"}' in down
    assert "slack" in found["peerquestapprovalfailurerate"] and "webhook" in found["watchdog"]


def test_every_schedule_threshold_channel_and_log_appears(page):
    found = parse(page).text
    assert "every 15 minutes" in found["job-errors"] and "/opt/site/bin/pq-monitor errors" in found["job-errors"]
    assert "every hour" in found["job-integrity"] and "integrity host only" in found["job-integrity"]
    assert "daily at 04:xx" in found["job-digest"]
    assert "weekly on Wednesday at 04:xx" in found["job-selfcheck"]
    assert "job-review" not in found  # state absent
    thresholds = found["thresholds"]
    for text in (
        "45 minutes",
        "more than 2 matches of rolled back",
        "above 7 % (at least 33 events)",
        "65 % above its hourly baseline (at least 9 errors)",
        "250 % of its baseline",
        "more than 17 operations slower than 3 s",
        "more than 4 within 180 s",
        "within 8 s",
        "more than 6 in 20 minutes",
        "/srv/pqlogs/site-audit.log",
        "/srv/pqlogs/site-warnings.log",
    ):
        assert text in thresholds, text
    assert "email (pager@site.example), discord" in found["channels-critical"]
    assert "slack" in found["channels-warning"] and "webhook" in found["channels-info"]
    for path in ("/srv/pqlogs/site-app.log", "/srv/pqlogs/site-errors.log", "/srv/pqmon/monitor-output.log"):
        assert path in found["logs"], path
    assert "staging-eu" in page and VALUES["peerquest_runbook_base_url"] in page


def test_the_plan_s_troubleshooting_steps_are_there(page):
    found = parse(page).text
    for anchor, step in (
        ("logs-not-being-written", "Ensure disk space is available"),
        ("alerts-not-being-sent", "Test the alert scripts manually"),
        ("false-positive-alerts", "Check for temporary system load"),
        ("monitoring-overhead-too-high", "Use sampling for high-volume metrics"),
    ):
        assert step in found[anchor]
    assert "ls -l /srv/pqlogs" in found["logs-not-being-written"]


def test_every_link_lands_on_an_anchor(page):
    parsed = parse(page)
    console_ids = set(re.findall(r'<section class="pq-panel" id="([^"]+)"', CONSOLE.read_text()))
    for href in parsed.hrefs:
        if href.startswith("#"):
            assert href[1:] in parsed.text, href
        elif href.startswith("peerquest.html#"):
            assert href.split("#", 1)[1] in console_ids, href
    assert any(h.startswith("peerquest.html#") for h in parsed.hrefs)


def test_without_inputs_the_page_still_renders():
    page = render(
        peerquest_runbook_alerts=[],
        peerquest_runbook__dependent_monitors={},
        peerquest_runbook__dependent_channels={},
        peerquest_runbook__dependent_log_files=[],
        peerquest_runbook__dependent_evaluation_interval="",
    )
    assert "No alert rules were given" in page and "Troubleshooting" in page


def test_the_role_writes_the_page(tmp_path, ansible_env):
    """The role itself (preflight, argument specs, the template found from the role) on localhost."""
    consoles = tmp_path / "consoles"
    copy = tmp_path / "controller" / "runbook.html"
    copy.parent.mkdir()
    # Extra variables are templated by Ansible: no Prometheus template in them here.
    alerts = [dict(a, annotations=dict(a["annotations"], description="Failing.")) for a in ALERTS]
    values = {
        **VALUES,
        "peerquest_runbook_alerts": alerts,
        "peerquest_runbook_consoles_dir": str(consoles),
        "peerquest_runbook_controller_file": str(copy),
    }
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "peerquest_runbook"}],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "vars.json").write_text(json.dumps(values))
    done = run(
        local_playbook(tmp_path / "play.yml", f"@{tmp_path / 'vars.json'}"),
        env={**ansible_env, "ANSIBLE_ROLES_PATH": str(ROLES)},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = (consoles / "peerquest-runbook.html").read_text()
    assert written == copy.read_text()
    assert 'id="peerquestservicedown"' in written and "{{" not in written
    assert "every 15 minutes" in written and "/srv/pqlogs/site-errors.log" in written
