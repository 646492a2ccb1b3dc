"""One source of truth: peerquest-monitor and the peerquest_monitors role's checks agree.

The program on the host imports peerquest_ops.core.constants (severities) and
peerquest_ops.monitors.schedule (intervals, the jobs the self-check watches);
the role's filter plugin executes the same two files for the preflight, the
cron file and the self-check's settings. These tests fail when either side
spells one of those values out on its own, or when the two judge a value
differently.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PACKAGE_DIR, ROLES, load_module
from peerquest_ops.core import constants
from peerquest_ops.monitors import (
    base,
    digest,
    errors,
    integrity,
    performance,
    probes,
    review,
    schedule,
    schema,
    security,
)
from peerquest_ops.monitors import selfcheck as selfcheck_job

ROLE = ROLES / "peerquest_monitors"
PLUGIN = load_module(ROLE / "filter_plugins" / "peerquest_monitors.py", "pq_monitors_constants_plugin")
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
PREFLIGHT = (ROLE / "tasks" / "preflight.yml").read_text()


def test_the_filter_plugin_reads_the_files_the_program_imports():
    assert PLUGIN.CONSTANTS_FILE == PACKAGE_DIR / "peerquest_ops" / "core" / "constants.py"
    assert PLUGIN.CONSTANTS_FILE.resolve() == Path(constants.__file__).resolve()
    assert PLUGIN.SCHEDULE_FILE.resolve() == Path(schedule.__file__).resolve()
    assert PLUGIN.monitors_constant("SEVERITIES") == list(constants.SEVERITIES)
    assert PLUGIN.monitors_constant("EVERY") == list(schedule.INTERVALS)
    assert PLUGIN.monitors_constant("WATCHED_JOBS") == list(schedule.WATCHED_JOBS)
    # The program's own check uses the same tuple, not a copy.
    assert schema.SEVERITIES is constants.SEVERITIES


def test_the_preflight_spells_out_no_severity_or_interval():
    # Severities are checked by the argument spec, whose choices must be the package's.
    for var in ("peerquest_monitors_error_patterns", "peerquest_monitors_rates"):
        assert tuple(SPECS[var]["options"]["severity"]["choices"]) == constants.SEVERITIES, var
    for severity in constants.SEVERITIES:
        assert not re.search(rf"\b{severity}\b", PREFLIGHT), f"{severity} written out in the preflight"
    for every in schedule.INTERVALS:
        assert not re.search(rf"['\" \[]{every}\b", PREFLIGHT), f"interval {every} written out in the preflight"
    plugin_source = (ROLE / "filter_plugins" / "peerquest_monitors.py").read_text()
    assert "CRITICAL" not in plugin_source and '"1mo"' not in plugin_source.split("def cron_schedule")[0]


SEVERITY_CANDIDATES = (*constants.SEVERITIES, "ERROR", "critical", "PAGE", "")


@pytest.mark.parametrize("severity", SEVERITY_CANDIDATES, ids=repr)
def test_both_sides_judge_a_severity_alike(severity):
    # The argument spec's choices are what the preflight accepts.
    accepted_by_preflight = severity in SPECS["peerquest_monitors_error_patterns"]["options"]["severity"]["choices"]
    config = {key: {} for key in ("errors", "performance", "health", "integrity", "selfcheck", "follow")} | {
        "state_dir": "/x",
        "alert_command": "/x",
    }
    config["errors"] = {
        "patterns": [{"name": "x", "regex": "x", "severity": severity, "threshold": 0}],
        "error_rate": {"regex": "x"},
    }
    config["performance"] = {"slow_regex": "x", "db_error_regex": "x", "duration_regex": "(?P<value>1)(?P<unit>s)"}
    accepted_by_program = schema.config_problems(config) == []
    assert accepted_by_preflight is accepted_by_program


@pytest.mark.parametrize("every", (*schedule.INTERVALS, "2h", "1y", "", None), ids=repr)
def test_both_sides_judge_an_interval_alike(every):
    problems = PLUGIN.job_problems({"x": {"every": every, "command": "/bin/true"}})
    assert (problems == []) is (every in schedule.INTERVALS)
    if every in schedule.INTERVALS:
        assert PLUGIN.cron_schedule(every, "app1", "x")
        assert PLUGIN.max_ages({"errors": {"every": every, "command": "/bin/true"}}, "app1", "") == {
            "errors": schedule.max_age(every)
        }


def test_role_defaults_and_specs_use_the_shared_values():
    for var in ("peerquest_monitors_error_patterns", "peerquest_monitors_rates"):
        assert {item["severity"] for item in DEFAULTS[var]} <= set(constants.SEVERITIES), var
    jobs = DEFAULTS["peerquest_monitors_jobs"]
    assert {job["every"] for job in jobs.values()} <= set(schedule.INTERVALS)
    # Every watched job is scheduled by default; the self-check does not watch itself.
    assert set(schedule.WATCHED_JOBS) <= set(jobs) and schedule.SELFCHECK_JOB in jobs
    assert schedule.SELFCHECK_JOB not in schedule.WATCHED_JOBS
    listed = ", ".join(schedule.INTERVALS)
    listed = listed[: listed.rindex(", ")] + " or " + listed.split(", ")[-1]
    assert f"every: {listed}." in SPECS["peerquest_monitors_jobs"]["description"]


class Recorder(base.Monitor):
    """Records mark_run names; alerts go nowhere."""

    def __init__(self, config):
        super().__init__(config)
        self.recorded = []

    def mark_run(self, name):
        self.recorded.append(name)

    def alert(self, severity, key, message):
        return 0


def test_the_jobs_record_exactly_the_names_the_self_check_watches(tmp_path):
    log = tmp_path / "django.log"
    log.write_text("")
    config = {
        "state_dir": str(tmp_path),
        "alert_command": "/bin/true",
        "host": "app1",
        "errors": {
            "log_file": str(log),
            "window_seconds": 3600,
            "patterns": [],
            "rates": [],
            "error_rate": {"regex": "^ERROR ", "increase_percent": 50, "min_events": 5, "min_samples": 3},
        },
        "performance": {
            "log_file": str(log),
            "window_seconds": 3600,
            "slow_seconds": 5,
            "slow_threshold": 1,
            "duration_regex": r"took (?P<value>\d+)(?P<unit>ms|s)",
            "degradation_percent": 200,
            "min_samples": 3,
        },
        "health": {"quick_url": "http://127.0.0.1:9/q/", "full_url": "http://127.0.0.1:9/f/", "timeout": 1},
        "integrity": {
            "command": [sys.executable, "-c", "print('TOTAL ISSUES: 0')"],
            "timeout": 30,
            "result_file": str(tmp_path / "integrity.json"),
            "severity": "CRITICAL",
        },
        "review": {
            "report_dir": str(tmp_path / "reviews"),
            "retention_days": 400,
            "false_positive_max_percent": 5,
            "acknowledged_min_percent": 95,
            "uptime_min_percent": 99.9,
            "detect_max_seconds": 300,
            "resolve_max_seconds": 3600,
        },
        "history": {"file": str(tmp_path / "history.jsonl")},
        "security": {"log_files": [str(log)], "events": []},
        "follow": {"enabled": False},
        "selfcheck": {
            "max_age_seconds": {},
            "writable": [],
            "readable": [],
            "disk_paths": [],
            "min_free_disk_mb": 0,
        },
    }
    monitor = Recorder(config)
    errors.run_errors(monitor)
    performance.run_performance(monitor)
    security.run_security(monitor)
    probes.run_health(monitor, quick=True)
    probes.run_health(monitor)
    integrity.run_integrity(monitor)
    digest.run_digest(monitor)
    review.run_review(monitor)
    review.run_threshold_review(monitor)
    assert sorted(monitor.recorded) == sorted(schedule.WATCHED_JOBS)
    selfcheck_job.run_selfcheck(monitor)
    assert monitor.recorded[-1] == schedule.SELFCHECK_JOB
    assert json.loads((tmp_path / "integrity.json").read_text())["status"] == "ok"
