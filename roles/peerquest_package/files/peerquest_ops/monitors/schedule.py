"""What the monitors' schedule and their self-check agree on.

The role's filter plugin (roles/peerquest_monitors/filter_plugins/) loads this
file by path on the control machine: the preflight, the cron file and the
self-check's allowed silences come from the same values the commands on the
host use. Keep it free of imports from the package.
"""

# How often a job may run (peerquest_monitors_jobs.<job>.every), and its seconds.
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400, "1w": 604800, "1mo": 2678400}

# Jobs that record each run in last_run.json and that the self-check watches:
# the names the commands pass to Monitor.mark_run (the self-check records its
# own runs too, but does not watch itself).
WATCHED_JOBS = (
    "errors",
    "performance",
    "security",
    "health",
    "health_quick",
    "integrity",
    "digest",
    "review",
    "threshold_review",
)
SELFCHECK_JOB = "selfcheck"

# Slack on top of two intervals before a watched job counts as overdue.
GRACE_SECONDS = 120


def max_age(every):
    """Seconds a job run `every` may stay silent before the self-check names it."""
    return 2 * INTERVALS[every] + GRACE_SECONDS


def interval_of(max_age_seconds):
    """The interval behind a max_age() (the self-check's settings carry those)."""
    return (max_age_seconds - GRACE_SECONDS) // 2
