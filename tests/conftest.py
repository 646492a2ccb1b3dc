"""Shared helpers for the fast tests (no containers)."""

import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"
VENV_BIN = Path(sys.executable).parent
# The host-side package (roles/peerquest_package): tests import peerquest_ops normally.
PACKAGE_DIR = ROLES / "peerquest_package" / "files"
# The errors job's error-rate settings as the role renders them by default (monitors.json).
ERROR_RATE = {
    "regex": "^(ERROR|CRITICAL) ",
    "increase_percent": 50,
    "min_samples": 3,
    "min_events": 5,
    "severity": "WARNING",
}
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))


def package_command(module):
    """argv running module's main() the way a deployed entry file does: isolated mode, the package first."""
    code = f"import sys; sys.path.insert(0, {str(PACKAGE_DIR)!r}); from {module} import main; sys.exit(main())"
    return [sys.executable, "-I", "-c", code]


def load_module(path, name=None):
    """Import a file that is not on sys.path (filter plugins, deployed scripts)."""
    path = Path(path)
    name = name or path.stem.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _process_umask():
    """Each test starts with the session's umask: a command run in-process (cli.main) sets its own,
    and files a later test writes would carry it (logrotate ignores a group-writable rules file)."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


@pytest.fixture(scope="session")
def ansible_env():
    """Environment for running the project's ansible-playbook from tests."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".cache" / "collections")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "0"
    return env


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def fake_alert_command(directory):
    """An executable standing in for peerquest-alert that records each call (argv, stdin) as a JSON line.

    Returns (command path, record path). The channels themselves are tested with real servers elsewhere.
    """
    directory = Path(directory)
    sent = directory / "sent.jsonl"
    alert = directory / "fake-alert"
    alert.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(sent)!r}, 'a').write(json.dumps({{'argv': sys.argv[1:], 'stdin': sys.stdin.read()}}) + '\\n')\n"
    )
    alert.chmod(0o755)
    return alert, sent


def scratch_monitor(directory, jobs):
    """A peerquest_ops Monitor on scratch state, alerting through fake_alert_command.

    jobs(log) gives the job sections of its settings for the scratch log file it is handed.
    Returns (monitor, log path, calls): calls() lists the alert command's calls so far.
    """
    from peerquest_ops.monitors import base  # on sys.path from this module's top

    directory = Path(directory)
    state = directory / "state"
    state.mkdir()
    alert, sent = fake_alert_command(directory)
    log = directory / "django.log"
    log.write_text("")
    config = {"state_dir": str(state), "alert_command": str(alert), "host": "app1", **jobs(str(log))}

    def calls():
        return [json.loads(x) for x in sent.read_text().splitlines()] if sent.exists() else []

    return base.Monitor(config), log, calls


def enable_follower(monitor, directory):
    """Turn on a scratch_monitor's CRITICAL follower on its own empty critical.log; returns that path."""
    critical = Path(directory) / "critical.log"
    critical.write_text("")
    monitor.config["follow"] = {
        "enabled": True,
        "log_file": str(critical),
        "poll_seconds": 0,
        "takeover_seconds": 120,
        "severity": "CRITICAL",
        "patterns": [{"name": "critical", "regex": "^CRITICAL "}],
    }
    return critical


def serve_http(handler_class):
    """Serve handler_class on a free loopback port in a daemon thread; returns (server, base URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def send_json(handler, status, body, headers=None):
    """Answer an http.server request with a JSON body (and any extra headers)."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class StubRequest:
    """A Django request as the health views read it: headers in META."""

    def __init__(self, headers=None):
        self.META = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}


class StubDatabase:
    """django.db.connection for the health views: SELECT 1 answers, or raises .error when set."""

    error = None

    def cursor(self):
        database = self

        class Cursor:
            def __enter__(self):
                if database.error:
                    raise database.error
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql):
                pass

            def fetchone(self):
                return (1,)

        return Cursor()


def local_playbook(playbook, extra_vars):
    """ansible-playbook on this machine (local connection, the virtualenv's Python) with extra_vars,
    a JSON string or "@file"."""
    return [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={VENV_BIN / 'python'}",
        "-e",
        extra_vars,
        str(playbook),
    ]


def stub_module(name, **attrs):
    """A module object holding attrs, for sys.modules."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def stub_django(monkeypatch, database, registry, http, **more):
    """A tiny Django for the health app's modules (connection, apps, http, the view decorators,
    plus more={module: attrs}), and peerquest_health and peerquest_logging imported afresh from the roles."""
    identity = lambda view: view  # noqa: E731
    modules = {
        "django": {},
        "django.apps": {"apps": registry},
        "django.db": {"connection": database},
        "django.http": http,
        "django.views": {},
        "django.views.decorators": {},
        "django.views.decorators.cache": {"never_cache": identity},
        "django.views.decorators.http": {"require_GET": identity},
        **more,
    }
    for name, attrs in modules.items():
        monkeypatch.setitem(sys.modules, name, stub_module(name, **attrs))
    for files in (ROLES / "peerquest_health" / "files", ROLES / "peerquest_logging" / "files"):
        monkeypatch.syspath_prepend(str(files))
    for name in [m for m in sys.modules if m.split(".")[0] in ("peerquest_health", "peerquest_logging")]:
        monkeypatch.delitem(sys.modules, name)
