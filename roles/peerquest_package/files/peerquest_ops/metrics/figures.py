"""What a job adds to its file besides its run (monitor.figures): families (name, type, samples)."""

from peerquest_ops.metrics import names


def patterns(pattern_settings, counts):
    """The errors job: matches per pattern in the window, and the threshold each is held to."""
    matches = [({"pattern": p["name"]}, int(counts.get(p["name"], 0))) for p in pattern_settings]
    thresholds = [({"pattern": p["name"]}, int(p["threshold"])) for p in pattern_settings]
    return [(names.PATTERN_MATCHES, "gauge", matches), (names.PATTERN_THRESHOLD, "gauge", thresholds)]


def slow_operations(count):
    """The performance job: slow operations in the window."""
    return [(names.SLOW_OPERATIONS, "gauge", [({}, int(count))])]


def integrity(result, audited_at):
    """The integrity job: a completed audit (status ok or issues) sets both; a failed one keeps the last (None)."""
    done = result.get("status") in ("ok", "issues") and result.get("total_issues") is not None
    return [
        (names.INTEGRITY_LAST_AUDIT, "gauge", [({}, round(audited_at, 3) if done else None)]),
        (names.INTEGRITY_ISSUES, "gauge", [({}, int(result["total_issues"]) if done else None)]),
    ]
