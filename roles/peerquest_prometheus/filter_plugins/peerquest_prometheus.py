"""Durations and the rule unit tests of peerquest_prometheus.

`peerquest_prometheus_seconds`: a Prometheus duration ("90s", "1h30m", "7d")
in whole seconds.

`peerquest_prometheus_rule_tests`: the `promtool test rules` files for the
rules the role renders, computed from the same values (thresholds, windows,
for: durations), so a site's own values are tested too. Each alerting rule
gets series that make it fire and then resolve (the Watchdog only fires); an
alert without a scenario here is an error, so a new rule cannot go untested.
"""

import math
import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")
PART = re.compile(r"(\d+)(ms|[smhdwy])")
# Steps a test may span at one evaluation interval before it moves to the file
# with a coarser interval (promtool evaluates every rule at every step).
MAX_STEPS = 400
# Prometheus' lookback for instant vectors.
LOOKBACK = 300


class RuleTestError(ValueError):
    pass


def seconds(value):
    """A Prometheus duration in whole seconds ("0s" is 0)."""
    if isinstance(value, bool):
        raise RuleTestError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text == "0":
        return 0
    if not DURATION.match(text):
        raise RuleTestError(f"not a Prometheus duration (e.g. 90s, 5m, 1h30m, 7d): {value!r}")
    return int(sum(int(n) * UNITS[u] for n, u in PART.findall(text)))


def is_duration(value):
    try:
        seconds(value)
    except RuleTestError:
        return False
    return True


def _fmt(seconds_):
    """Seconds as a promtool duration."""
    seconds_ = int(seconds_)
    return f"{seconds_ // 60}m" if seconds_ % 60 == 0 else f"{seconds_}s"


def _num(value):
    value = float(value)
    return str(int(value)) if value == int(value) else repr(value)


def compress(values):
    """A list of numbers in promtool's expanding notation ("a+bxn" runs)."""
    out, i = [], 0
    while i < len(values):
        j = i + 1
        step = values[j] - values[i] if j < len(values) else 0
        while j < len(values) and math.isclose(values[j] - values[j - 1], step, abs_tol=1e-9):
            j += 1
        run = j - i - 1
        if run == 0:
            out.append(_num(values[i]))
        else:
            sign = "+" if step >= 0 else "-"
            out.append(f"{_num(values[i])}{sign}{_num(abs(step))}x{run}")
        i = j
    return " ".join(out)


def _steps(duration, step):
    return int(math.ceil(duration / step))


class Case:
    """One alert's test: series (lists of values per step), eval steps firing / resolved."""

    def __init__(self, alert, series, fire, resolve, labels=None):
        self.alert, self.series, self.fire, self.resolve = alert, series, fire, resolve
        self.labels = labels or {}


def _phases(a, b, c, good, bad):
    return [good] * a + [bad] * b + [good] * c


def _gauge(alert, series, good, bad, hold, step, labels=None):
    a = 5
    b = _steps(hold, step) + 3
    c = _steps(LOOKBACK, step) + 3
    return Case(alert, {series: _phases(a, b, c, good, bad)}, a + b - 1, a + b + c - 1, labels)


def _counter(increments):
    total, out = 0.0, []
    for inc in increments:
        total += inc
        out.append(total)
    return out


def _ratio_case(alert, p, step, event):
    window, hold = p["rate_window"], p["rate_for"]
    limit = float(p[f"{event}_failure_percent"]) / 100
    target = (1 + limit) / 2
    ok_per_step = max(10, math.ceil(2 * float(p["rate_min_events"]) * step / max(window, step)))
    bad_per_step = math.ceil(ok_per_step * target / (1 - target))
    a = 5
    b = _steps(window + hold, step) + 3
    c = _steps(window + LOOKBACK, step) + 3
    ok = [ok_per_step] * (a + b + c)
    failed = [0] * a + [bad_per_step] * b + [0] * c
    lab = 'instance="app1",job="mtail"'
    return Case(
        alert,
        {
            f'peerquest_log_events_total{{event="{event}_succeeded",{lab}}}': _counter(ok),
            f'peerquest_log_events_total{{event="{event}_failed",{lab}}}': [0.0] + _counter(failed)[:-1],
        },
        a + b - 1,
        a + b + c - 1,
    )


def _baseline_spike(p, step, factor, base, min_current):
    """Steps (a, b, c) and the spike value for a value `factor` times above its baseline.

    base: the value per step before and after the spike; min_current: the least spike value per step.
    The baseline window may take in part of the spike (it ends baseline_offset ago), which is allowed for.
    """
    window, offset, rate_window, hold = p["baseline_window"], p["baseline_offset"], p["rate_window"], p["baseline_for"]
    a = _steps(window + offset, step) + 3
    b = _steps(rate_window + hold, step) + 4
    c = _steps(rate_window + LOOKBACK, step) + 3
    inside = max(0, b * step - offset + step)  # spike seconds inside the baseline window, at most
    share = min(1.0, inside / window)
    if factor * share >= 0.8:
        raise RuleTestError(
            "peerquest_prometheus_baseline_window is too short against the rate window, the for: duration and "
            "the offset: the spike itself would become the baseline"
        )
    spike = 3 * factor * base * (1 - share) / (1 - factor * share)
    return a, b, c, max(spike, min_current)


def _error_case(p, step):
    factor = 1 + float(p["error_increase_percent"]) / 100
    base = 1.0
    min_current = (float(p["error_min_per_hour"]) + 1) * step / 3600 * 2
    a, b, c, spike = _baseline_spike(p, step, factor, base, min_current)
    spike = math.ceil(spike)
    inc = [base] * a + [spike] * b + [base] * c
    return Case(
        "PeerQuestErrorRateAboveBaseline",
        {'peerquest_log_lines_total{level="ERROR",instance="app1",job="mtail"}': [0.0] + _counter(inc)[:-1]},
        a + b - 1,
        a + b + c - 1,
    )


def _performance_case(p, step):
    factor = float(p["degradation_percent"]) / 100
    latency = 0.1
    a, b, c, slow = _baseline_spike(p, step, factor, latency, 0)
    per_step = max(10, math.ceil(2 * float(p["degradation_min_requests"]) * step / max(p["rate_window"], step)))
    lat = [latency] * a + [slow] * b + [latency] * c
    count = [per_step] * len(lat)
    lab = 'instance="app1",job="mtail",method="GET",view="quest_list"'
    return Case(
        "PeerQuestPerformanceDegraded",
        {
            f"peerquest_http_request_duration_seconds_sum{{{lab}}}": [0.0] + _counter([per_step * x for x in lat])[:-1],
            f"peerquest_http_request_duration_seconds_count{{{lab}}}": [0.0] + _counter(count)[:-1],
        },
        a + b - 1,
        a + b + c - 1,
    )


def _uptime_case(p, step):
    window = p["uptime_window"]
    share_down = 1 - float(p["uptime_min_percent"]) / 100
    a = 2
    d = _steps(share_down * window, step) + 2
    c = _steps(window, step) + 3
    series = f'probe_success{{instance="app1",job="{p["job_quick"]}"}}'
    return Case("PeerQuestUptimeLow", {series: _phases(a, d, c, 1, 0)}, a + d, a + d + c - 1)


def _heartbeat(series, max_age, step, alert, labels=None):
    a = 5
    b = _steps(max_age, step) + 3
    c = 4
    values = []
    for i in range(a + b + c):
        frozen = a <= i < a + b
        values.append(float((a - 1) * step if frozen else i * step))
    return Case(alert, {series: values}, a + b - 1, a + b + 1, labels)


def _critical_log_case(p, step):
    a = 5
    window = p["critical_log_window"]
    c = _steps(window + LOOKBACK, step) + 3
    values = [0.0] * a + [1.0] * (c + 1)
    return Case(
        "PeerQuestCriticalLogLine",
        {'peerquest_log_lines_total{level="CRITICAL",instance="app1",job="mtail"}': values},
        a + 1,
        a + c,
    )


def scenarios(p):
    """Every alert's case as build(step): it makes the case at a step length (seconds)."""
    node = 'instance="app1",job="node"'
    unit = 'node_systemd_unit_state{{instance="app1",job="node",name="{}",state="active",type="service"}}'
    quick = f'probe_success{{instance="app1",job="{p["job_quick"]}"}}'
    health = f'probe_success{{instance="app1",job="{p["job_health"]}"}}'
    database = 'peerquest_database_up{instance="app1",job="peerquest_business"}'
    found = [
        lambda s: _critical_log_case(p, s),
        lambda s: _gauge(
            "PeerQuestIntegrityIssues", f"peerquest_integrity_issues{{{node}}}", 0, 3, p["integrity_for"], s
        ),
        lambda s: _gauge("PeerQuestDatabaseDown", database, 1, 0, p["database_for"], s),
        lambda s: _gauge("PeerQuestDatabaseErrors", f"peerquest_database_errors{{{node}}}", 0, 2, p["database_for"], s),
        lambda s: _gauge("PeerQuestServiceDown", quick, 1, 0, p["service_down_for"], s),
        lambda s: _gauge("PeerQuestHealthCheckFailing", health, 1, 0, p["health_check_for"], s),
        lambda s: _ratio_case("PeerQuestApprovalFailureRate", p, s, "approval"),
        lambda s: _ratio_case("PeerQuestAssignmentFailureRate", p, s, "assignment"),
        lambda s: _error_case(p, s),
        lambda s: _performance_case(p, s),
        lambda s: _uptime_case(p, s),
        lambda s: _gauge("PeerQuestTargetDown", f"up{{{node}}}", 1, 0, p["target_down_for"], s, labels={"job": "node"}),
        lambda s: _gauge("PeerQuestCronStopped", unit.format(p["cron_unit"]), 1, 0, p["unit_down_for"], s),
        lambda s: _gauge("PeerQuestFollowerStopped", unit.format(p["follower_unit"]), 1, 0, p["unit_down_for"], s),
        lambda s: _heartbeat(
            f"peerquest_follower_heartbeat_timestamp_seconds{{{node}}}",
            p["follower_heartbeat_max_age"],
            s,
            "PeerQuestFollowerStale",
        ),
        lambda s: _monitor_case(p, s, "zz-unlisted", p["monitor_max_age_default"]),
        lambda s: Case("Watchdog", {}, 1, None, {"instance": p["watchdog_instance"]}),
    ]
    listed = sorted(p["monitor_max_age"].items(), key=lambda kv: (kv[1], kv[0]))
    if listed:
        name, age = listed[0]
        found.append(lambda s: _monitor_case(p, s, name, age))
    return found


def _monitor_case(p, step, name, age):
    series = f'peerquest_monitor_last_run_timestamp_seconds{{instance="app1",job="node",monitor="{name}"}}'
    return _heartbeat(series, age, step, "PeerQuestMonitorStale", {"monitor": name})


def _length(case):
    return max([len(v) for v in case.series.values()] + [case.fire + 1])


def _expected(rule, case):
    labels = {"instance": "app1", **rule.get("labels", {}), **case.labels}
    return {"exp_labels": labels, "exp_annotations": dict(rule.get("annotations", {}))}


def _test(case, rule, step):
    evals = [{"eval_time": _fmt(case.fire * step), "alertname": case.alert, "exp_alerts": [_expected(rule, case)]}]
    if case.resolve is not None:
        evals.append({"eval_time": _fmt(case.resolve * step), "alertname": case.alert, "exp_alerts": []})
    return {
        "name": f"{case.alert} fires and resolves" if case.resolve is not None else f"{case.alert} fires",
        "interval": _fmt(step),
        "input_series": [{"series": s, "values": compress(v)} for s, v in sorted(case.series.items())],
        "alert_rule_test": evals,
    }


def rule_tests(params, rules_doc):
    """[short file, long file]: promtool test files (dicts) for every alerting rule of rules_doc."""
    p = dict(params)
    for key, value in list(p.items()):
        if key.endswith(("_window", "_for", "_offset", "_max_age", "_default")) and not isinstance(value, dict):
            p[key] = seconds(value)
    p["monitor_max_age"] = {k: seconds(v) for k, v in (p.get("monitor_max_age") or {}).items()}
    rules = {r["alert"]: r for g in rules_doc["groups"] for r in g["rules"] if "alert" in r}
    minute = 60
    short, long_builds = [], []
    for build in scenarios(p):
        case = build(minute)
        if _length(case) <= MAX_STEPS:
            short.append(case)
        else:
            long_builds.append(build)
    long_step = minute
    long_cases = []
    while long_builds:
        long_cases = [build(long_step) for build in long_builds]
        longest = max(_length(c) for c in long_cases)
        if longest <= MAX_STEPS:
            break
        long_step = int(math.ceil(longest * long_step / MAX_STEPS / minute)) * minute
    tested = {c.alert for c in short + long_cases}
    untested = sorted(set(rules) - tested)
    if untested:
        raise RuleTestError(f"alerting rules without a unit test scenario: {untested}")
    unknown = sorted(tested - set(rules))
    if unknown:
        raise RuleTestError(f"scenarios for alerts the rules do not have: {unknown}")

    def doc(found, step):
        return {
            "rule_files": list(p["rule_files"]),
            "evaluation_interval": _fmt(step),
            "tests": [_test(c, rules[c.alert], step) for c in found],
        }

    return [doc(short, minute), doc(long_cases, long_step)]


def static_config(host, port_key):
    """An app host's exporter as a static_configs entry labelled with its bare host name."""
    return {"targets": [f"{host['address']}:{host[port_key]}"], "labels": {"instance": host["name"]}}


class FilterModule:
    def filters(self):
        return {
            "peerquest_prometheus_seconds": seconds,
            "peerquest_prometheus_is_duration": is_duration,
            "peerquest_prometheus_rule_tests": rule_tests,
            "peerquest_prometheus_static": static_config,
        }
