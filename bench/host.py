"""A scratch host on this machine: the package compiled as the role deploys it, the commands' entries,
their settings, and a child process per run whose CPU and memory the kernel reports (os.wait4).

    host = Host(directory)
    result = host.monitor("errors")     # Result(cpu, wall, max_rss_mb, code)
    result = host.shell("grep ...")     # the same measure for a shell pipeline
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(os.environ.get("BENCH_PACKAGE") or ROOT / "roles" / "peerquest_package" / "files")
DEFAULTS = ROOT / "roles" / "peerquest_monitors" / "defaults" / "main.yml"
# The hosts' interpreter (Debian 12's /usr/bin/python3), or this one where it is missing.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# As roles/peerquest_monitors/templates/peerquest-monitor.py.j2 (and peerquest-alert's) run the package.
ENTRY = """import sys
sys.dont_write_bytecode = True
sys.path.insert(0, {python!r})
from {module} import main
sys.exit(main())
"""


@dataclass
class Result:
    cpu: float  # user + system seconds of the process and the children it waited for
    wall: float
    max_rss_mb: float
    code: int


# A small process that starts the measured commands and waits for them (os.wait4). Started from
# this process, a command would report this process's peak memory as its own: the kernel keeps
# the peak of the memory a process leaves at exec, and a spawned child leaves the spawner's.
LAUNCHER = """
import json, os, sys, time
for request in sys.stdin:
    request = json.loads(request)
    if "argv" in request:
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        started = time.perf_counter()
        pid = os.posix_spawn(request["argv"][0], request["argv"], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, out, 2)])
        os.close(out)
        print(json.dumps({"pid": pid}), flush=True)
    else:
        _pid, status, usage = os.wait4(request["wait"], 0)
        wall = time.perf_counter() - started
        print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "max_rss_mb": usage.ru_maxrss / 1024,
                          "code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Launcher:
    def __init__(self):
        self.process = subprocess.Popen(
            [PYTHON, "-I", "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def _ask(self, request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def measure(self, argv, stdout, stop_when=None, poll=0.02):
        """Run argv (output appended to stdout); with stop_when, SIGTERM it once stop_when() is true."""
        if not os.path.isabs(argv[0]):
            argv = [shutil.which(argv[0]), *argv[1:]]
        pid = self._ask({"argv": [str(a) for a in argv], "stdout": str(stdout)})["pid"]
        if stop_when is not None:
            while not stop_when():
                if _exited(pid):
                    break
                time.sleep(poll)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return Result(**self._ask({"wait": pid}))

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def _exited(pid):
    """Whether pid has ended (a zombie its launcher has not waited for yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Host:
    def __init__(self, directory, alert_command="/bin/true"):
        self.dir = Path(directory)
        self.python_dir = self.dir / "python"
        if self.python_dir.exists():
            shutil.rmtree(self.python_dir)
        shutil.copytree(
            PACKAGE / "peerquest_ops", self.python_dir / "peerquest_ops", ignore=shutil.ignore_patterns("__pycache__")
        )
        # The role compiles the package where it installs it (peerquest_package/tasks/install.yml).
        subprocess.run([PYTHON, "-I", "-m", "compileall", "-q", str(self.python_dir)], check=True)
        self.bin = self.dir / "bin"
        self.bin.mkdir(exist_ok=True)
        for name, module in (("monitor", "peerquest_ops.monitors.cli"), ("alert", "peerquest_ops.alerting.cli")):
            (self.bin / f"{name}.py").write_text(ENTRY.format(python=str(self.python_dir), module=module))
        self.state_dir = self.dir / "state"
        self.app_log = self.dir / "django.log"
        self.critical_log = self.dir / "critical.log"
        self.job_log = self.dir / "monitoring.log"
        self.config_path = self.dir / "monitors.json"
        self.alert_command = alert_command
        self.launcher = Launcher()
        self.reset_state()
        self.critical_log.touch()

    def reset_state(self):
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)

    def alert_wrapper(self, alert_config):
        """peerquest-alert with alert_config, as the role's wrapper on PATH runs it."""
        wrapper = self.bin / "peerquest-alert"
        wrapper.write_text(f'#!/bin/sh\nexec {PYTHON} -I {self.bin / "alert.py"} --config {alert_config} "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)

    def write_config(self, log_file, follow_extra=None, **overrides):
        """monitors.json as roles/peerquest_monitors/templates/monitors.json.j2 renders it, from the role's defaults."""
        d = yaml.safe_load(DEFAULTS.read_text())
        window = d["peerquest_monitors_window_minutes"] * 60
        config = {
            "host": "bench",
            "state_dir": str(self.state_dir),
            "alert_command": self.alert_command,
            "digest": {"enabled": False},
            "errors": {
                "log_file": str(log_file),
                "window_seconds": window,
                "patterns": d["peerquest_monitors_error_patterns"],
                "rates": d["peerquest_monitors_rates"],
                "error_rate": {
                    "regex": d["peerquest_monitors_error_rate_regex"],
                    "increase_percent": 50,
                    "min_events": 5,
                    "min_samples": 3,
                    "severity": "WARNING",
                },
            },
            "performance": {
                "log_file": str(log_file),
                "window_seconds": window,
                "duration_regex": d["peerquest_monitors_duration_regex"].strip(),
                "slow_seconds": 5.0,
                "slow_threshold": 10,
                "slow_severity": "WARNING",
                "degradation_percent": 200,
                "degradation_severity": "WARNING",
                "min_samples": 3,
            },
            "health": {
                "quick_url": "http://127.0.0.1:9/health/quick/",
                "full_url": "http://127.0.0.1:9/health/",
                "token": "",
                "timeout": 1,
                "host_header": "",
            },
            "integrity": {
                "command": ["/bin/true"],
                "timeout": 5,
                "result_file": str(self.dir / "integrity.json"),
                "severity": "CRITICAL",
            },
            "follow": {
                "enabled": True,
                "unit": "peerquest-monitor-follow.service",
                "log_file": str(self.critical_log),
                "patterns": d["peerquest_monitors_follow_patterns"],
                "takeover_seconds": 120,
                "poll_seconds": 0.2,
                "severity": "CRITICAL",
            },
            "selfcheck": {
                "max_age_seconds": {},
                "writable": [],
                "readable": [],
                "disk_paths": [],
                "min_free_disk_mb": 1,
                "test_channels": False,
            },
            "history": {"file": str(self.state_dir / "history.jsonl")},
            "review": {
                "alert_log": str(self.job_log),
                "report_dir": str(self.dir / "reviews"),
                "retention_days": d.get("peerquest_monitors_review_retention_days", 400),
                "false_positive_max_percent": float(d.get("peerquest_monitors_review_false_positive_max_percent", 5)),
                "acknowledged_min_percent": float(d.get("peerquest_monitors_review_acknowledged_min_percent", 95)),
                "uptime_min_percent": float(d.get("peerquest_monitors_review_uptime_min_percent", 99.9)),
                "detect_max_seconds": int(d.get("peerquest_monitors_review_mttd_max_minutes", 5) * 60),
                "resolve_max_seconds": int(d.get("peerquest_monitors_review_mttr_max_minutes", 60) * 60),
            },
            "metrics": {"textfile_dir": ""},
        }
        if "peerquest_monitors_cpu_budget_ms" in d:
            config["cpu_budget_ms"] = d["peerquest_monitors_cpu_budget_ms"]
        config["follow"].update(follow_extra or {})
        config.update(overrides)
        self.config_path.write_text(json.dumps(config, indent=2))
        return config

    def follower_alive(self):
        """The follower beat just now: the errors job neither stands in for it nor reads the database log."""
        beat = self.state_dir / "follow.heartbeat"
        beat.touch()
        os.utime(beat)

    def monitor(self, *args, stop_when=None):
        argv = [PYTHON, "-I", "-S", str(self.bin / "monitor.py"), "--config", str(self.config_path), *args]
        return self.launcher.measure(argv, self.job_log, stop_when=stop_when)

    def shell(self, script):
        return self.launcher.measure(["bash", "-c", script], self.dir / "shell.out")

    def close(self):
        self.launcher.close()

    def job_lines(self):
        return self.job_log.read_text(errors="replace").splitlines() if self.job_log.exists() else []
