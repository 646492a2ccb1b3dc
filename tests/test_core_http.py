"""peerquest_ops.core.http: one policy for every command's HTTP requests, against loopback servers."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from peerquest_ops.core import http

SECRET_PATH = "/hook/path-secret-1234"
SECRET_QUERY = "key=query-secret-5678"


class Server:
    """Records each request; answers per path prefix with (status, headers, body)."""

    def __init__(self):
        self.requests = []
        self.answers = {}
        self.hang = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.path.startswith("/hang"):
                    server.hang.wait(5)
                    return
                status, headers, text = next(
                    (a for p, a in server.answers.items() if self.path.startswith(p)), (200, {}, "ok")
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def stop(self):
        self.hang.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def elsewhere():
    s = Server()
    yield s
    s.stop()


def test_redirects_are_returned_never_followed(server, elsewhere):
    server.answers["/hook"] = (302, {"Location": elsewhere.url("/collect")}, "moved")
    status, text = http.request(server.url(SECRET_PATH), method="POST", body={"a": 1}, token="tok-secret")
    assert (status, text) == (302, "moved")
    # Neither the token nor the payload reached the other host.
    assert elsewhere.requests == []
    assert http.status_text(status) == "HTTP 302 Found"


def test_token_host_header_json_body(server):
    status, text = http.request(
        server.url("/api"),
        method="POST",
        body={"a": 1},
        token="tok",
        host_header="questhub.internal",
        headers={"User-Agent": "peerquest-test"},
    )
    assert (status, text) == (200, "ok")
    [seen] = server.requests
    assert seen["headers"]["Authorization"] == "Bearer tok" and seen["headers"]["Host"] == "questhub.internal"
    assert seen["headers"]["Content-Type"] == "application/json" and json.loads(seen["body"]) == {"a": 1}
    assert seen["headers"]["User-Agent"] == "peerquest-test"
    http.request(server.url("/plain"))
    assert "Authorization" not in server.requests[1]["headers"] and server.requests[1]["method"] == "GET"


def test_error_statuses_are_answers(server):
    server.answers["/fail"] = (500, {}, "boom")
    assert http.request(server.url("/fail")) == (500, "boom")
    assert http.status_text(500) == "HTTP 500 Internal Server Error" and http.status_text(599) == "HTTP 599"


def test_network_failures_raise_without_the_secret(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}"
    with pytest.raises(http.HttpError) as refused:
        http.request(url, timeout=2)
    assert str(refused.value) == "Connection refused"
    with pytest.raises(http.HttpError, match="^timed out: no answer within "):
        http.request(server.url(f"/hang{SECRET_PATH}?{SECRET_QUERY}"), timeout=0.5)
    with pytest.raises(http.HttpError) as bad_port:
        http.request(f"http://127.0.0.1:notaport{SECRET_PATH}?{SECRET_QUERY}")
    # urllib quotes the whole URL here ("unknown url type: ..."): it must come out masked.
    with pytest.raises(http.HttpError, match="unknown url type") as no_scheme:
        http.request(f"hooks.test{SECRET_PATH}?{SECRET_QUERY}")
    for raised in (refused, bad_port, no_scheme):
        assert "secret" not in str(raised.value), raised.value
    assert http.masked(url) == f"http://127.0.0.1:{port}/..."


def test_a_timeout_is_always_set(server):
    for timeout in (0, None, -1):
        with pytest.raises(ValueError, match="timeout"):
            http.request(server.url("/x"), timeout=timeout)
    assert server.requests == []
