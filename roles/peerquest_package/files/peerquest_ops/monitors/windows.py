"""Sliding windows of counts, failure rates and slowly moving baselines.

Events are counted into one-minute buckets keyed by their epoch second (as
text: the buckets live in JSON state files), so a window is the last N
seconds to the minute, whatever the clock hour.
"""

BUCKET = 60  # seconds per counting bucket


def bucket_key(when):
    return str(int(when // BUCKET * BUCKET))


def add_event(buckets, when, count=1):
    key = bucket_key(when)
    buckets[key] = buckets.get(key, 0) + count


def prune(buckets, now, keep_seconds):
    for key in [k for k in buckets if int(k) <= now - keep_seconds - BUCKET]:
        del buckets[key]


def window_count(buckets, now, window):
    """Events in the last `window` seconds (to the minute), whatever the clock hour."""
    start = now - window
    return sum(n for k, n in buckets.items() if int(k) + BUCKET > start and int(k) <= now)


def failure_rate(failures, successes):
    total = failures + successes
    return (100.0 * failures / total) if total else 0.0


def update_baseline(baseline, value, now, every=3600, alpha=0.3):
    """Exponentially weighted baseline, moved at most once per `every` seconds."""
    if baseline.get("updated") is not None and now - baseline["updated"] < every:
        return baseline
    if baseline.get("value") is None:
        return {"value": float(value), "samples": 1, "updated": now}
    return {
        "value": alpha * value + (1 - alpha) * baseline["value"],
        "samples": baseline.get("samples", 0) + 1,
        "updated": now,
    }


def above_baseline(current, baseline, increase_percent, min_samples, min_value):
    """True when current exceeds the baseline by more than increase_percent (50: more than 1.5 x baseline).

    The plan's "error rate increase > 50% from baseline": an increase, on top of the baseline.
    """
    if baseline.get("samples", 0) < min_samples or current < min_value:
        return False
    return current > baseline["value"] * (1 + increase_percent / 100.0)


def above_share_of_baseline(current, baseline, percent_of, min_samples, min_value=0):
    """True when current is more than percent_of percent OF the baseline (200: more than 2 x baseline).

    The plan's "performance degradation > 200% of baseline": a share of the baseline, not an
    increase on top of it; exactly twice the baseline does not alert, anything above does.
    """
    if baseline.get("samples", 0) < min_samples or current < min_value:
        return False
    return current > baseline["value"] * percent_of / 100.0
