#!/usr/bin/env python3
"""Benchmark: how fast peerquest-monitor's error scan reads a busy log, and its memory.

    python3 scripts/bench-monitor.py [LINES]

Writes LINES log lines (default 1,000,000) in the app's verbose format, with a
mix of the plan's patterns, then times one `errors` run over them (the worst
case: a first run or a very busy 5 minutes) and a second run with nothing new.
Alerts go to a no-op command so only the scan is measured.
"""

import json
import pathlib
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MESSAGES = [
    "INFO {t} views 4242 140 Application approved for quest 12",
    "INFO {t} views 4242 140 Quest assigned to user 7",
    "INFO {t} views 4242 140 GET /quests/ 200",
    "ERROR {t} views 4242 140 Application approval failed for quest 12",
    "WARNING {t} views 4242 140 slow query took 1200ms",
]


# The host-side package the command runs (roles/peerquest_package), from this checkout.
sys.path.insert(0, str(ROOT / "roles" / "peerquest_package" / "files"))
sys.dont_write_bytecode = True  # no __pycache__ left in the package the role ships

from peerquest_ops.monitors.base import Monitor  # noqa: E402
from peerquest_ops.monitors.errors import run_errors  # noqa: E402


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    defaults = __import__("yaml").safe_load((ROOT / "roles/peerquest_monitors/defaults/main.yml").read_text())
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        log = scratch / "django.log"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S,000")
        with open(log, "w", encoding="utf-8") as handle:
            for i in range(count):
                handle.write(MESSAGES[i % len(MESSAGES)].format(t=stamp) + "\n")
        log_mb = log.stat().st_size / 1e6
        (scratch / "state").mkdir()
        config = {
            "state_dir": str(scratch / "state"),
            "alert_command": "/bin/true",
            "host": "bench",
            "digest": {"enabled": False},
            # The follower is measured elsewhere: the scan does not stand in for it here.
            "follow": {"enabled": False, "patterns": []},
            "errors": {
                "log_file": str(log),
                "window_seconds": 3600,
                "patterns": defaults["peerquest_monitors_error_patterns"],
                "rates": defaults["peerquest_monitors_rates"],
                "error_rate": {"regex": defaults["peerquest_monitors_error_rate_regex"], "increase_percent": 50,
                               "min_events": 5, "min_samples": 3, "severity": "WARNING"},
            },
        }
        monitor = Monitor(config)
        started = time.perf_counter()
        run_errors(monitor)
        first = time.perf_counter() - started
        started = time.perf_counter()
        run_errors(monitor)
        second = time.perf_counter() - started
    result = {
        "lines": count,
        "log_mb": round(log_mb, 1),
        "first_run_seconds": round(first, 2),
        "lines_per_second": int(count / first),
        "second_run_seconds": round(second, 4),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
