"""Each figure of the benchmark: one measurement, repeated, its median; ours beside the seed's in the same run.

The seed's pipeline is its error_monitor.sh: for each of its patterns,
grep PATTERN errors.log | grep "$(date '+%Y-%m-%d %H')" | wc -l.
"""

import json
import statistics

from bench import logs

SEED_PATTERNS = ("CRITICAL:", "Application approval failed")
SEED_SCRIPT = """for p in {patterns}; do grep "$p" {log} | grep "$(date '+%Y-%m-%d %H')" | wc -l; done"""
NO_BUDGET = 10**9  # catch-up is measured reading everything, never sampling


def seed_script(log):
    return SEED_SCRIPT.format(patterns=" ".join(f'"{p}"' for p in SEED_PATTERNS), log=log)


def median(values):
    return statistics.median(values) if values else None


def _position(host, path, offset):
    """The errors job's state as a run that stopped at offset left it."""
    state = {"position": {"inode": path.stat().st_ino, "offset": offset}, "buckets": {}, "baselines": {}, "values": {}}
    (host.state_dir / "errors.json").write_text(json.dumps(state))


def _new_lines_read(host):
    for line in reversed(host.job_lines()):
        if " errors: " in line and " new lines" in line:
            return int(line.split(" errors: ", 1)[1].split()[0])
    return None


def steady(host, path, runs, new_lines):
    """The errors job with new_lines new lines (five minutes' worth) on a log of path's size, and the seed's."""
    base = path.stat().st_size
    host.write_config(path)
    ours, seed = [], []
    for _ in range(runs):
        host.reset_state()
        host.follower_alive()
        _position(host, path, base)
        logs.append_recent(path, new_lines, 300)
        try:
            ours.append(host.monitor("errors"))
            seed.append(host.shell(seed_script(path)))
            read = _new_lines_read(host)
        finally:
            logs.truncate(path, base)
    cpu, seed_cpu = median([r.cpu for r in ours]), median([r.cpu for r in seed])
    return {
        "log_mb": round(base / 2**20, 1),
        "new_lines": new_lines,
        "lines_read": read,
        "cpu_ms": round(cpu * 1000, 1),
        "wall_ms": round(median([r.wall for r in ours]) * 1000, 1),
        "max_rss_mb": round(max(r.max_rss_mb for r in ours), 1),
        "seed_cpu_ms": round(seed_cpu * 1000, 1),
        "seed_wall_ms": round(median([r.wall for r in seed]) * 1000, 1),
        "seed_ratio": round(seed_cpu / cpu, 1) if cpu else None,
        "all_ok": all(r.code == 0 for r in ours),
    }


def first_run(host, path, runs):
    """No position yet, a day's log of path's size whose last hour is recent: the window found by time."""
    base = path.stat().st_size
    hour = logs.lines_per_minute(base) * 60
    host.write_config(path)
    results, window_bytes, read = [], 0, None
    for _ in range(runs):
        host.reset_state()
        host.follower_alive()
        window_bytes = logs.append_recent(path, hour, 3600)
        try:
            results.append(host.monitor("errors"))
            read = _new_lines_read(host)
        finally:
            logs.truncate(path, base)
    return {
        "log_mb": round((base + window_bytes) / 2**20, 1),
        "window_mb": round(window_bytes / 1e6, 1),
        "window_lines": hour,
        "lines_read": read,
        "cpu_ms": round(median([r.cpu for r in results]) * 1000, 1),
        "wall_ms": round(median([r.wall for r in results]) * 1000, 1),
        "max_rss_mb": round(max(r.max_rss_mb for r in results), 1),
    }


def catch_up(host, path, runs, megabytes):
    """A busy five minutes (megabytes of new lines) read by one errors run, everything counted."""
    base = path.stat().st_size
    lines = int(megabytes * 1e6 / (len(logs.minute_block(1000)) / 1000))
    host.write_config(path, cpu_budget_ms=NO_BUDGET)
    results, written = [], 0
    for _ in range(runs):
        host.reset_state()
        host.follower_alive()
        _position(host, path, base)
        written = logs.append_recent(path, lines, 300)
        try:
            results.append(host.monitor("errors"))
        finally:
            logs.truncate(path, base)
    cpu, wall = median([r.cpu for r in results]), median([r.wall for r in results])
    return {
        "mb": round(written / 1e6, 1),
        "lines": lines,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "mb_per_cpu_s": round(written / 1e6 / cpu, 1),
        "mb_per_s": round(written / 1e6 / wall, 1),
        "max_rss_mb": round(max(r.max_rss_mb for r in results), 1),
    }
