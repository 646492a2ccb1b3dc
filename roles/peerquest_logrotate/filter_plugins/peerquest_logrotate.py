"""Turn the retention policy into one logrotate rule per file.

The plan keeps each level for its own time (DEBUG 7 days ... CRITICAL
forever); a file is kept as long as the lowest level it receives needs.
"""

import math
import os.path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FOREVER = "forever"
ROTATIONS_PER_DAY = {"hourly": 24.0, "daily": 1.0, "weekly": 1 / 7, "monthly": 1 / 30}


def _days_problem(where, value):
    if value == FOREVER:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            return f"{where}: retention must be a whole number of days or 'forever', got {value!r}"
    if value <= 0:
        return f"{where}: retention must be at least 1 day, got {value}"
    return None


def logrotate_problems(retention, files, file_retention):
    """Return one message per mistake, each naming the variable path."""
    problems = []
    for level in LEVELS:
        if level not in retention:
            problems.append(f"peerquest_logrotate_retention_days: missing level {level}")
    for level, days in retention.items():
        if level not in LEVELS:
            problems.append(
                f"peerquest_logrotate_retention_days.{level}: unknown log level; use one of {', '.join(LEVELS)}"
            )
        problems.append(_days_problem(f"peerquest_logrotate_retention_days.{level}", days))
    for name, days in file_retention.items():
        problems.append(_days_problem(f"peerquest_logrotate_file_retention.{name}", days))
    for index, spec in enumerate(files):
        where = f"peerquest_logrotate_files[{index}]"
        path = spec.get("path", "")
        if not str(path).startswith("/"):
            problems.append(f"{where}.path: must be an absolute path, got {path!r}")
        if "retention_days" in spec:
            problems.append(_days_problem(f"{where}.retention_days", spec["retention_days"]))
        elif str(spec.get("level", "")).upper() not in LEVELS:
            problems.append(f"{where}.level: unknown log level {spec.get('level')!r}; use one of {', '.join(LEVELS)}")
    return [p for p in problems if p]


def _longer(a, b):
    if a is None:
        return b
    if FOREVER in (a, b):
        return FOREVER
    return max(a, b)


def logrotate_rules(files, retention, file_retention, frequency="daily"):
    """One rule per distinct path: rotate count and maxage from the retention."""
    rules = {}
    owners = {}
    for spec in files:
        # A file written by another account (monitoring.log) is rotated as that account.
        owners.setdefault(spec["path"], {k: spec[k] for k in ("owner", "group") if spec.get(k)})
        path = spec["path"]
        days = file_retention.get(path, file_retention.get(os.path.basename(path)))
        if days is None:
            days = spec.get("retention_days", retention.get(str(spec.get("level", "")).upper()))
        if days != FOREVER:
            days = int(days)
        # A path listed twice keeps the longer retention.
        rules[path] = _longer(rules.get(path), days)
    out = []
    for path, days in sorted(rules.items()):
        if days == FOREVER:
            out.append({"path": path, "retention": FOREVER, "rotate": -1, "maxage": None, **owners[path]})
        else:
            rotate = max(1, math.ceil(days * ROTATIONS_PER_DAY[frequency]))
            out.append({"path": path, "retention": days, "rotate": rotate, "maxage": days, **owners[path]})
    return out


class FilterModule:
    def filters(self):
        return {
            "peerquest_logrotate_problems": logrotate_problems,
            "peerquest_logrotate_rules": logrotate_rules,
        }
