"""The monitors' own uptime (the plan's "monitoring system uptime > 99.9 %"), counted as they run.

    count_run(monitor, "errors", now)             # Monitor.settle, after each scheduled run
    share = measure(monitor, since, now, {"errors": 300, "health_quick": 60})

uptime.json (monitors' state) holds, per hour, how many runs each job finished
and, sampled at every run, whether the CRITICAL follower's heartbeat was fresh
(within its takeover time). A job's uptime is the share of the runs its
interval asks for since the period began (or since its first counted run)
that ran to their end; a run skipped because the previous one still held its
lock, or one that failed, is missing. Jobs run less often than hourly are left
out: one missed weekly run would say nothing about a month's uptime.
Hours older than KEEP_SECONDS are dropped.
"""

import math

from peerquest_ops.core.locking import locked

STATE = "uptime"
KEEP_SECONDS = 40 * 86400
HOUR = 3600
# Jobs run at least this often count towards uptime.
MAX_INTERVAL = 3600


def _hour(epoch):
    return str(int(epoch // HOUR * HOUR))


def count_run(monitor, job, now):
    """One finished run of job, and a sample of the follower's heartbeat when it is enabled."""
    follow = monitor.config.get("follow") or {}
    alive = None
    if follow.get("enabled"):
        # Here, not at the top: a job that does not follow needs none of the follower's imports.
        from peerquest_ops.monitors.follow import follower_silent_for

        silent = follower_silent_for(monitor, now)
        alive = silent is not None and silent <= follow["takeover_seconds"]
    with locked(monitor.state_path(STATE) + ".lock"):
        state = monitor.read_state(STATE, {})
        runs = state.setdefault("runs", {}).setdefault(job, {})
        hour = _hour(now)
        runs[hour] = runs.get(hour, 0) + 1
        state.setdefault("first", {}).setdefault(job, now)
        if alive is not None:
            sample = state.setdefault("follower", {}).setdefault(hour, [0, 0])
            sample[0] += int(alive)
            sample[1] += 1
        oldest = _hour(now - KEEP_SECONDS)
        for hours in [*state["runs"].values(), state.get("follower", {})]:
            for old in [h for h in hours if int(h) < int(oldest)]:
                del hours[old]
        monitor.write_state(STATE, state)


def measure(monitor, since, now, intervals):
    """{"jobs": {job: [ran, expected]}, "follower": [alive, samples], "percent": float or None}.

    intervals: seconds between runs per scheduled job; the period starts at the first whole hour after since.
    """
    state = monitor.read_state(STATE, {})
    start = math.ceil(since / HOUR) * HOUR
    jobs = {}
    for job, interval in sorted(intervals.items()):
        if interval > MAX_INTERVAL:
            continue
        first = state.get("first", {}).get(job)
        begin = max(start, first if first is not None else now)
        expected = int((now - begin) // interval)
        counted = sum(n for h, n in state.get("runs", {}).get(job, {}).items() if start <= int(h) < now)
        jobs[job] = [min(counted, expected), expected]
    follower = [0, 0]
    for hour, (alive, samples) in state.get("follower", {}).items():
        if start <= int(hour) < now:
            follower[0] += alive
            follower[1] += samples
    ran = sum(r for r, _ in jobs.values()) + follower[0]
    expected = sum(e for _, e in jobs.values()) + follower[1]
    return {"jobs": jobs, "follower": follower, "percent": 100.0 * ran / expected if expected else None}
