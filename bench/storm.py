"""Alert storm: CRITICAL lines for a minute, through the follower and a real peerquest-alert.

peerquest-alert sends to Slack, Discord and a webhook, all a capture server
on loopback; its dedup window is short (window seconds) so the run can show
the next message after it, which carries the exact count of what was held
back. The follower is the real command (peerquest-monitor follow), stopped
with SIGTERM once its cursor reached the end of the log.
"""

import http.server
import json
import re
import threading
import time

from bench import logs

CHANNELS = {"slack": "/slack", "discord": "/discord", "webhook": "/hook"}
MESSAGE = "Payment ledger write failed: database is locked"


class Capture(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def count(self, path):
        return sum(1 for p, _ in self.received if p == path)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's hook name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, body.decode(errors="replace")))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def alert_config(host, capture, window):
    config = {
        "subject": "[{severity}] PeerQuest Alert",
        "log_dir": str(host.dir),
        "email": {
            "enabled": False,
            "from": "monitoring@peerquest.test",
            "recipients": {"CRITICAL": []},
            "smtp": {
                "host": "127.0.0.1",
                "port": 25,
                "starttls": False,
                "ssl": False,
                "user": "",
                "password": "",
                "ca_file": "",
                "timeout": 5,
            },
        },
        "routes": {"CRITICAL": list(CHANNELS), "WARNING": ["slack"], "INFO": []},
        "slack": {"enabled": True, "webhook_url": capture.url(CHANNELS["slack"])},
        "discord": {"enabled": True, "webhook_url": capture.url(CHANNELS["discord"])},
        "webhook": {"enabled": True, "url": capture.url(CHANNELS["webhook"]), "token": ""},
        "http_timeout": 5,
        "ca_file": "",
        "dedup_window_seconds": window,
        "state_dir": str(host.dir / "alert-state"),
        "spool_dir": str(host.dir / "alert-spool"),
        "retry_base_seconds": 10,
        "retry_max_seconds": 3600,
        "retry_after_max_seconds": 3600,
        "log_file": str(host.job_log),
        "selftest_channels": [],
        "allow_insecure_transport": True,  # loopback only
        "alertmanager": {
            "enabled": False,
            "urls": [],
            "resolve_seconds": 1800,
            "instance": "bench",
            "runbook_base_url": "",
        },
    }
    for name in ("alert-state", "alert-spool"):
        (host.dir / name).mkdir(exist_ok=True)
    path = host.dir / "alerting.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _cursor_at_end(host):
    try:
        state = json.loads((host.state_dir / "follow.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("position", {}).get("offset") == host.critical_log.stat().st_size and not state.get("done")


def _start_cursor(host):
    position = {"inode": host.critical_log.stat().st_ino, "offset": host.critical_log.stat().st_size}
    (host.state_dir / "follow.json").write_text(json.dumps({"position": position, "done": 0}))


def run_follower(host, timeout):
    deadline = time.monotonic() + timeout
    return host.monitor("follow", stop_when=lambda: _cursor_at_end(host) or time.monotonic() > deadline)


def storm(host, lines, window, timeout=900):
    """lines CRITICAL lines stamped over one minute, then one more after the dedup window."""
    capture = Capture()
    try:
        host.reset_state()
        host.critical_log.write_bytes(b"")
        host.alert_command = host.alert_wrapper(alert_config(host, capture, window))
        host.write_config(host.dir / "django.log", follow_extra={"hold_seconds": window})
        _start_cursor(host)
        logs.append_recent(host.critical_log, lines, 60, level="CRITICAL", message=MESSAGE)
        first = run_follower(host, timeout)
        during = {channel: capture.count(path) for channel, path in CHANNELS.items()}
        # After the window, the next line of the same kind goes out with the count of those held back.
        time.sleep(window + 0.5)
        logs.append_recent(host.critical_log, 1, 60, level="CRITICAL", message=MESSAGE)
        second = run_follower(host, 60)
        after = [body for path, body in capture.received if path == CHANNELS["webhook"]]
    finally:
        capture.shutdown()
    note = after[-1] if len(after) > 1 else ""
    return {
        "lines": lines,
        "window_s": window,
        "messages_per_channel": during,
        "held_count_in_next_message": _count_in(note),
        "cpu_s": round(first.cpu, 3),
        "wall_s": round(first.wall, 3),
        "max_rss_mb": round(first.max_rss_mb, 1),
        "next_message_cpu_s": round(second.cpu, 3),
        "finished": _cursor_at_end(host),
    }


def _count_in(body):
    """The count a message gives of the lines held back ("(N similar ..." / "N more ...")."""
    found = re.search(r"\((\d+) (?:similar|more)", body.replace("\\n", "\n"))
    return int(found.group(1)) if found else None
