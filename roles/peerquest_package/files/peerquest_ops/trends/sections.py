"""What each report asks Prometheus, and the sections it makes of the answers.

A section is a dict: title, tables [(caption, headers, rows)], charts [(caption, svg)], notes [text].
A query that fails leaves a note in its section (and in errors); the other queries still run.

Metric and rule names are the shared ones (blackbox job blackbox_quick, the app's peerquest_* series, the
recording rules of the peerquest_prometheus role); the Watchdog alert always fires and is reported apart.
"""

import time

from peerquest_ops.trends import svg
from peerquest_ops.trends.prom import PromError

PERIODS = {
    # range literal, seconds, chart step, alert step
    "daily": {"range": "1d", "seconds": 86400, "step": 3600, "alert_step": 60},
    "weekly": {"range": "7d", "seconds": 7 * 86400, "step": 6 * 3600, "alert_step": 300},
}
WATCHDOG = "Watchdog"
# Threshold review: an alert that fired more often than this in a week, or longer than this share of it.
OFTEN_EPISODES = 7
LONG_SHARE = 0.5


def fmt(value, unit=""):
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "ts":
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(value)) if value else "never"
    if unit == "min":
        return f"{value:.0f} min"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def change(now, before):
    if now is None or before is None:
        return "-"
    if before == 0:
        return "new" if now else "0 %"
    return f"{100 * (now - before) / before:+.0f} %"


class Asker:
    """Runs queries against a Client over one period, collecting failures instead of raising."""

    def __init__(self, client, period, end):
        self.client, self.period, self.end = client, PERIODS[period], end
        self.errors = []

    def _try(self, notes, call, expr, *args):
        try:
            return call(expr, *args)
        except PromError as exc:
            self.errors.append(str(exc))
            notes.append(f"query failed: {exc}")
            return []

    def instant(self, notes, expr):
        return self._try(notes, self.client.instant, expr.format(r=self.period["range"]), self.end)

    def by(self, notes, expr, label):
        """{label value: value} of an instant query."""
        return {r["metric"].get(label, ""): r["value"] for r in self.instant(notes, expr)}

    def one(self, notes, expr):
        found = self.instant(notes, expr)
        return found[0]["value"] if found else None

    def range(self, notes, expr, step=None):
        step = step or self.period["step"]
        start = self.end - self.period["seconds"]
        return self._try(
            notes, self.client.range, expr.format(r=self.period["range"], s=f"{step}s"), start, self.end, step
        )


def _lines(results, label):
    return [(r["metric"].get(label, "") or "all", r["values"]) for r in results]


def system_health(ask):
    notes = []
    uptime = ask.by(
        notes, "100 * avg by (instance) (avg_over_time(probe_success{{job='blackbox_quick'}}[{r}]))", "instance"
    )
    db_min = ask.by(notes, "min by (instance) (min_over_time(peerquest_database_up[{r}]))", "instance")
    instances = sorted(set(uptime) | set(db_min))
    rows = [
        [
            name,
            fmt(uptime.get(name), "%"),
            {None: "-", 1.0: "connected throughout"}.get(db_min.get(name), "lost at least once"),
        ]
        for name in instances
    ]
    targets = ask.instant(notes, "count by (job) (up == 0)")
    down_now = [f"{r['metric'].get('job', '?')}: {fmt(r['value'])} target(s) down now" for r in targets]
    issues_max = ask.one(notes, "max(max_over_time(peerquest_integrity_issues[{r}]))")
    issues_now = ask.one(notes, "max(peerquest_integrity_issues)")
    audit = ask.one(notes, "max(peerquest_integrity_last_audit_timestamp_seconds)")
    chart = ask.range(notes, "100 * avg by (instance) (avg_over_time(probe_success{{job='blackbox_quick'}}[{s}]))")
    return {
        "title": "System health",
        "tables": [
            (
                "Availability per app host (quick health probe from the monitoring host)",
                ["instance", "uptime", "database"],
                rows,
            ),
            (
                "Data integrity",
                ["last audit", "issues now", "most issues in the period"],
                [[fmt(audit, "ts"), fmt(issues_now), fmt(issues_max)]],
            ),
        ],
        "charts": [("Uptime % per hour", svg.sparkline(_lines(chart, "instance"), title="uptime"))],
        "notes": down_now + notes,
    }


def performance(ask):
    notes = []
    p95 = ask.by(notes, "avg_over_time(peerquest:http_request_duration_seconds:p95_5m[{r}])", "instance")
    p95_before = ask.by(
        notes, "avg_over_time(peerquest:http_request_duration_seconds:p95_5m[{r}] offset {r})", "instance"
    )
    p95_max = ask.by(notes, "max_over_time(peerquest:http_request_duration_seconds:p95_5m[{r}])", "instance")
    errors = ask.by(notes, "100 * avg_over_time(peerquest:http_errors:ratio_rate5m[{r}])", "instance")
    error_lines = ask.by(
        notes, "sum by (instance) (increase(peerquest_log_lines_total{{level=~'ERROR|CRITICAL'}}[{r}]))", "instance"
    )
    rows = [
        [
            name,
            fmt(p95.get(name), "s"),
            change(p95.get(name), p95_before.get(name)),
            fmt(p95_max.get(name), "s"),
            fmt(errors.get(name), "%"),
            fmt(error_lines.get(name)),
        ]
        for name in sorted(set(p95) | set(errors) | set(error_lines))
    ]
    latency = ask.range(notes, "max by (instance) (max_over_time(peerquest:http_request_duration_seconds:p95_5m[{s}]))")
    error_chart = ask.range(notes, "100 * avg by (instance) (avg_over_time(peerquest:http_errors:ratio_rate5m[{s}]))")
    return {
        "title": "Performance trend",
        "tables": [
            (
                "Response times and errors per app host",
                ["instance", "p95 (mean)", "vs. previous period", "p95 (worst)", "5xx share", "ERROR/CRITICAL lines"],
                rows,
            ),
        ],
        "charts": [
            ("p95 response time", svg.sparkline(_lines(latency, "instance"), title="p95 response time")),
            ("5xx share %", svg.sparkline(_lines(error_chart, "instance"), title="5xx share")),
        ],
        "notes": notes,
    }


def user_activity(ask):
    notes = []
    rows = []
    for name, metric in (
        ("quests", "peerquest_quests"),
        ("applications", "peerquest_applications"),
        ("participants", "peerquest_quest_participants"),
    ):
        now = ask.by(notes, f"max by (status) ({metric})", "status")
        before = ask.by(notes, f"max by (status) ({metric} offset {{r}})", "status")
        rows += [
            [name, status or "-", fmt(now[status]), change(now[status], before.get(status))] for status in sorted(now)
        ]
    requests = ask.one(notes, "sum(increase(peerquest_http_requests_total[{r}]))")
    events = ask.by(notes, "sum by (event) (increase(peerquest_log_events_total[{r}]))", "event")
    totals = [["requests served", fmt(requests)]] + [
        [event.replace("_", " "), fmt(v)] for event, v in sorted(events.items())
    ]
    views = ask.instant(notes, "topk(10, sum by (view) (increase(peerquest_http_requests_total[{r}])))")
    view_bars = sorted(((r["metric"].get("view", ""), r["value"] or 0) for r in views), key=lambda item: -item[1])
    traffic = ask.range(notes, "sum(increase(peerquest_http_requests_total[{s}]))")
    return {
        "title": "User activity",
        "tables": [
            ("In the period", ["", "count"], totals),
            ("Records by status (now, change over the period)", ["kind", "status", "now", "change"], rows),
        ],
        "charts": [
            ("Requests per step", svg.sparkline(_lines(traffic, "job"), title="requests")),
            ("Most used views", svg.bars(view_bars, title="requests per view")),
        ],
        "notes": notes,
    }


def episodes(values, step):
    """(firing episodes, seconds firing) of one ALERTS series' samples."""
    count, seconds, last = 0, 0, None
    for t, v in values:
        if v is None:
            continue
        if last is None or t - last > step * 1.5:
            count += 1
        seconds += step
        last = t
    return count, seconds


def fired(ask):
    """{alertname: {severity, episodes, seconds, instances}} of the period, from ALERTS."""
    notes = []
    step = ask.period["alert_step"]
    found = {}
    for series in ask.range(notes, "ALERTS{{alertstate='firing'}}", step):
        labels = series["metric"]
        entry = found.setdefault(
            labels.get("alertname", "?"),
            {"severity": labels.get("severity", ""), "episodes": 0, "seconds": 0, "instances": set()},
        )
        count, seconds = episodes(series["values"], step)
        entry["episodes"] += count
        entry["seconds"] += seconds
        if labels.get("instance"):
            entry["instances"].add(labels["instance"])
    return found, notes


def alerts(ask, found, notes):
    watchdog = found.get(WATCHDOG)
    real = {name: entry for name, entry in found.items() if name != WATCHDOG}
    rows = [
        [
            name,
            entry["severity"],
            fmt(entry["episodes"]),
            fmt(entry["seconds"] / 60, "min"),
            ", ".join(sorted(entry["instances"])) or "-",
        ]
        for name, entry in sorted(real.items(), key=lambda item: (-item[1]["episodes"], item[0]))
    ]
    bars = [(name, entry["seconds"] / 60) for name, entry in sorted(real.items(), key=lambda item: -item[1]["seconds"])]
    share = (watchdog["seconds"] / ask.period["seconds"]) if watchdog else 0
    extra = [
        f"Watchdog (the dead-man's switch) fired {100 * min(share, 1):.0f} % of the period"
        + ("" if share > 0.95 else ": the rule evaluation or Prometheus itself had gaps")
    ]
    return {
        "title": "Alerts fired",
        "tables": [("Alerts that fired (from ALERTS)", ["alert", "severity", "times", "firing", "instances"], rows)],
        "charts": [("Minutes firing per alert", svg.bars(bars, title="minutes firing"))],
        "notes": ([] if rows else ["No alert fired in the period."]) + extra + notes,
    }


def threshold_review(ask, found):
    """The weekly 'alert threshold review' hints: per alert, whether its threshold looks too tight or never fires."""
    notes = []
    try:
        rules = ask.client.alerting_rules()
    except PromError as exc:
        ask.errors.append(str(exc))
        notes.append(f"query failed: {exc}")
        rules = []
    names = sorted({rule["name"] for rule in rules} | set(found) - {WATCHDOG})
    rows = []
    for name in names:
        if name == WATCHDOG:
            continue
        entry = found.get(name)
        query = next((rule["query"] for rule in rules if rule["name"] == name), "")
        if entry is None:
            hint = "did not fire: check it still can (its threshold, its series exist)"
        elif entry["seconds"] > LONG_SHARE * ask.period["seconds"]:
            hint = "firing most of the week: a lasting problem, or a threshold below normal operation"
        elif entry["episodes"] > OFTEN_EPISODES:
            hint = "fires more than daily: review its threshold and for: duration (false positives under 5 %)"
        else:
            hint = "fired a few times: confirm each was a real problem"
        rows.append([name, fmt(entry["episodes"]) if entry else "0", hint, query])
    return {
        "title": "Alert threshold review",
        "tables": [("Per alert over the week", ["alert", "times fired", "hint", "rule"], rows)],
        "charts": [],
        "notes": notes,
    }


def build(client, period, end):
    """(sections, errors) of a daily or weekly report ending at end (epoch seconds)."""
    ask = Asker(client, period, end)
    found, alert_notes = fired(ask)
    sections = [system_health(ask), performance(ask), user_activity(ask), alerts(ask, found, alert_notes)]
    if period == "weekly":
        sections.append(threshold_review(ask, found))
    return sections, ask.errors
