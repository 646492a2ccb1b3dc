"""core.eventlog: a job log that cannot be written never stops the job."""

import subprocess
import sys

from conftest import PACKAGE_DIR

SNIPPET = """
import sys
sys.path.insert(0, sys.argv[1])
from peerquest_ops.core.eventlog import EventLog
log = EventLog("-", "peerquest-monitor")
log.line("errors: first line")
log.line("errors: second line")
print("still running", file=sys.stderr)
"""


def test_a_full_disk_under_the_cron_log_costs_the_lines_not_the_job():
    """Cron appends a job's standard output to monitoring.log; /dev/full answers every write with ENOSPC."""
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-I", "-c", SNIPPET, str(PACKAGE_DIR)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cannot write the job log") == 1, result.stderr  # said once, not per line
    assert result.stderr.endswith("still running\n"), result.stderr
