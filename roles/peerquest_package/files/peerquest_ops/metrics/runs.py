"""Each scheduled job's run: last run, last success, duration and exit code, plus the job's own figures.

    with job_run(monitor, "errors") as run:   # <textfile_dir>/peerquest_errors.prom when the job ends
        run.exit_code = 0

The job's own figures are the families it adds to monitor.figures while it
runs (figures.py). A job that raises is recorded with exit code 1 (what
Python exits with), its last success kept from the previous file.
"""

import contextlib
import time

from peerquest_ops.metrics import names, textfile


def textfile_dir(config):
    """The collector's directory from the monitors' settings; "" when metrics are off."""
    return (config.get("metrics") or {}).get("textfile_dir") or ""


def run_families(monitor_name, started, finished, exit_code):
    labels = {"monitor": monitor_name}
    return [
        (names.MONITOR_LAST_RUN, "gauge", [(labels, round(finished, 3))]),
        # None keeps the previous file's value: the last success stays when this run failed.
        (names.MONITOR_LAST_SUCCESS, "gauge", [(labels, round(finished, 3) if exit_code == 0 else None)]),
        (names.MONITOR_DURATION, "gauge", [(labels, round(finished - started, 3))]),
        (names.MONITOR_EXIT_CODE, "gauge", [(labels, int(exit_code))]),
    ]


def record(monitor, monitor_name, started, exit_code, finished=None):
    """Write the job's file: its run and the figures it added; whether it was written."""
    finished = time.time() if finished is None else finished
    families = run_families(monitor_name, started, finished, exit_code) + list(getattr(monitor, "figures", []))
    return textfile.write(textfile_dir(monitor.config), monitor_name, families)


class _Run:
    exit_code = 1


@contextlib.contextmanager
def job_run(monitor, monitor_name):
    """Time the body and record it; exit_code stays 1 unless the body sets it (an exception keeps 1)."""
    run = _Run()
    started = time.time()
    try:
        yield run
    finally:
        record(monitor, monitor_name, started, run.exit_code)
