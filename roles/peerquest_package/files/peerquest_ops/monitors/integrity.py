"""The integrity job: the app's audit_application_participant_sync, its result for /health/, an alert.

The audit runs through the root-owned starter the role installs (sudo, as the
app account, in the app unit's environment). Its result is written where the
app's /health/ reads it, world-readable: {checked_at, host, status ("ok",
"issues", "error"), total_issues, exit_code, duration_seconds}.
"""

import re
import subprocess
import time
from datetime import datetime

from peerquest_ops.metrics import figures
from peerquest_ops.monitors.runtime import log, save_json

TOTAL = re.compile(r"TOTAL ISSUES:\s*(\d+)")
RESULT_MODE = 0o644  # the app reads it


def audit(command, timeout):
    """Run the audit: (fields of the result, its output)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"exit_code": None, "total_issues": None, "status": "error"}, f"audit did not finish within {timeout}s"
    output = (done.stdout + done.stderr).strip()
    match = TOTAL.search(done.stdout)
    issues = int(match.group(1)) if match else None
    if issues == 0 and done.returncode == 0:
        status = "ok"
    elif issues:
        status = "issues"
    else:
        status = "error"
    return {"exit_code": done.returncode, "total_issues": issues, "status": status}, output


def run_integrity(monitor):
    cfg = monitor.config["integrity"]
    started = time.time()
    result = {"checked_at": datetime.now().astimezone().isoformat(timespec="seconds"), "host": monitor.host}
    fields, output = audit(cfg["command"], cfg["timeout"])
    result.update(fields)
    result["duration_seconds"] = round(time.time() - started, 2)
    save_json(cfg["result_file"], result, mode=RESULT_MODE)
    monitor.figures += figures.integrity(result, started)
    excerpt = "\n".join(output.splitlines()[-cfg.get("excerpt_lines", 30) :])
    if result["status"] == "issues":
        monitor.alert(
            cfg["severity"],
            "integrity:issues",
            f"Data integrity issues detected: TOTAL ISSUES: {result['total_issues']}\n{excerpt}",
        )
    elif result["status"] == "error":
        monitor.alert(
            cfg["severity"],
            "integrity:error",
            f"Data integrity audit failed (exit {result['exit_code']}): {excerpt or 'no output'}",
        )
    monitor.mark_run("integrity")
    log(f"integrity: status={result['status']} issues={result['total_issues']} in {result['duration_seconds']}s")
    return result
