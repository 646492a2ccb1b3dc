"""The health probes follow core.http's policy: a redirect is an answer, never followed, so the
bearer token only reaches the URL the settings name."""

import http.server
import json

import pytest
from conftest import fake_alert_command, send_json, serve_http
from peerquest_ops.monitors import base, probes

TOKEN = "health-token-that-stays-home"


class Server:
    """A loopback server: answers from `routes` ({path: (status, headers, body)}), records what came in."""

    def __init__(self, routes):
        self.routes = routes
        self.seen = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's hook name
                outer.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = outer.routes.get(self.path, (404, {}, {}))
                send_json(self, status, body, headers)

            def log_message(self, *args):
                pass

        self.server, self.url = serve_http(Handler)


@pytest.fixture
def hosts(tmp_path):
    """The app (whose /health/ redirects elsewhere) and the other host it points to."""
    other = Server({"/health/": (200, {}, {"status": "healthy", "checks": {}})})
    app = Server({"/health/quick/": (200, {}, {"status": "OK"})})
    app.routes["/health/"] = (302, {"Location": f"{other.url}/health/"}, {})
    alert, sent = fake_alert_command(tmp_path)
    monitor = base.Monitor(
        {
            "state_dir": str(tmp_path),
            "alert_command": str(alert),
            "host": "app1",
            "health": {
                "quick_url": f"{app.url}/health/quick/",
                "full_url": f"{app.url}/health/",
                "token": TOKEN,
                "timeout": 3,
            },
        }
    )
    yield monitor, app, other, lambda: [json.loads(x) for x in sent.read_text().splitlines()]
    app.server.shutdown()
    other.server.shutdown()


def test_a_redirected_health_check_is_not_followed_and_the_token_stays_home(hosts):
    monitor, app, other, calls = hosts
    assert probes.run_health(monitor) == ["health_check"]
    assert other.seen == []  # neither the request nor the token reached the other host
    assert ("/health/", f"Bearer {TOKEN}") in app.seen
    assert ("/health/quick/", None) in app.seen  # the quick probe carries no token
    [call] = calls()
    assert call["argv"][:2] == ["--severity", "WARNING"]
    assert "did not answer as expected: HTTP 302 (a redirect; probes do not follow redirects)" in call["stdin"]


def test_a_redirected_quick_probe_counts_as_down(hosts):
    monitor, app, other, calls = hosts
    app.routes["/health/quick/"] = (301, {"Location": f"{other.url}/health/"}, {})
    assert probes.run_health(monitor, quick=True) == ["unavailable"]
    assert other.seen == []
    [call] = calls()
    assert call["argv"][:2] == ["--severity", "CRITICAL"] and "HTTP 301 (a redirect" in call["stdin"]
