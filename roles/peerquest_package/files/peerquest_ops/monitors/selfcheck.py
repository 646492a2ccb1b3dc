"""The self-check: the monitors themselves (jobs on time, follower alive, directories, disk, channels).

Each problem is one line of the job's output ("selfcheck: PROBLEM ...") and
one line of a single WARNING; the command exits 1 when there is any. The
alert's key names the kinds of problem found, so a new problem is told at
once while the same ones are not repeated within the dedup window.
"""

import math
import os
import shutil
import subprocess
import time

from peerquest_ops.monitors.follow import follower_silent_for
from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.schedule import SELFCHECK_JOB


def unit_state(unit):
    """systemd's word for a unit ("active", "inactive", "failed" ...); None when systemd cannot be asked."""
    try:
        done = subprocess.run(
            ["systemctl", "is-active", "--", unit], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    state = done.stdout.strip()
    return state or None


def follower_problem(monitor, now):
    """Why the CRITICAL follower is not doing its work (None: it is)."""
    follow = monitor.config.get("follow", {})
    if not follow.get("enabled"):
        return None
    unit = follow.get("unit")
    if unit:
        state = unit_state(unit)
        if state is not None and state != "active":
            return f"the CRITICAL follower is not running: {unit} is {state}"
    silent = follower_silent_for(monitor, now)
    if silent is None:
        return "the CRITICAL follower is not running: it never wrote a heartbeat"
    if silent == math.inf:
        return "the CRITICAL follower is not running: it was stopped"
    if silent > follow["takeover_seconds"]:
        return (
            f"the CRITICAL follower is not running: silent for {int(silent)}s (allowed {follow['takeover_seconds']}s)"
        )
    return None


def stale_jobs(monitor, max_ages, now):
    """[(id, text)] of the watched jobs silent for longer than allowed."""
    problems = []
    runs = monitor.read_state("last_run", {})
    for job, max_age in sorted(max_ages.items()):
        last = runs.get(job)
        if last is None:
            since = None if monitor.deployed_at is None else now - monitor.deployed_at
            if since is None or since > max_age:
                deployed = (
                    "" if since is None else f" (deployed {int(since // 60)} minutes ago, allowed {max_age // 60})"
                )
                problems.append((f"stale:{job}", f"{job} has never run{deployed}"))
        elif now - last > max_age:
            problems.append(
                (f"stale:{job}", f"{job} last ran {int((now - last) // 60)} minutes ago (allowed {max_age // 60})")
            )
    return problems


def path_problems(cfg):
    """[(id, text)] of directories the monitors cannot write, logs they cannot read, disks nearly full."""
    problems = []
    for path in cfg["writable"]:
        if not os.access(path, os.W_OK):
            problems.append((f"unwritable:{path}", f"{path} is not writable by the monitors"))
    for path in cfg["readable"]:
        if not os.access(path, os.R_OK):
            problems.append((f"unreadable:{path}", f"{path} is not readable by the monitors"))
    for path in cfg["disk_paths"]:
        try:
            free_mb = shutil.disk_usage(path).free // (1024 * 1024)
        except OSError as exc:
            problems.append((f"disk:{path}", f"free space under {path} unknown: {exc.strerror}"))
            continue
        if free_mb < cfg["min_free_disk_mb"]:
            problems.append(
                (f"disk:{path}", f"only {free_mb} MiB free under {path} (minimum {cfg['min_free_disk_mb']})")
            )
    return problems


def channel_problem(monitor):
    """Why peerquest-alert's channel test failed (None: it passed)."""
    done = subprocess.run(
        [monitor.config["alert_command"], "--test-channels"], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        return f"alert channel test failed: {(done.stdout + done.stderr).strip()}"
    return None


def selfcheck_problems(monitor, now):
    """Everything the self-check finds wrong: [(short id, what is wrong)], in a stable order."""
    cfg = monitor.config["selfcheck"]
    problems = stale_jobs(monitor, cfg["max_age_seconds"], now)
    follower = follower_problem(monitor, now)
    if follower:
        problems.append(("follower", follower))
    problems += path_problems(cfg)
    channels = channel_problem(monitor) if cfg.get("test_channels") else None
    if channels:
        problems.append(("channels", channels))
    return problems


def run_selfcheck(monitor, now=None):
    """Check the monitors themselves; returns the problems' texts (the command exits 1 when there are any)."""
    now = now or time.time()
    found = selfcheck_problems(monitor, now)
    problems = [text for _, text in found]
    for text in problems:
        log(f"selfcheck: PROBLEM {text}")
    if found:
        key = "selfcheck:" + ",".join(name for name, _ in found)
        monitor.alert("WARNING", key, "Monitoring self-check found problems:\n- " + "\n- ".join(problems))
    else:
        monitor.alert("INFO", "selfcheck", "Monitoring self-check passed")
    try:
        monitor.mark_run(SELFCHECK_JOB)
    except OSError as exc:
        # The problem is already told above (an unwritable state directory); the verdict stands.
        log(f"selfcheck: WARNING could not record this run: {exc.strerror}: {exc.filename}")
    log(f"selfcheck: {len(problems)} problem(s)")
    return problems
