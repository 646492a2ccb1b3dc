"""The performance job: slow operations, database errors, the mean timed operation against its baseline."""

import re
import time

from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.scan import empty_state, line_time, scan
from peerquest_ops.monitors.windows import BUCKET, above_baseline, bucket_key, prune, update_baseline, window_count


def _duration_counter(cfg, durations, now):
    """on_line for scan(): adds each timed operation's seconds to its minute's [sum, count]."""
    duration = re.compile(cfg["duration_regex"])

    def timed(line):
        match = duration.search(line)
        if match:
            seconds = float(match.group("value")) / (1000.0 if match.group("unit") == "ms" else 1.0)
            bucket = durations.setdefault(bucket_key(line_time(line, now)), [0.0, 0])
            bucket[0] += seconds
            bucket[1] += 1

    return timed


def _thresholds(monitor, cfg, slow, db_errors, minutes, fired):
    if slow > cfg["slow_threshold"]:
        fired.append("slow")
        monitor.alert(
            cfg["slow_severity"],
            "performance:slow",
            f"{slow} slow operations in the last {minutes} minutes (threshold {cfg['slow_threshold']})",
        )
    if db_errors > cfg["db_error_threshold"]:
        fired.append("db_errors")
        monitor.alert(
            cfg["db_error_severity"],
            "performance:db_errors",
            f"{db_errors} database errors (error/timeout/connection) in the last {minutes} minutes",
        )


def _degradation(monitor, cfg, state, durations, now, fired):
    """The window's mean timed operation against the baseline; returns the mean (None: nothing timed)."""
    window = cfg["window_seconds"]
    in_window = [v for k, v in durations.items() if int(k) + BUCKET > now - window]
    count = sum(n for _, n in in_window)
    mean = sum(s for s, _ in in_window) / count if count else None
    baseline = state["baselines"].get("duration", {})
    if mean is not None:
        if above_baseline(mean, baseline, cfg["degradation_percent"], cfg["min_samples"], 0):
            fired.append("degradation")
            monitor.alert(
                cfg["degradation_severity"],
                "performance:degradation",
                f"mean operation time {mean:.2f}s over {count} timed operations is more than "
                f"{cfg['degradation_percent']}% above the baseline {baseline['value']:.2f}s",
            )
        state["baselines"]["duration"] = update_baseline(baseline, mean, now)
    return mean


def run_performance(monitor, now=None):
    cfg = monitor.config["performance"]
    now = now or time.time()
    window = cfg["window_seconds"]
    keep = max(window, 86400)
    rules = {"slow": re.compile(cfg["slow_regex"]), "db_errors": re.compile(cfg["db_error_regex"], re.IGNORECASE)}
    state = monitor.read_state("performance", empty_state())
    durations = state["values"].setdefault("durations", {})
    total = scan(state, cfg["log_file"], rules, now, keep, on_line=_duration_counter(cfg, durations, now))
    prune(durations, now, keep)
    fired = []
    slow = window_count(state["buckets"]["slow"], now, window)
    db_errors = window_count(state["buckets"]["db_errors"], now, window)
    _thresholds(monitor, cfg, slow, db_errors, window // 60, fired)
    mean = _degradation(monitor, cfg, state, durations, now, fired)
    monitor.write_state("performance", state)
    monitor.mark_run("performance")
    log(f"performance: {total} new lines, slow={slow} db_errors={db_errors} mean={mean}, alerts {fired or 'none'}")
    return fired
