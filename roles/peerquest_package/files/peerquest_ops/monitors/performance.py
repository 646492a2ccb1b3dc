"""The performance job: slow operations by their duration, the mean timed operation against its baseline.

A slow operation is a timed line (performance.duration_regex: "took 6.2s",
"duration=5300ms") whose duration exceeds performance.slow_seconds; a line
that only says "slow" is no evidence. Slow operations are counted per
operation (durations.py names them) in one-minute buckets; more than
slow_threshold in the window alert, naming the slowest. Database failures
are the follower's (dbwatch.py), in seconds rather than at this job's pace.
"""

import time

from peerquest_ops.metrics import figures
from peerquest_ops.monitors.durations import Durations
from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.scan import empty_state, line_time, scan
from peerquest_ops.monitors.windows import BUCKET, above_share_of_baseline, bucket_key, prune, update_baseline

SLOWEST_SHOWN = 5


def _on_line(cfg, durations, slow, now):
    """on_line for scan(): each timed operation's seconds into its minute's [sum, count]; slow ones per operation."""
    timed = Durations(cfg["duration_regex"])
    limit = float(cfg["slow_seconds"])

    def on_line(line):
        parsed = timed.parse(line)
        if parsed is None:
            return
        seconds, op = parsed
        key = bucket_key(line_time(line, now))
        bucket = durations.setdefault(key, [0.0, 0])
        bucket[0] += seconds
        bucket[1] += 1
        if seconds > limit:
            entry = slow.setdefault(key, {}).setdefault(op, [0, 0.0])
            entry[0] += 1
            entry[1] = max(entry[1], seconds)

    return on_line


def _in_window(buckets, now, window):
    return [v for k, v in buckets.items() if int(k) + BUCKET > now - window and int(k) <= now]


def slow_in_window(slow, now, window):
    """{operation: [count, slowest seconds]} of the slow operations in the window."""
    per_op = {}
    for ops in _in_window(slow, now, window):
        for op, (count, longest) in ops.items():
            entry = per_op.setdefault(op, [0, 0.0])
            entry[0] += count
            entry[1] = max(entry[1], longest)
    return per_op


def slow_summary(per_op, shown=SLOWEST_SHOWN):
    """The slowest operations first: 'GET /quests/N/ 9.10s (3 slow)'."""
    ranked = sorted(per_op.items(), key=lambda item: (-item[1][1], -item[1][0], item[0]))
    text = ", ".join(f"{op} {longest:.2f}s ({count} slow)" for op, (count, longest) in ranked[:shown])
    more = len(ranked) - shown
    return text + (f", and {more} more operations" if more > 0 else "")


def _slow(monitor, cfg, per_op, minutes, fired):
    total = sum(count for count, _ in per_op.values())
    if total > cfg["slow_threshold"]:
        fired.append("slow")
        monitor.alert(
            cfg["slow_severity"],
            "performance:slow",
            f"{total} slow operations (over {float(cfg['slow_seconds']):g}s) in the last {minutes} minutes "
            f"(threshold {cfg['slow_threshold']}) in {len(per_op)} operations; slowest: {slow_summary(per_op)}",
        )
    return total


def _degradation(monitor, cfg, state, durations, now, fired):
    """The window's mean timed operation against the baseline; returns the mean (None: nothing timed)."""
    in_window = _in_window(durations, now, cfg["window_seconds"])
    count = sum(n for _, n in in_window)
    mean = sum(s for s, _ in in_window) / count if count else None
    baseline = state["baselines"].get("duration", {})
    if mean is not None:
        if above_share_of_baseline(mean, baseline, cfg["degradation_percent"], cfg["min_samples"]):
            fired.append("degradation")
            monitor.alert(
                cfg["degradation_severity"],
                "performance:degradation",
                f"mean operation time {mean:.2f}s over {count} timed operations is more than "
                f"{cfg['degradation_percent']}% of the baseline {baseline['value']:.2f}s",
            )
        state["baselines"]["duration"] = update_baseline(baseline, mean, now)
    return mean


def run_performance(monitor, now=None):
    cfg = monitor.config["performance"]
    now = now or time.time()
    window = cfg["window_seconds"]
    keep = max(window, 86400)
    state = monitor.read_state("performance", empty_state())
    for retired in ("slow", "db_errors"):  # counted by the word "slow" and a loose pattern before
        state["buckets"].pop(retired, None)
    durations = state["values"].setdefault("durations", {})
    slow = state["values"].setdefault("slow", {})
    total = scan(state, cfg["log_file"], {}, now, keep, on_line=_on_line(cfg, durations, slow, now))
    prune(durations, now, keep)
    prune(slow, now, keep)
    fired = []
    per_op = slow_in_window(slow, now, window)
    slow_count = _slow(monitor, cfg, per_op, window // 60, fired)
    monitor.figures += figures.slow_operations(slow_count)
    mean = _degradation(monitor, cfg, state, durations, now, fired)
    monitor.write_state("performance", state)
    monitor.mark_run("performance")
    shown = "none" if mean is None else f"{mean:.3f}s"
    log(f"performance: {total} new lines, slow={slow_count} mean={shown}, alerts {fired or 'none'}")
    return fired
