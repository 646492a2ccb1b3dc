"""Monitor: one host's settings, its state files, alerts handed to peerquest-alert, run records.

monitor = Monitor(config, deployed_at=mtime_of_the_settings)
state = monitor.read_state("errors", {...})      # <state_dir>/errors.json
monitor.write_state("errors", state)
monitor.alert("WARNING", "errors:approval_failed", "4 x ...", event_time=first_line_epoch)
monitor.mark_run("errors")                       # last_run.json, read by the self-check
monitor.settle("errors")                         # after the job: resolutions, its run counted for uptime

Resolutions (the alert history's "resolved" records): a scheduled job raises
each condition it watches at every run while the condition holds (a pattern
over its threshold, a probe failing, an audit with issues); settle(job)
records a key as resolved once when a job that raised it runs to its end
without raising it again. alerts_open.json holds the keys raised and not yet
resolved, with the jobs that raised them. Keys raised once per event rather
than per run (EVENT_KEYS: a CRITICAL log line, a database episode the
follower pages once) are left out; dbwatch resolves its episode itself
(resolve()), an operator the rest (peerquest-history resolve).
"""

import os
import time

from peerquest_ops.core.locking import locked
from peerquest_ops.history import store
from peerquest_ops.monitors import digest, uptime
from peerquest_ops.monitors.runtime import load_json, log, save_json

OPEN_ALERTS = "alerts_open"
# Raised once per event, so a run without them says nothing about a recovery.
EVENT_KEYS = ("follow:", "database:", "health:recovered")


def _fqdn():
    import socket  # only where the settings name no host: every job starts faster without it

    return socket.getfqdn()


class Monitor:
    def __init__(self, config, deployed_at=None):
        self.config = config
        self.state_dir = config["state_dir"]
        self.host = config.get("host") or _fqdn()
        # When these settings were written (the deploy): a job that has never
        # run is overdue only once its allowed silence has passed since then.
        self.deployed_at = deployed_at
        # Families a job adds for its textfile metrics (peerquest_ops.metrics.figures).
        self.figures = []
        # Keys (without the host) and severities this run raised, for settle().
        self.raised = {}

    def state_path(self, name):
        return os.path.join(self.state_dir, f"{name}.json")

    def read_state(self, name, default):
        return load_json(self.state_path(name), default)

    def write_state(self, name, data):
        save_json(self.state_path(name), data)

    @property
    def history_file(self):
        """peerquest-alert's history, where the monitors add resolutions and digested findings ("": none)."""
        return (self.config.get("history") or {}).get("file", "")

    def alert(self, severity, key, message, event_time=None):
        """Hand the alert to peerquest-alert; INFO waits for the daily digest.

        event_time: when what is alerted happened (epoch), where the job knows it; the history keeps
        it for the time to detect."""
        if severity != "INFO":
            self.raised[key] = severity
        if severity == "INFO" and self.config.get("digest", {}).get("enabled", True):
            digest.queue(self, key, message)
            log(f"INFO queued for digest key={key}")
            store.record(self.history_file, "digested", f"{self.host}:{key}", severity, host=self.host, warn=_warn)
            return 0
        result = self.send(severity, f"{self.host}:{key}", f"[{self.host}] {message}", 120, event_time)
        outcome = (result.stdout + result.stderr).strip().replace("\n", " | ")
        log(f"{severity} alert key={key} exit={result.returncode} {outcome}")
        return result.returncode

    def send(self, severity, key, text, timeout, event_time=None):
        """Run the alert command with text on its standard input; the finished process.

        A command that hangs past timeout, or cannot be started, is a failed send (exit 124 or
        127, as the shell says it), never an exception: the job logs it and carries on.
        """
        command = [self.config["alert_command"], "--severity", severity, "--key", key]
        if event_time is not None:
            command += ["--event-time", f"{event_time:.3f}"]
        return self._run_alert_command(command, text, timeout)

    def _announce_resolved(self, key, severity):
        """Tell the alert command that key's condition is over: its dedup window is cleared, and
        through Alertmanager the alert ends now instead of at its resolve time."""
        result = self._run_alert_command([self.config["alert_command"], "--resolve", "--key", key], "", 60)
        outcome = (result.stdout + result.stderr).strip().replace("\n", " | ")
        log(f"{severity} resolve key={key} exit={result.returncode} {outcome}")

    def _run_alert_command(self, command, text, timeout):
        import subprocess  # here, not at the top: a run that alerts nothing starts faster

        try:
            return subprocess.run(command, input=text, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(command, 124, "", f"{command[0]} did not finish within {timeout} s")
        except OSError as exc:
            return subprocess.CompletedProcess(command, 127, "", f"{command[0]} could not be run: {exc.strerror}")

    def mark_run(self, name):
        runs = self.read_state("last_run", {})
        runs[name] = time.time()
        self.write_state("last_run", runs)

    def resolve(self, key, severity, note=None):
        """Record key (without the host) as resolved now, and forget it among the open alerts."""
        with locked(self.state_path(OPEN_ALERTS) + ".lock"):
            alerts = self.read_state(OPEN_ALERTS, {})
            alerts.pop(key, None)
            self.write_state(OPEN_ALERTS, alerts)
        store.record(
            self.history_file, "resolved", f"{self.host}:{key}", severity, host=self.host, note=note, warn=_warn
        )
        log(f"{severity} resolved key={key}")
        self._announce_resolved(f"{self.host}:{key}", severity)

    def settle(self, job, now=None):
        """After a job ran to its end: resolve what it raised before and not now; count the run for uptime."""
        now = now or time.time()
        resolved = []
        with locked(self.state_path(OPEN_ALERTS) + ".lock"):
            alerts = self.read_state(OPEN_ALERTS, {})
            before = dict(alerts)
            for key, entry in list(alerts.items()):
                if job in entry.get("jobs", []) and key not in self.raised:
                    resolved.append((key, entry))
                    del alerts[key]
            for key, severity in self.raised.items():
                if key.startswith(EVENT_KEYS):
                    continue
                entry = alerts.setdefault(key, {"since": now, "severity": severity, "jobs": []})
                if job not in entry["jobs"]:
                    entry["jobs"].append(job)
            if alerts != before:
                self.write_state(OPEN_ALERTS, alerts)
        for key, entry in resolved:
            store.record(
                self.history_file,
                "resolved",
                f"{self.host}:{key}",
                entry.get("severity", "-"),
                host=self.host,
                job=job,
                warn=_warn,
            )
            log(f"{entry.get('severity', '-')} resolved key={key} (raised since {time.ctime(entry.get('since', now))})")
            self._announce_resolved(f"{self.host}:{key}", entry.get("severity", "-"))
        uptime.count_run(self, job, now)
        return [key for key, _ in resolved]


def _warn(text):
    log(f"WARNING {text}")
