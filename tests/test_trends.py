"""peerquest-trends (peerquest_ops.trends) against a stand-in Prometheus, and the role's files.

The stand-in answers /api/v1/query, /api/v1/query_range and /api/v1/rules the way Prometheus 2.42 does;
reports go to an aiosmtpd relay on loopback. The SMTP password lives in the settings file only: never on
a command line the role writes, never in the command's output.
"""

import email
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler

import jinja2
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import ROLES, package_command, send_json, serve_http
from peerquest_ops.core import config as core_config
from peerquest_ops.trends import cli, sections, svg

ROLE = ROLES / "peerquest_trends"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
PASSWORD = "s3cret-smtp-Passw0rd"
END = 1_751_450_400.0  # 2025-07-02 10:00 UTC
SECTION_TITLES = ["System health", "Performance trend", "User activity", "Alerts fired"]


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers every query with one series per instance; ALERTS with two firings of one alert and Watchdog."""

    queries = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        type(self).queries.append((url.path, params))
        expr = params.get("query", "")
        if url.path == "/api/v1/rules":
            rules = [
                {"type": "alerting", "name": "PeerQuestServiceDown", "query": "probe_success == 0", "labels": {}},
                {"type": "alerting", "name": "PeerQuestUptimeLow", "query": "avg_over_time(...) < 0.995", "labels": {}},
            ]
            return send_json(self, 200, {"status": "success", "data": {"groups": [{"name": "g", "rules": rules}]}})
        if url.path == "/api/v1/query_range":
            start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
            if expr.startswith("ALERTS"):
                result = [
                    # Fired twice: two runs of samples with a gap between them.
                    self._series(
                        {"alertname": "PeerQuestServiceDown", "severity": "CRITICAL", "instance": "app2"},
                        [start + step * i for i in (1, 2, 3, 10, 11)],
                    ),
                    self._series({"alertname": "Watchdog", "severity": "INFO"}, _steps(start, end, step)),
                ]
            else:
                times = _steps(start, end, step)
                result = [
                    self._series({"instance": "app1", "job": "x"}, times, lambda i: 0.2 + 0.01 * i),
                    self._series({"instance": "app2", "job": "x"}, times, lambda i: "NaN" if i == 3 else 0.3),
                ]
            return send_json(self, 200, {"status": "success", "data": {"resultType": "matrix", "result": result}})
        if url.path == "/api/v1/query":
            labels = [{"instance": "app1", "status": "open", "view": "quest_list", "event": "approval_succeeded"}]
            labels.append(
                {"instance": "app2", "status": "completed", "view": "quest_detail", "event": "approval_failed"}
            )
            result = [{"metric": m, "value": [END, "42"]} for m in labels]
            return send_json(self, 200, {"status": "success", "data": {"resultType": "vector", "result": result}})
        return send_json(self, 404, {"status": "error", "error": "not found"})

    @staticmethod
    def _series(metric, times, value=lambda i: 1):
        return {"metric": metric, "values": [[t, str(value(i))] for i, t in enumerate(times)]}


def _steps(start, end, step):
    return [start + step * i for i in range(int((end - start) // step) + 1)]


class Capture:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


def _auth(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"reports" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture(scope="module")
def prometheus():
    server, url = serve_http(FakePrometheus)
    yield url
    server.shutdown()
    server.server_close()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def relay():
    capture = Capture()
    controller = Controller(
        capture,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=_auth,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, capture
    controller.stop()


def settings(tmp_path, url, smtp_port=None, **overrides):
    data = {
        "prometheus_url": url,
        "timeout": 5,
        "reports_dir": str(tmp_path / "reports"),
        "retention_days": 30,
        "name": "PeerQuest",
        "links": [{"text": "Dashboard", "url": "http://mon1:9090/consoles/peerquest.html"}],
        "email": {
            "enabled": smtp_port is not None,
            "from": "reports@example.com",
            "recipients": ["ops@example.com", "lead@example.com"],
            "subject": "[INFO] {title}",
            "allow_insecure_transport": True,
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp_port or 25,
                "starttls": False,
                "ssl": False,
                "user": "reports",
                "password": PASSWORD,
                "ca_file": "",
            },
        },
    }
    data.update(overrides)
    path = tmp_path / "trends.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(autouse=True)
def _forget_secrets():
    FakePrometheus.queries.clear()
    yield
    core_config.forget()


def _report(tmp_path):
    [path] = (tmp_path / "reports").iterdir()
    return path.read_text()


def _svgs(text):
    return re.findall(r"<svg\b.*?</svg>", text, re.S)


def test_daily_report_has_every_section_with_charts_and_is_mailed(tmp_path, prometheus, relay, capsys):
    controller, capture = relay
    config = settings(tmp_path, prometheus, controller.port)
    assert cli.main(["--config", str(config), "daily", "--end", str(END)]) == 0
    page = _report(tmp_path)
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in page, title
    assert "Alert threshold review" not in page
    charts = _svgs(page)
    assert len(charts) >= 5
    for chart in charts:
        ET.fromstring(chart)  # well-formed XML, as mail clients need it
    assert "<polyline" in page
    # The alert that fired twice, with its instance; Watchdog reported apart.
    row = re.search(r"<tr><td>PeerQuestServiceDown</td>.*?</tr>", page).group(0)
    assert "<td>CRITICAL</td><td>2</td>" in row and "app2" in row
    assert "Watchdog (the dead-man&#x27;s switch) fired 100 %" in page
    # The alerts came from ALERTS over the whole day, one query_range.
    ranges = [q for p, q in FakePrometheus.queries if p == "/api/v1/query_range" and q["query"].startswith("ALERTS")]
    assert {q["query"] for q in ranges} == {"ALERTS{alertstate='firing'}"}
    assert float(ranges[-1]["end"]) - float(ranges[-1]["start"]) == 86400
    [(rcpts, raw)] = capture.messages
    assert sorted(rcpts) == ["lead@example.com", "ops@example.com"]
    msg = email.message_from_bytes(raw)
    assert msg["Subject"] == "[INFO] PeerQuest daily report, 2025-07-02"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()}
    assert "System health" in parts["text/plain"] and "<svg" not in parts["text/plain"]
    assert "<svg" in parts["text/html"] and "Alerts fired" in parts["text/html"]
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err


def test_weekly_report_reviews_each_alert_s_threshold(tmp_path, prometheus):
    config = settings(tmp_path, prometheus)
    assert cli.main(["--config", str(config), "weekly", "--end", str(END)]) == 0
    page = _report(tmp_path)
    for title in [*SECTION_TITLES, "Alert threshold review"]:
        assert f">{title}</h2>" in page, title
    assert re.search(r"<td>PeerQuestUptimeLow</td><td>0</td><td>did not fire", page)
    assert re.search(r"<td>PeerQuestServiceDown</td><td>2</td><td>fired a few times", page)
    # Over a week: the alerts in 5-minute steps, the charts in 6-hour steps.
    ranges = [q for p, q in FakePrometheus.queries if p == "/api/v1/query_range"]
    assert {float(q["end"]) - float(q["start"]) for q in ranges} == {7 * 86400}
    assert {q["step"] for q in ranges if q["query"].startswith("ALERTS")} == {"300"}
    assert {q["step"] for q in ranges if not q["query"].startswith("ALERTS")} == {"21600"}


def test_prometheus_down_still_keeps_a_report_that_says_so(tmp_path, capsys):
    config = settings(tmp_path, "http://127.0.0.1:9")
    assert cli.main(["--config", str(config), "daily", "--end", str(END)]) == 1
    page = _report(tmp_path)
    assert "query failed" in page and "no answer from Prometheus" in page
    assert "query failed" in capsys.readouterr().err


def test_old_reports_are_pruned(tmp_path, prometheus):
    config = settings(tmp_path, prometheus, retention_days=2)
    reports = tmp_path / "reports"
    reports.mkdir()
    old = reports / "peerquest-daily-20250601T0600Z.html"
    other = reports / "notes.html"
    for path in (old, other):
        path.write_text("x")
        os.utime(path, (time.time() - 3 * 86400,) * 2)
    assert cli.main(["--config", str(config), "daily", "--end", str(END)]) == 0
    assert not old.exists() and other.exists()
    assert len(list(reports.glob("peerquest-daily-*.html"))) == 1


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"prometheus_url": "127.0.0.1:9090"}, "prometheus_url: must start with http"),
        ({"reports_dir": "reports"}, "reports_dir: must be an absolute path"),
        ({"email": {"enabled": True, "recipients": []}}, "email.recipients: a non-empty list"),
    ],
)
def test_bad_settings_are_refused(tmp_path, change, expected, capsys):
    config = settings(tmp_path, "http://127.0.0.1:9090", **change)
    assert cli.main(["--config", str(config), "check-config"]) == 2
    assert expected in capsys.readouterr().err


def test_a_clear_text_login_needs_the_explicit_allowance(tmp_path, capsys):
    config = settings(tmp_path, "http://127.0.0.1:9090", smtp_port=2525)
    data = json.loads(config.read_text())
    data["email"]["allow_insecure_transport"] = False
    config.write_text(json.dumps(data))
    assert cli.main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "password in clear" in err and PASSWORD not in err


def test_the_command_runs_as_deployed(tmp_path, prometheus):
    """python3 -I with only the package on the path, the way the entry file runs it."""
    config = settings(tmp_path, prometheus)
    done = subprocess.run(
        [*package_command("peerquest_ops.trends.cli"), "--config", str(config), "weekly", "--no-email"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote " in done.stdout


def test_sparkline_breaks_at_gaps_and_escapes_names():
    chart = svg.sparkline([("<b>", [(0, 1.0), (1, None), (2, 3.0), (3, 4.0)])], title='a "title"')
    root = ET.fromstring(chart)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 1 and len(root.findall(f"{ns}circle")) == 1
    assert "&lt;b&gt;" in chart
    assert "no data" in svg.sparkline([("x", [(0, None)])])
    ET.fromstring(svg.bars([("view & co", 3.0), ("other", 0.0)]))


def test_episodes_count_separate_firings():
    assert sections.episodes([(0, 1), (60, 1), (120, 1), (600, 1), (660, 1)], 60) == (2, 300)
    assert sections.episodes([], 60) == (0, 0)


# ---------------------------------------------------------------- the role's files


def _env():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["comment"] = lambda text: "# " + text
    env.filters["quote"] = lambda text: "'" + str(text).replace("'", "'\"'\"'") + "'"
    env.filters["to_json"] = json.dumps
    env.filters["to_nice_json"] = lambda value, indent=2: json.dumps(value, indent=indent, sort_keys=True)
    env.filters["bool"] = bool
    env.filters["int"] = int
    return env


def render(name, **values):
    smtp = {
        "enabled": True,
        "from": "reports@example.org",
        "smtp_host": "smtp.example.org",
        "smtp_port": 465,
        "starttls": False,
        "ssl": True,
        "user": "reports",
        "password": PASSWORD,
        "ca_file": "/etc/ssl/site-ca.pem",
        "recipients": {"CRITICAL": ["oncall@example.org"], "WARNING": [], "INFO": ["daily@example.org"]},
        "timeout": 10,
        "allow_insecure_transport": False,
    }
    context = {
        **{k: v for k, v in DEFAULTS.items() if "{{" not in str(v)},
        "ansible_managed": "managed",
        "peerquest_app_ops_python_dir": "/opt/ops/python",
        "peerquest_trends_config_path": "/etc/ops/trends.json",
        "peerquest_trends_prometheus_url": "http://127.0.0.1:9590",
        "_peerquest_trends_program": "/usr/local/lib/ops/peerquest-trends.py",
        "_peerquest_trends_smtp": smtp,
        "peerquest_trends__dependent_smtp": smtp,
        "peerquest_trends_email_enabled": True,
        "peerquest_trends_recipients": smtp["recipients"]["INFO"],
        **values,
    }
    return _env().get_template(name).render(context)


def test_the_settings_carry_the_smtp_relay_and_the_info_recipients(tmp_path):
    data = json.loads(render("trends.json.j2"))
    assert data["email"]["smtp"] == {
        "host": "smtp.example.org",
        "port": 465,
        "starttls": False,
        "ssl": True,
        "user": "reports",
        "password": PASSWORD,
        "ca_file": "/etc/ssl/site-ca.pem",
    }
    assert data["email"]["recipients"] == ["daily@example.org"]
    # What the role writes passes the program's own check.
    path = tmp_path / "trends.json"
    path.write_text(json.dumps(data))
    assert cli.load_settings(str(path))["prometheus_url"] == "http://127.0.0.1:9590"


def test_the_password_is_never_on_a_command_line():
    cron = render(
        "peerquest-trends.cron.j2",
        peerquest_trends_daily_schedule="5 7 * * *",
        peerquest_trends_weekly_schedule="0 8 * * 0",
    )
    wrapper = render("peerquest-trends.sh.j2")
    for text in (cron, wrapper):
        assert PASSWORD not in text and "password" not in text.lower().replace("the smtp password stays", "")
    assert "--config '/etc/ops/trends.json'" in wrapper
    lines = [line for line in cron.splitlines() if line and not line.startswith(("#", "SHELL", "PATH", "MAILTO"))]
    assert [line.split()[:6] for line in lines] == [
        ["5", "7", "*", "*", "*", DEFAULTS["peerquest_trends_user"]],
        ["0", "8", "*", "*", "0", DEFAULTS["peerquest_trends_user"]],
    ]
    assert lines[0].split()[7] == "daily" and lines[1].split()[7] == "weekly"
    # The program takes no secret as an argument at all.
    with pytest.raises(SystemExit):
        cli.main(["--config", "/dev/null", "daily", "--smtp-password", PASSWORD])


def test_the_settings_task_hides_its_arguments():
    tasks = yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text())
    [block] = [t for t in tasks if "block" in t]
    [write] = block["block"]
    assert write["ansible.builtin.template"]["mode"] == "0640" and write["no_log"] is True
