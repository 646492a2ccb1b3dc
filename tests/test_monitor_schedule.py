"""The cron schedule the peerquest_monitors role writes."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import ROLES, load_module

ROLE = ROLES / "peerquest_monitors"
PLUGIN = ROLE / "filter_plugins" / "peerquest_monitors.py"
plugin = load_module(PLUGIN, "pq_monitors_plugin")
JOBS = {
    name: dict(job, command=f"/usr/local/bin/{name}")
    for name, job in yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["peerquest_monitors_jobs"].items()
}


def by_name(jobs):
    return {job["name"]: job["schedule"] for job in jobs}


def test_every_row_of_the_plan_is_scheduled():
    schedule = by_name(plugin.cron_jobs(JOBS, "app1", "app1"))
    assert set(schedule) == {
        "alert_retry",
        "health_quick",
        "errors",
        "performance",
        "security",
        "health",
        "integrity",
        "digest",
        "selfcheck",
        "review",
        "threshold_review",
    }
    assert schedule["alert_retry"] == "* * * * *"
    assert schedule["errors"].split()[0].endswith("-59/5")
    assert schedule["performance"].split()[0].endswith("-59/15")
    assert schedule["security"].split()[0].endswith("-59/5")
    assert schedule["integrity"].split()[1:] == ["*", "*", "*", "*"]
    assert schedule["digest"].split()[1:] == ["6", "*", "*", "*"]
    assert schedule["selfcheck"].split()[1:] == ["6", "*", "*", "1"]
    assert schedule["review"].split()[1:] == ["6", "1", "*", "*"]
    assert schedule["threshold_review"].split()[1:] == ["6", "*", "*", "1"]


# Prints every host's schedule as JSON, in a process of its own.
SCHEDULE_SCRIPT = """
import importlib.machinery, importlib.util, json, sys
loader = importlib.machinery.SourceFileLoader("plugin", sys.argv[1])
spec = importlib.util.spec_from_loader("plugin", loader)
plugin = importlib.util.module_from_spec(spec)
loader.exec_module(plugin)
jobs = json.loads(sys.argv[2])
print(json.dumps({host: plugin.cron_jobs(jobs, host, "app1") for host in sys.argv[3:]}, sort_keys=True))
"""
HOSTS = [f"app{i}" for i in range(20)] + ["questhub-web-01.internal", "pq-custom_site-app2"]


def schedule_in_a_new_process(hash_seed):
    """What another ansible-playbook run (another process, another str hash seed) would compute."""
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    result = subprocess.run(
        [sys.executable, "-c", SCHEDULE_SCRIPT, str(PLUGIN), json.dumps(JOBS), *HOSTS],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(result.stdout)


def test_minutes_are_spread_across_hosts_but_stable():
    minutes = {plugin.cron_schedule("1h", host, "integrity").split()[0] for host in HOSTS}
    assert len(minutes) > 10
    start = int(plugin.cron_schedule("5m", "app1", "errors").split("-")[0])
    assert 0 <= start < 5
    # Stable: every run (a new process each time) writes the same cron file, so a re-run changes nothing.
    first, second = schedule_in_a_new_process(1), schedule_in_a_new_process(2)
    assert first == second
    assert first == {host: plugin.cron_jobs(JOBS, host, "app1") for host in HOSTS}


def test_integrity_runs_on_exactly_one_host():
    hosts = ["app1", "app2", "app3"]
    running = [h for h in hosts if "integrity" in by_name(plugin.cron_jobs(JOBS, h, "app2"))]
    assert running == ["app2"]
    assert "integrity" not in by_name(plugin.cron_jobs(JOBS, "app1", ""))


def test_absent_jobs_are_dropped():
    jobs = dict(JOBS, review=dict(JOBS["review"], state="absent"))
    assert "review" not in by_name(plugin.cron_jobs(jobs, "app1", "app1"))


@pytest.mark.parametrize(
    "job, expected",
    [
        ({"every": "2h", "command": "/bin/true"}, "peerquest_monitors_jobs.x.every: '2h' is not one of"),
        ({"every": "5m", "command": "true"}, "peerquest_monitors_jobs.x.command: must start with an absolute path"),
        ({"every": "5m", "command": "/bin/date +%s"}, "cron treats % as a newline"),
    ],
)
def test_job_problems_name_the_variable(job, expected):
    [problem] = plugin.job_problems({"x": job})
    assert expected in problem and problem.startswith("peerquest_monitors_jobs.x.")


def test_selfcheck_allows_twice_the_interval():
    ages = plugin.max_ages(JOBS, "app1", "app1")
    assert ages["errors"] == 2 * 300 + 120 and ages["integrity"] == 2 * 3600 + 120
    assert "alert_retry" not in ages and "selfcheck" not in ages
    assert "integrity" not in plugin.max_ages(JOBS, "app2", "app1")
