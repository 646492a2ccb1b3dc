"""The errors job: log patterns over a threshold, failure rates, the error rate against its baseline."""

import json
import math
import re
import time

from peerquest_ops.metrics import figures
from peerquest_ops.monitors.dbwatch import db_pass
from peerquest_ops.monitors.follow import follower_alive, stand_in_for_follower
from peerquest_ops.monitors.runtime import log
from peerquest_ops.monitors.sampling import Budget
from peerquest_ops.monitors.scan import compile_rules, empty_state, scan
from peerquest_ops.monitors.windows import above_baseline, failure_rate, update_baseline, window_count

ERROR_RATE = "_errors"  # the rule counting every ERROR/CRITICAL line; "_" keeps it out of the digest


def _rules(cfg):
    rules = compile_rules(cfg["patterns"])
    for rate in cfg["rates"]:
        rules[f"{rate['name']}:failure"] = re.compile(rate["failure"])
        rules[f"{rate['name']}:success"] = re.compile(rate["success"])
    rules[ERROR_RATE] = re.compile(cfg["error_rate"]["regex"])
    return rules


def _patterns(monitor, cfg, counts, minutes, fired):
    for pattern in cfg["patterns"]:
        count = counts[pattern["name"]]
        if count > pattern["threshold"]:
            fired.append(pattern["name"])
            monitor.alert(
                pattern["severity"],
                f"errors:{pattern['name']}",
                f'{count} x "{pattern["label"]}" in the last {minutes} minutes '
                f"(threshold {pattern['threshold']}) in {cfg['log_file']}",
            )


def _rates(monitor, cfg, counts, minutes, fired):
    for rate in cfg["rates"]:
        failures, successes = counts[f"{rate['name']}:failure"], counts[f"{rate['name']}:success"]
        percent = failure_rate(failures, successes)
        if failures + successes >= rate["min_events"] and percent > rate["max_percent"]:
            fired.append(f"{rate['name']}_rate")
            monitor.alert(
                rate["severity"],
                f"errors:{rate['name']}_rate",
                f"{rate['label']} failure rate {percent:.1f}% ({failures} of {failures + successes}) "
                f"in the last {minutes} minutes, above {rate['max_percent']}%",
            )


def _error_rate(monitor, state, spec, current, minutes, now, fired):
    baseline = state["baselines"].get(ERROR_RATE, {})
    if above_baseline(current, baseline, spec["increase_percent"], spec["min_samples"], spec["min_events"]):
        fired.append("error_rate")
        increase = 100.0 * (current / baseline["value"] - 1) if baseline["value"] else math.inf
        monitor.alert(
            spec["severity"],
            "errors:error_rate",
            f"error rate {current} in the last {minutes} minutes is {increase:.0f}% above "
            f"the baseline {baseline['value']:.1f} (threshold +{spec['increase_percent']}%)",
        )
    state["baselines"][ERROR_RATE] = update_baseline(baseline, current, now)


def _budget(monitor):
    """The run's CPU budget, sparing every line the follower's patterns match; None without one."""
    budget_ms = monitor.config.get("cpu_budget_ms")
    if budget_ms is None:
        return None
    return Budget("errors", budget_ms, compile_rules(monitor.config.get("follow", {}).get("patterns", [])))


def run_errors(monitor, now=None):
    cfg = monitor.config["errors"]
    now = now or time.time()
    window = cfg["window_seconds"]
    minutes = window // 60
    stand_in_for_follower(monitor, now)
    if not follower_alive(monitor, now):
        db_pass(monitor, now)  # database failures, the follower's when it runs
    rules = _rules(cfg)
    state = monitor.read_state("errors", empty_state())
    # A first run reads the window, found by time; a backlog over the CPU budget is sampled (sampling.py).
    budget = _budget(monitor)
    total = scan(state, cfg["log_file"], rules, now, max(window, 86400), since=now - window, budget=budget)
    counts = {name: window_count(state["buckets"][name], now, window) for name in rules}
    monitor.figures += figures.patterns(cfg["patterns"], counts)
    fired = []
    _patterns(monitor, cfg, counts, minutes, fired)
    _rates(monitor, cfg, counts, minutes, fired)
    _error_rate(monitor, state, cfg["error_rate"], counts[ERROR_RATE], minutes, now, fired)
    monitor.write_state("errors", state)
    monitor.mark_run("errors")
    log(f"errors: {total} new lines, window counts {json.dumps(counts, sort_keys=True)}, alerts {fired or 'none'}")
    return fired
