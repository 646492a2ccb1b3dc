"""PeerQuest monitors: scheduled checks that turn logs and probes into alerts.

    peerquest-monitor errors        error patterns, failure rates, error-rate baseline
    peerquest-monitor performance   slow operations by duration, degradation
    peerquest-monitor security      security events (failed logins, DisallowedHost, CSRF, ...) over their thresholds
    peerquest-monitor health [--quick]   /health/quick/ and /health/
    peerquest-monitor integrity     the app's audit_application_participant_sync
    peerquest-monitor selfcheck     the monitors themselves, channels, disk (exit 1: problems)
    peerquest-monitor digest        the daily INFO digest
    peerquest-monitor review        the monthly monitoring review (alert history over 30 days, success metrics)
    peerquest-monitor threshold_review   the weekly alert threshold review (7 days, threshold suggestions)
    peerquest-monitor follow        stay running; alert on CRITICAL lines at once, page on database failures
    peerquest-monitor check-config  only check the settings file

--config is required: the command on PATH is a wrapper that passes the
deployed settings. Alerts go through peerquest-alert (routing, dedup, spool).
Log files are read from where the previous run stopped (inode + offset),
following rotation, and counted in a sliding window, not the clock hour.
A scheduled job that runs to its end records, in the alert history, the
resolution of each alert it raised before and not this time (Monitor.settle).
Exit status: 0 done, 1 the self-check found a problem, 2 bad usage or settings.
"""

import importlib
import os
import sys
from types import SimpleNamespace

from peerquest_ops.core import config as settings
from peerquest_ops.metrics.runs import job_run
from peerquest_ops.monitors.base import Monitor
from peerquest_ops.monitors.runtime import PROGRAM, log
from peerquest_ops.monitors.schema import config_problems


def _job(module, function):
    """A job's function, its module imported only now: a run pays for its own job's imports alone
    (the errors job, every 5 minutes, skips the probes' HTTP client: a third of its CPU, bench/)."""
    return getattr(importlib.import_module(f"peerquest_ops.monitors.{module}"), function)


COMMANDS = {
    "errors": lambda m, a: _job("errors", "run_errors")(m),
    "performance": lambda m, a: _job("performance", "run_performance")(m),
    "security": lambda m, a: _job("security", "run_security")(m),
    "health": lambda m, a: _job("probes", "run_health")(m, quick=a.quick),
    "integrity": lambda m, a: _job("integrity", "run_integrity")(m),
    "selfcheck": lambda m, a: _job("selfcheck", "run_selfcheck")(m),
    "digest": lambda m, a: _job("digest", "run_digest")(m),
    "review": lambda m, a: _job("review", "run_review")(m),
    "threshold_review": lambda m, a: _job("review", "run_threshold_review")(m),
    "follow": lambda m, a: _job("follow", "run_follow")(m, stop_on_sigterm=True),
}


USAGE = f"usage: {PROGRAM} --config FILE [--quick] {{{','.join(sorted(COMMANDS) + ['check-config'])}}}"


def _usage_error(message):
    """argparse's convention: the usage line and the error on stderr, exit status 2."""
    print(f"{USAGE}\n{PROGRAM}: error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    """--config FILE [--quick] COMMAND, in any order. Not argparse: its import (with gettext, shutil
    and the compressors shutil loads) cost a fifth of the errors job's CPU every five minutes (bench/)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config, quick, commands = None, False, []
    while argv:
        arg = argv.pop(0)
        if arg in ("-h", "--help"):
            print(f"{USAGE}\n\n{__doc__}")
            sys.exit(0)
        elif arg == "--quick":
            quick = True
        elif arg == "--config" or arg.startswith("--config="):
            if "=" in arg:
                config = arg.split("=", 1)[1]
            elif argv:
                config = argv.pop(0)
            else:
                _usage_error("argument --config: expected one argument")
        elif arg.startswith("-"):
            _usage_error(f"unrecognized arguments: {arg}")
        else:
            commands.append(arg)
    if config is None:
        _usage_error("the following arguments are required: --config")
    if len(commands) != 1:
        _usage_error("give exactly one command" if commands else "the following arguments are required: command")
    if commands[0] not in COMMANDS and commands[0] != "check-config":
        _usage_error(f"argument command: invalid choice: '{commands[0]}'")
    return SimpleNamespace(config=config, quick=quick, command=commands[0])


def main(argv=None):
    args = parse_args(argv)
    os.umask(0o027)
    try:
        config = settings.load(args.config)
    except settings.ConfigError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2
    problems = config_problems(config)
    if problems:
        print(f"{PROGRAM}: {args.config}: " + "; ".join(problems), file=sys.stderr)
        return 2
    # The health token never shows in a log line (core.eventlog scrubs what is registered).
    settings.remember(config["health"].get("token"))
    if args.command == "check-config":
        print(f"{PROGRAM}: {args.config} is valid")
        return 0
    monitor = Monitor(config, deployed_at=os.stat(args.config).st_mtime)
    if args.command == "follow":  # not a scheduled job: its heartbeat is its figure
        COMMANDS[args.command](monitor, args)
        return 0
    # The job's run and figures go to the textfile collector when it ends (peerquest_ops.metrics).
    name = "health_quick" if args.command == "health" and args.quick else args.command
    with job_run(monitor, name) as run:
        result = COMMANDS[args.command](monitor, args)
        # Only a job that ran to its end may say a condition cleared.
        try:
            monitor.settle(name)
        except OSError as exc:
            # An unusable state directory (the self-check names it) must not turn a finished job into a failed one.
            log(f"{name}: WARNING resolutions and uptime not recorded: {exc.strerror}: {exc.filename}")
        # The self-check's verdict is its exit status too: 1 when it found a problem.
        run.exit_code = 1 if args.command == "selfcheck" and result else 0
    return run.exit_code
