#!/usr/bin/env python3
"""Capture host for PeerQuest alerting tests: a real SMTP server and an HTTP webhook receiver.

SMTP (aiosmtpd): every accepted message is stored as JSON in <data>/mail/.
When an SMTP user is configured, AUTH PLAIN/LOGIN is offered without TLS and
unauthenticated MAIL FROM is rejected with 530.

HTTP:
  POST /hook/<name>[/<rest>]                          store the request in <data>/hooks/<name>/
  POST /_control/fail?path=<name>&count=N&status=500  next N requests to that hook fail, nothing stored
  POST /_control/smtp?state=down|up                   stop/start only the SMTP listener
  POST /_control/reset                                delete all captures and failure switches
  GET  /_captured/mail, /_captured/hooks/<name>       JSON lists, oldest first
  GET  /_health                                       liveness

Configuration: environment PQ_SINK_SMTP_USER / PQ_SINK_SMTP_PASSWORD, otherwise
[smtp] user/password in the config file PQ_SINK_CONFIG (default /etc/pq-sink.conf).
PQ_SINK_DIR (default /var/lib/pq-sink), PQ_SINK_BIND (0.0.0.0),
PQ_SINK_SMTP_PORT (25) and PQ_SINK_HTTP_PORT (8025).
Only the standard library and aiosmtpd are used: test hosts have no PyPI access.
"""

import configparser
import datetime
import email.policy
import hmac
import itertools
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
import warnings
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("pq-sink")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def utc_now():
    return datetime.datetime.now(datetime.UTC).isoformat()


def load_credentials(config_path):
    user = os.environ.get("PQ_SINK_SMTP_USER")
    password = os.environ.get("PQ_SINK_SMTP_PASSWORD")
    if user is None and os.path.exists(config_path):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(config_path, encoding="utf-8")
        user = parser.get("smtp", "user", fallback=None)
        password = parser.get("smtp", "password", fallback=None)
    return (user or None), (password or "")


class Store:
    """JSON files named so that lexical order is arrival order."""

    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.seq = itertools.count()
        self.failures = {}  # hook name -> [remaining, status]
        os.makedirs(self.mail_dir, exist_ok=True)
        os.makedirs(self.hooks_dir, exist_ok=True)

    @property
    def mail_dir(self):
        return os.path.join(self.root, "mail")

    @property
    def hooks_dir(self):
        return os.path.join(self.root, "hooks")

    def save(self, directory, record):
        with self.lock:
            os.makedirs(directory, exist_ok=True)
            name = f"{time.time_ns():020d}-{next(self.seq):08d}.json"
            tmp = os.path.join(directory, "." + name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=2, sort_keys=True)
            # Readers never see a half-written capture.
            os.replace(tmp, os.path.join(directory, name))
            return name

    def load(self, directory):
        with self.lock:
            if not os.path.isdir(directory):
                return []
            records = []
            for name in sorted(n for n in os.listdir(directory) if n.endswith(".json")):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    records.append(json.load(handle))
            return records

    def reset(self):
        with self.lock:
            self.failures.clear()
            for directory in (self.mail_dir, self.hooks_dir):
                shutil.rmtree(directory, ignore_errors=True)
                os.makedirs(directory, exist_ok=True)

    def set_failure(self, name, count, status):
        with self.lock:
            if count > 0:
                self.failures[name] = [count, status]
            else:
                self.failures.pop(name, None)

    def take_failure(self, name):
        """Return the status to fail with, consuming one failure, or None."""
        with self.lock:
            entry = self.failures.get(name)
            if not entry:
                return None
            entry[0] -= 1
            if entry[0] <= 0:
                del self.failures[name]
            return entry[1]


class MailHandler:
    def __init__(self, store):
        self.store = store

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(msg.get("subject", "")),
            "body": message_text(msg),
            "headers": {key: str(value) for key, value in msg.items()},
            "received_at": utc_now(),
            "auth_user": session.auth_data if session.authenticated else None,
            "peer": str(session.peer[0]) if session.peer else None,
        }
        name = self.store.save(self.store.mail_dir, record)
        log.info(
            "mail %s from %s to %s stored as %s",
            record["subject"],
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            name,
        )
        return "250 2.0.0 Message captured"


def message_text(msg):
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is not None:
        # SMTP transports CRLF; tests compare against text written with \n.
        return part.get_content().replace("\r\n", "\n")
    payload = msg.get_payload(decode=True)
    return payload.decode("utf-8", "replace").replace("\r\n", "\n") if payload else ""


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        # Constant-time comparison even in a test sink; bytes so non-ASCII passwords work.
        ok = hmac.compare_digest(auth_data.login, user.encode()) and hmac.compare_digest(
            auth_data.password, password.encode()
        )
        log.info("AUTH %s for %r: %s", mechanism, login, "accepted" if ok else "rejected")
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    return authenticator


class RelaySMTP(SMTP):
    # AUTH LOGIN's prompts as Postfix and Exim send them; aiosmtpd's own ("User Name")
    # make Alertmanager's LOGIN client give up ("unexpected server challenge").
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class RelayController(Controller):
    def factory(self):
        return RelaySMTP(self.handler, **self.SMTP_kwargs)


class SmtpSwitch:
    """Owns the aiosmtpd controller so tests can take SMTP down while HTTP stays up."""

    def __init__(self, store, bind, port, user, password):
        self.lock = threading.Lock()
        self.kwargs = {"hostname": bind, "port": port, "server_hostname": "pq-sink"}
        if user:
            self.kwargs.update(
                authenticator=make_authenticator(user, password), auth_required=True, auth_require_tls=False
            )
        self.handler = MailHandler(store)
        self.controller = None

    @property
    def running(self):
        return self.controller is not None

    def start(self):
        with self.lock:
            if self.controller is None:
                controller = RelayController(self.handler, **self.kwargs)
                controller.start()
                self.controller = controller
                log.info("SMTP listening on %s:%s", self.kwargs["hostname"], self.kwargs["port"])

    def stop(self):
        with self.lock:
            if self.controller is not None:
                self.controller.stop()
                self.controller = None
                log.info("SMTP stopped")


class HookHandler(BaseHTTPRequestHandler):
    server_version = "pq-sink/1"
    store = None  # set in main()
    smtp = None

    def log_message(self, fmt, *args):
        log.info("http %s " + fmt, self.client_address[0], *args)

    def send_json(self, status, payload):
        data = json.dumps(payload, indent=2).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts == ["_health"]:
            self.send_json(200, {"status": "ok", "smtp": self.smtp.running})
        elif parts == ["_captured", "mail"]:
            self.send_json(200, self.store.load(self.store.mail_dir))
        elif parts == ["_captured", "hooks"]:
            names = sorted(os.listdir(self.store.hooks_dir)) if os.path.isdir(self.store.hooks_dir) else []
            self.send_json(200, names)
        elif len(parts) == 3 and parts[:2] == ["_captured", "hooks"] and NAME_RE.match(parts[2]):
            self.send_json(200, self.store.load(os.path.join(self.store.hooks_dir, parts[2])))
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        body = self.read_body()
        # /hook/<name>[/<token path>]: real webhook URLs carry their secret in the path.
        if len(parts) >= 2 and parts[0] == "hook" and NAME_RE.match(parts[1]):
            self.capture_hook(parts[1], body)
        elif parts == ["_control", "fail"]:
            self.control_fail(query)
        elif parts == ["_control", "reset"]:
            self.store.reset()
            self.send_json(200, {"reset": True})
        elif parts == ["_control", "smtp"] and query.get("state") in ("up", "down"):
            try:
                if query["state"] == "up":
                    self.smtp.start()
                else:
                    self.smtp.stop()
            except (OSError, RuntimeError) as exc:  # report instead of killing the HTTP side
                self.send_json(500, {"error": str(exc)})
                return
            self.send_json(200, {"smtp": self.smtp.running})
        else:
            self.send_json(404, {"error": "not found"})

    def capture_hook(self, name, body):
        status = self.store.take_failure(name)
        if status is not None:
            log.info("hook %s: injected failure %s", name, status)
            self.send_json(status, {"error": "injected failure"})
            return
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        record = {
            "path": self.path,
            "headers": {key: value for key, value in self.headers.items()},
            "body": parsed,
            "received_at": utc_now(),
        }
        stored = self.store.save(os.path.join(self.store.hooks_dir, name), record)
        self.send_json(200, {"stored": stored})

    def control_fail(self, query):
        # Accept the bare hook name or its full path.
        name = query.get("path", "").strip("/").removeprefix("hook/").split("/")[0]
        try:
            count = int(query.get("count", "1"))
            status = int(query.get("status", "500"))
        except ValueError:
            count, status = -1, 0
        if not NAME_RE.match(name) or count < 0 or not 100 <= status <= 599:
            self.send_json(400, {"error": "need path=<hook name>, count>=0, status 100..599"})
            return
        self.store.set_failure(name, count, status)
        self.send_json(200, {"path": name, "count": count, "status": status})


def main():
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # AUTH without TLS is deliberate here; aiosmtpd would repeat this warning on every connection.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    bind = os.environ.get("PQ_SINK_BIND", "0.0.0.0")
    smtp_port = int(os.environ.get("PQ_SINK_SMTP_PORT", "25"))
    http_port = int(os.environ.get("PQ_SINK_HTTP_PORT", "8025"))
    user, password = load_credentials(os.environ.get("PQ_SINK_CONFIG", "/etc/pq-sink.conf"))

    store = Store(os.environ.get("PQ_SINK_DIR", "/var/lib/pq-sink"))
    smtp = SmtpSwitch(store, bind, smtp_port, user, password)
    smtp.start()
    log.info("SMTP auth %s", f"required for {user!r}" if user else "disabled")

    HookHandler.store = store
    HookHandler.smtp = smtp
    httpd = ThreadingHTTPServer((bind, http_port), HookHandler)
    # shutdown() blocks until serve_forever() returns, so call it from another thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    log.info("HTTP listening on %s:%s", bind, http_port)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        smtp.stop()


if __name__ == "__main__":
    main()
