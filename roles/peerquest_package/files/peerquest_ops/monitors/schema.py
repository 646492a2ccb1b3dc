"""The monitors' settings file (monitors.json, rendered by the role): what check-config refuses.

Each problem names its key; every regular expression must compile. The
severities are core.constants.SEVERITIES, the same the role's preflight and
peerquest-alert accept.
"""

import re

from peerquest_ops.core.constants import SEVERITIES

REQUIRED = ("state_dir", "alert_command", "errors", "performance", "health", "integrity", "selfcheck", "follow")
DURATION_GROUPS = {"value", "unit"}


def regex_problem(where, regex):
    try:
        re.compile(regex)
    except (re.error, TypeError) as exc:
        return [f"{where}: not a valid regular expression: {exc}"]
    return []


def _counted_pattern_problems(where, item):
    """A {regex, severity, threshold} item: what errors.patterns and security.events share."""
    problems = regex_problem(f"{where}.regex", item.get("regex"))
    if item.get("severity") not in SEVERITIES:
        problems.append(f"{where}.severity: must be one of {', '.join(SEVERITIES)}")
    if not isinstance(item.get("threshold"), int) or item["threshold"] < 0:
        problems.append(f"{where}.threshold: must be a whole number >= 0")
    return problems


def _errors_problems(errors):
    problems = []
    for index, item in enumerate(errors.get("patterns", [])):
        problems += _counted_pattern_problems(f"errors.patterns[{index}]", item)
    for index, item in enumerate(errors.get("rates", [])):
        where = f"errors.rates[{index}]"
        problems += regex_problem(f"{where}.failure", item.get("failure"))
        problems += regex_problem(f"{where}.success", item.get("success"))
        if not isinstance(item.get("max_percent"), (int, float)) or not 0 <= item["max_percent"] <= 100:
            problems.append(f"{where}.max_percent: must be between 0 and 100")
    problems += regex_problem("errors.error_rate.regex", errors.get("error_rate", {}).get("regex"))
    return problems


def _performance_problems(perf):
    problems = []
    problems += regex_problem("performance.duration_regex", perf.get("duration_regex"))
    if perf.get("duration_regex") and not regex_problem("", perf["duration_regex"]):
        groups = re.compile(perf["duration_regex"]).groupindex
        if not DURATION_GROUPS <= set(groups):
            problems.append("performance.duration_regex: needs named groups 'value' and 'unit'")
    return problems


def _security_problems(security):
    problems = []
    for index, item in enumerate(security.get("events", [])):
        where = f"security.events[{index}]"
        problems += _counted_pattern_problems(where, item)
        if not isinstance(item.get("window"), int) or item["window"] < 1:
            problems.append(f"{where}.window: must be a whole number of minutes >= 1")
    if not isinstance(security.get("log_files"), list):
        problems.append("security.log_files: must be a list of paths")
    return problems


def _metrics_problems(metrics):
    """The textfile collector's directory: empty (off) or an absolute path."""
    directory = metrics.get("textfile_dir") if isinstance(metrics, dict) else None
    if not isinstance(directory, str) or (directory and not directory.startswith("/")):
        return ["metrics.textfile_dir: must be an absolute path, or empty to turn the metrics off"]
    return []


# The reviews' targets: key -> (lowest, highest) accepted.
REVIEW_TARGETS = {
    "false_positive_max_percent": (0, 100),
    "acknowledged_min_percent": (0, 100),
    "uptime_min_percent": (0, 100),
    "detect_max_seconds": (1, None),
    "resolve_max_seconds": (1, None),
    "retention_days": (1, None),
}


def _review_problems(review):
    """The reviews' targets, report directory and retention."""
    if not isinstance(review, dict):
        return ["review: must be an object"]
    problems = []
    for key, (low, high) in REVIEW_TARGETS.items():
        value = review.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low or (high and value > high):
            limits = f"between {low} and {high}" if high else f"at least {low}"
            problems.append(f"review.{key}: must be a number {limits}")
    if not isinstance(review.get("report_dir"), str) or not review["report_dir"].startswith("/"):
        problems.append("review.report_dir: must be an absolute path")
    return problems


def config_problems(config):
    """Each mistake names its key; regexes must compile."""
    if not isinstance(config, dict):
        return ["must be a JSON object"]
    problems = [f"missing key {key!r}" for key in REQUIRED if key not in config]
    if problems:
        return problems
    problems += _errors_problems(config["errors"])
    problems += _performance_problems(config["performance"])
    if "security" in config:
        problems += _security_problems(config["security"])
    if "database" in config:
        problems += regex_problem("database.regex", config["database"].get("regex"))
    if "metrics" in config:
        problems += _metrics_problems(config["metrics"])
    if "review" in config:
        problems += _review_problems(config["review"])
    budget = config.get("cpu_budget_ms", 0)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        problems.append("cpu_budget_ms: must be a whole number of milliseconds >= 0")
    hold = config["follow"].get("hold_seconds", 0)
    if not isinstance(hold, (int, float)) or isinstance(hold, bool) or hold < 0:
        problems.append("follow.hold_seconds: must be a number of seconds >= 0")
    for index, item in enumerate(config["follow"].get("patterns", [])):
        problems += regex_problem(f"follow.patterns[{index}].regex", item.get("regex"))
    return problems
