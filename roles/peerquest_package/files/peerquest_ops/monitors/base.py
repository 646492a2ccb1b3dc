"""Monitor: one host's settings, its state files, alerts handed to peerquest-alert, run records.

monitor = Monitor(config, deployed_at=mtime_of_the_settings)
state = monitor.read_state("errors", {...})      # <state_dir>/errors.json
monitor.write_state("errors", state)
monitor.alert("WARNING", "errors:approval_failed", "4 x ...")
monitor.mark_run("errors")                       # last_run.json, read by the self-check
"""

import os
import socket
import subprocess
import time

from peerquest_ops.monitors import digest
from peerquest_ops.monitors.runtime import load_json, log, save_json


class Monitor:
    def __init__(self, config, deployed_at=None):
        self.config = config
        self.state_dir = config["state_dir"]
        self.host = config.get("host") or socket.getfqdn()
        # When these settings were written (the deploy): a job that has never
        # run is overdue only once its allowed silence has passed since then.
        self.deployed_at = deployed_at
        # Families a job adds for its textfile metrics (peerquest_ops.metrics.figures).
        self.figures = []

    def state_path(self, name):
        return os.path.join(self.state_dir, f"{name}.json")

    def read_state(self, name, default):
        return load_json(self.state_path(name), default)

    def write_state(self, name, data):
        save_json(self.state_path(name), data)

    def alert(self, severity, key, message):
        """Hand the alert to peerquest-alert; INFO waits for the daily digest."""
        if severity == "INFO" and self.config.get("digest", {}).get("enabled", True):
            digest.queue(self, key, message)
            log(f"INFO queued for digest key={key}")
            return 0
        result = self.send(severity, f"{self.host}:{key}", f"[{self.host}] {message}", timeout=120)
        outcome = (result.stdout + result.stderr).strip().replace("\n", " | ")
        log(f"{severity} alert key={key} exit={result.returncode} {outcome}")
        return result.returncode

    def send(self, severity, key, text, timeout):
        """Run the alert command with text on its standard input; the finished process.

        A command that hangs past timeout, or cannot be started, is a failed send (exit 124 or
        127, as the shell says it), never an exception: the job logs it and carries on.
        """
        command = [self.config["alert_command"], "--severity", severity, "--key", key]
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
