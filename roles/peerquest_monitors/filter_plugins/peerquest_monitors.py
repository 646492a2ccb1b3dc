"""Filters for peerquest_monitors: the cron schedule spread per host, and checks built on the package.

The intervals, the jobs the self-check watches and the alert severities come
from the host-side package's own files (roles/peerquest_package/files/
peerquest_ops/monitors/schedule.py and core/constants.py), the modules
peerquest-monitor imports: the preflight, the cron file, the self-check's
settings and the program on the host cannot disagree.
"""

import hashlib
import zlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "peerquest_package" / "files" / "peerquest_ops"
CONSTANTS_FILE = PACKAGE_DIR / "core" / "constants.py"
SCHEDULE_FILE = PACKAGE_DIR / "monitors" / "schedule.py"


def _load(path):
    # Executed from its source, not imported: nothing is added to sys.path and no
    # __pycache__ is written into the package the role ships.
    namespace = {"__name__": path.stem, "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102 - the project's own file
    return namespace


CONSTANTS = _load(CONSTANTS_FILE)
SCHEDULE = _load(SCHEDULE_FILE)
INTERVALS = SCHEDULE["INTERVALS"]
EVERY = tuple(INTERVALS)
RECORDED = SCHEDULE["WATCHED_JOBS"]


def monitors_constant(name):
    """A value the checks share with the program: SEVERITIES (core), EVERY or WATCHED_JOBS (schedule), as lists."""
    value = {"SEVERITIES": CONSTANTS["SEVERITIES"], "EVERY": EVERY, "WATCHED_JOBS": RECORDED}[name]
    return list(value)


def interval_seconds(every):
    """Seconds of a job interval (1m, 5m, ...); 0 for an unknown one (the schedule check names it)."""
    return INTERVALS.get(every, 0)


def code_digest(subpackages):
    """sha256 over the package's top-level modules and those of the given subpackages, in a stable order."""
    digest = hashlib.sha256()
    files = sorted(PACKAGE_DIR.glob("*.py"))
    files += sorted(path for sub in subpackages for path in (PACKAGE_DIR / sub).rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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


def max_ages(jobs, host, integrity_host):
    """How long each watched job may stay silent before the self-check complains."""
    return {
        job["name"]: SCHEDULE["max_age"](jobs[job["name"]]["every"])
        for job in cron_jobs(jobs, host, integrity_host)
        if job["name"] in RECORDED
    }


class FilterModule:
    def filters(self):
        return {
            "peerquest_monitors_code_digest": code_digest,
            "peerquest_monitors_constant": monitors_constant,
            "peerquest_monitors_cron_jobs": cron_jobs,
            "peerquest_monitors_interval_seconds": interval_seconds,
            "peerquest_monitors_job_problems": job_problems,
            "peerquest_monitors_max_ages": max_ages,
        }
