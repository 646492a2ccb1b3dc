"""Cron schedule for the monitor jobs, spread per host."""

import zlib

EVERY = ("1m", "5m", "15m", "1h", "1d", "1w", "1mo")


def _offset(host, name, modulo):
    # Stable across runs (idempotent) but different per host and job.
    return zlib.crc32(f"{host}/{name}".encode()) % modulo


def cron_schedule(every, host, name, daily_hour=6, weekly_day=1):
    """The five cron time fields for a job."""
    minute = _offset(host, name, 60)
    if every == "1m":
        return "* * * * *"
    if every in ("5m", "15m"):
        step = int(every[:-1])
        return f"{minute % step}-59/{step} * * * *"
    if every == "1h":
        return f"{minute} * * * *"
    if every == "1d":
        return f"{minute} {daily_hour} * * *"
    if every == "1w":
        return f"{minute} {daily_hour} * * {weekly_day}"
    if every == "1mo":
        return f"{minute} {daily_hour} 1 * *"
    raise ValueError(f"unknown interval {every!r}; use one of {', '.join(EVERY)}")


def cron_jobs(jobs, host, integrity_host, daily_hour=6, weekly_day=1):
    """Jobs for this host, sorted, with their schedule; integrity jobs only on its host."""
    out = []
    for name, job in sorted(jobs.items()):
        if job.get("state", "present") == "absent":
            continue
        if job.get("integrity") and host != integrity_host:
            continue
        out.append(
            {
                "name": name,
                "schedule": cron_schedule(job["every"], host, name, daily_hour, weekly_day),
                "command": job["command"],
            }
        )
    return out


def job_problems(jobs):
    problems = []
    for name, job in sorted(jobs.items()):
        where = f"peerquest_monitors_jobs.{name}"
        if not isinstance(job, dict):
            problems.append(f"{where}: must be a dict with every and command")
            continue
        if job.get("state", "present") == "absent":
            continue
        if job.get("every") not in EVERY:
            problems.append(f"{where}.every: {job.get('every')!r} is not one of {', '.join(EVERY)}")
        if not str(job.get("command", "")).startswith("/"):
            problems.append(f"{where}.command: must start with an absolute path")
        if "%" in str(job.get("command", "")):
            problems.append(f"{where}.command: cron treats % as a newline; leave it out")
    return problems


# Jobs that record their runs (peerquest-monitor's mark_run names).
RECORDED = ("errors", "performance", "health", "health_quick", "integrity", "digest", "review")
SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400, "1w": 604800, "1mo": 2678400}


def max_ages(jobs, host, integrity_host):
    """How long each recorded job may stay silent before the self-check complains."""
    return {
        job["name"]: 2 * SECONDS[jobs[job["name"]]["every"]] + 120
        for job in cron_jobs(jobs, host, integrity_host)
        if job["name"] in RECORDED
    }


class FilterModule:
    def filters(self):
        return {
            "peerquest_monitors_cron_jobs": cron_jobs,
            "peerquest_monitors_job_problems": job_problems,
            "peerquest_monitors_max_ages": max_ages,
        }
