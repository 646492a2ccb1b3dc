"""The reviews: the weekly alert threshold review and the monthly monitoring effectiveness review.

Both read the alert history (peerquest_ops.history) over their whole period,
the rotated and compressed copies included, and report per key and severity:
alerts, false positives, acknowledgements, MTTD and MTTR, against the
targets in review settings; then the monitors' own uptime (monitors.uptime),
and, for each key whose false-positive rate is over its target, the inventory
variable to change (monitors.tuning). The report goes out as one INFO alert
(peerquest-alert's INFO route, as the digest) and is kept in review.report_dir
as <kind>-<date>.txt and .json; kept reports older than
review.retention_days are removed.
"""

import contextlib
import glob
import os
import time

from peerquest_ops.core.constants import EX_TEMPFAIL
from peerquest_ops.core.state import write_json
from peerquest_ops.history import review as figures_of
from peerquest_ops.history import store
from peerquest_ops.monitors import schedule, tuning, uptime
from peerquest_ops.monitors.runtime import STATE_MODE, log

KINDS = {
    "review": {"days": 30, "title": "Monthly monitoring review"},
    "threshold_review": {"days": 7, "title": "Weekly alert threshold review"},
}


def _minutes(seconds):
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _pct(value):
    return "-" if value is None else f"{value:.1f}%"


def _verdict(ok):
    return "" if ok is None else ("  [ok]" if ok else "  [MISSED]")


def _row_text(row):
    return (
        f"{row['alerts']} alert(s) (sent {row['sent']}, suppressed {row['suppressed']}, retried {row['retried']}, "
        f"queued {row['queued']}, failed {row['failed']}), false positives {row['false_positives']} "
        f"({_pct(row['false_positive_percent'])}), acknowledged {row['acked']} ({_pct(row['acked_percent'])}), "
        f"MTTD {_minutes(row['mttd'])}, MTTR {_minutes(row['mttr'])}, unresolved {row['unresolved']}"
    )


def checks(result, targets, up):
    """{name: (value, ok)} of the plan's success metrics; ok None when there is nothing to judge."""
    overall, critical = result["overall"], result["severities"].get("CRITICAL", {})

    def judge(value, good):
        return value, (None if value is None else good(value))

    return {
        "false positives": judge(
            overall["false_positive_percent"], lambda v: v <= targets["false_positive_max_percent"]
        ),
        "acknowledged": judge(overall["acked_percent"], lambda v: v >= targets["acknowledged_min_percent"]),
        "MTTD (CRITICAL)": judge(critical.get("mttd"), lambda v: v <= targets["detect_max_seconds"]),
        "MTTR (CRITICAL)": judge(critical.get("mttr"), lambda v: v <= targets["resolve_max_seconds"]),
        "monitors' uptime": judge(up["percent"], lambda v: v >= targets["uptime_min_percent"]),
    }


def suggestions(monitor, result, targets):
    """One line per key over the false-positive target: the variable to change and a value to try."""
    lines = []
    prefix = f"{monitor.host}:"
    for row in result["rows"]:
        if row["severity"] == "INFO" or row["false_positive_percent"] is None:
            continue
        if row["false_positive_percent"] <= targets["false_positive_max_percent"]:
            continue
        key = row["key"][len(prefix) :] if row["key"].startswith(prefix) else row["key"]
        found = tuning.suggest(monitor.config, key)
        why = (
            f"{row['key']}: {row['false_positives']} of {row['alerts']} alert(s) were false positives "
            f"({_pct(row['false_positive_percent'])}, over {targets['false_positive_max_percent']}%)"
        )
        if found is None:
            lines.append(f"{why}: no inventory threshold is behind this key; review what raises it.")
        elif found[1] is None:
            lines.append(f"{why}: change {found[0]} in the inventory.")
        else:
            lines.append(f"{why}: raise {found[0]} from {found[1]} to {found[2]} in the inventory.")
    return lines


def render(monitor, kind, result, targets, up, now):
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(result["since"]))
    lines = [
        f"{KINDS[kind]['title']} for {monitor.host}: {stamp} to "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(now))} ({KINDS[kind]['days']} days)",
        f"Targets: false positives <= {targets['false_positive_max_percent']}%, acknowledged >= "
        f"{targets['acknowledged_min_percent']}%, MTTD <= {_minutes(targets['detect_max_seconds'])} and MTTR <= "
        f"{_minutes(targets['resolve_max_seconds'])} for CRITICAL, "
        f"monitors' uptime >= {targets['uptime_min_percent']}%",
        "",
        "Success metrics:",
    ]
    for name, (value, ok) in checks(result, targets, up).items():
        shown = _minutes(value) if name.startswith("MTT") else (_pct(value) if value is not None else "-")
        lines.append(f"  {name}: {shown}{_verdict(ok)}" + ("" if value is not None else " (nothing to measure)"))
    lines += ["", "Per severity:"]
    lines += [f"  {severity}: {_row_text(row)}" for severity, row in result["severities"].items()] or ["  no alerts"]
    lines += ["", "Per key (WARNING and CRITICAL):"]
    keyed = [row for row in result["rows"] if row["severity"] != "INFO"]
    lines += [f"  {row['severity']} {row['key']}: {_row_text(row)}" for row in keyed] or ["  no alerts"]
    jobs = ", ".join(f"{job} {ran}/{expected}" for job, (ran, expected) in up["jobs"].items())
    follower = up["follower"]
    lines += [
        "",
        f"Monitors' uptime: {_pct(up['percent'])} (runs done/due: {jobs or 'none'}; "
        f"follower alive {follower[0]}/{follower[1]} samples)",
    ]
    found = suggestions(monitor, result, targets)
    lines += ["", "Threshold suggestions:"] + [f"  - {line}" for line in found or ["none"]]
    return "\n".join(lines), found


def _keep(report_dir, kind, now, text, data, retention_days):
    """Write the report's files (atomically) and drop this kind's files past retention; the text file's path."""
    os.makedirs(report_dir, exist_ok=True)
    base = os.path.join(report_dir, f"{kind}-{time.strftime('%Y%m%d-%H%M', time.localtime(now))}")
    write_json(base + ".json", data, mode=STATE_MODE)
    tmp = base + ".txt.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.chmod(tmp, STATE_MODE)
    os.replace(tmp, base + ".txt")
    for old in glob.glob(os.path.join(report_dir, f"{kind}-*")):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(old).st_mtime < now - retention_days * 86400:
                os.unlink(old)
    return base + ".txt"


def intervals(monitor):
    """Seconds between runs of each scheduled job, from the self-check's allowed silences."""
    ages = monitor.config.get("selfcheck", {}).get("max_age_seconds", {})
    return {job: schedule.interval_of(age) for job, age in ages.items()}


def run_review(monitor, kind="review", now=None):
    """Build, send and keep one review; returns its figures."""
    now = now or time.time()
    targets = monitor.config["review"]
    since = now - KINDS[kind]["days"] * 86400
    records = store.read(monitor.history_file, since=since, until=now)
    result = figures_of.figures(records, since, now)
    up = uptime.measure(monitor, since, now, intervals(monitor))
    text, found = render(monitor, kind, result, targets, up, now)
    data = dict(result, kind=kind, host=monitor.host, uptime=up, suggestions=found)
    data["checks"] = {name: {"value": v, "ok": ok} for name, (v, ok) in checks(result, targets, up).items()}
    path = _keep(targets["report_dir"], kind, now, text, data, targets["retention_days"])
    # Its own message (the INFO route), as the digest: a key per run, so dedup never swallows one.
    done = monitor.send("INFO", f"{monitor.host}:{kind}:{time.time_ns()}", text, timeout=300)
    log(
        f"{kind}: {len(records)} history record(s), {result['overall']['alerts']} alert(s), "
        f"{len(found)} suggestion(s), kept {path}, exit={done.returncode} {(done.stdout + done.stderr).strip()}"
    )
    if done.returncode not in (0, EX_TEMPFAIL):
        log(f"{kind}: WARNING the report was not sent; it is kept in {path}")
    monitor.mark_run(kind)
    return data


def run_threshold_review(monitor, now=None):
    return run_review(monitor, "threshold_review", now)
