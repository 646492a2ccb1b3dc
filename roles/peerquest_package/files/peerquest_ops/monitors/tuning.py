"""Which inventory variable sets the threshold behind an alert key, and a value to try instead.

    suggest(config, "errors:approval_failed")
    # ('peerquest_monitors_error_patterns (name approval_failed) threshold', 3, 5)

Keys are the monitors' own, without the host. The current value is read from
the monitors' settings (what the inventory rendered); the value offered
raises it by half (at least one step): a start for the weekly review, not a
verdict. A key whose threshold is not a number (a follower pattern, a
failing probe) names the variable with no value. None: no threshold sets it.
"""

import math

# Key -> (variable, path in the monitors' settings); the pattern, rate and event keys are looked up by name.
SIMPLE = {
    "errors:error_rate": (
        "peerquest_monitors_error_rate_increase_percent",
        ("errors", "error_rate", "increase_percent"),
    ),
    "performance:slow": ("peerquest_monitors_slow_threshold", ("performance", "slow_threshold")),
    "performance:degradation": ("peerquest_monitors_degradation_percent", ("performance", "degradation_percent")),
    "database:failures": ("peerquest_monitors_db_error_threshold", ("database", "threshold")),
    "integrity:error": ("peerquest_monitors_integrity_timeout", ("integrity", "timeout")),
    "health:unavailable": ("peerquest_monitors_health_timeout", ("health", "timeout")),
    "health:check_failed": ("peerquest_monitors_health_timeout", ("health", "timeout")),
}


def raised(value, limit=None):
    """Half as much again, at least one more; never past limit."""
    bigger = max(value + 1, math.ceil(value * 1.5))
    return min(bigger, limit) if limit is not None else bigger


def _get(config, path):
    for part in path:
        config = config.get(part) if isinstance(config, dict) else None
    return config


def _named(items, name):
    return next((item for item in items or [] if item.get("name") == name), None)


def _listed(config, key):
    """A key of a named pattern, rate or security event: (variable text, current, offered)."""
    group, _, name = key.partition(":")
    if group == "errors" and name.endswith("_rate"):
        rate = _named(_get(config, ("errors", "rates")), name[: -len("_rate")])
        if rate:
            variable = f"peerquest_monitors_rates (name {rate['name']}) max_percent"
            return variable, rate["max_percent"], raised(rate["max_percent"], 100)
    if group == "errors":
        pattern = _named(_get(config, ("errors", "patterns")), name)
        if pattern:
            variable = f"peerquest_monitors_error_patterns (name {name}) threshold"
            return variable, pattern["threshold"], raised(pattern["threshold"])
    if group == "security":
        event = _named(_get(config, ("security", "events")), name)
        if event:
            variable = f"peerquest_monitors_security_events (name {name}) threshold"
            return variable, event["threshold"], raised(event["threshold"])
    if group == "follow":
        pattern = name.partition(":")[0]
        return f"peerquest_monitors_follow_patterns (name {pattern}) regex: narrow it", None, None
    return None


def suggest(config, key):
    """(variable, current value, value to try) for key; None when no inventory threshold is behind it."""
    if key in SIMPLE:
        variable, path = SIMPLE[key]
        current = _get(config, path)
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            return variable, current, raised(current)
        return variable, None, None
    return _listed(config, key)
