"""Send a PeerQuest alert to the channels configured for its severity.

    peerquest-alert --config FILE --severity CRITICAL --message "text" [--key KEY] [--alertname NAME] [--no-spool]
                    [--event-time EPOCH]
    echo "text" | peerquest-alert --config FILE --severity WARNING
    peerquest-alert --config FILE --check-config
    peerquest-alert --config FILE --flush-spool
    peerquest-alert --config FILE --test-channels
    peerquest-alert --config FILE --resolve --key KEY

--config is required: the program has no built-in settings path, and the
configuration carries every setting (no key has a built-in default). The
command on PATH is a wrapper that passes the deployed file.

Channels: email, slack, discord, webhook (a generic JSON POST for SMS or pager
gateways); the configuration's routes say which get each severity. The same
key is sent at most once per dedup window; a failed delivery is queued in the
spool directory and retried by --flush-spool.

Alert history: every send, suppression, queueing, retry and failure is one
record in state_dir/history.jsonl (peerquest_ops.history), with the time the
event happened when the caller passes --event-time; peerquest-history lists
them and records acknowledgements.

Through Alertmanager: when the configuration names Alertmanagers
(alertmanager.enabled and alertmanager.urls), an alert is posted to every one
of them (POST /api/v2/alerts) and to no channel; Alertmanager routes, groups
and deduplicates it, so the local dedup window does not apply. Delivered when
one of them accepted it; otherwise it is queued like a failed channel (exit
75) and --flush-spool posts it again; --flush-spool also posts the alerts
still firing again, so a restarted Alertmanager has them. --test-channels
posts a test alert (PeerQuestChannelTest, INFO) to every Alertmanager when
selftest_channels lists a channel, and exits 1 when one did not accept it.
--check-config and the exit statuses are the same on both paths.

--resolve says the condition behind --key is over (the monitors run it when a
check recovers): its dedup window is cleared, so its next alert is a new one,
and through Alertmanager its firing alerts are posted as ended now and no
longer re-posted. Exit 0 whether or not anything was firing.

A channel that refuses our credentials (SMTP login refused, webhook 401/403)
is held: its deliveries wait in the spool, untried, until its settings change
(see alerting.spool). A receiver's Retry-After is honoured up to
retry_after_max_seconds.

Exit status: 0 delivered (or suppressed duplicate, or no channel routed for
that severity), 1 a channel failed and nothing was queued (--no-spool, no spool
directory) or a channel test failed, 2 bad usage or configuration, 75 a
channel failed and its delivery is queued for retry (or stays queued after
--flush-spool). Credentials and webhook URLs come only from the configuration
file, never from the command line, and are never printed or logged. An SMTP
login without TLS and an http:// webhook are refused (the secret would cross
the network in clear) unless the configuration sets allow_insecure_transport.
"""

import argparse
import os
import re
import sys

from peerquest_ops.alerting import dedup, output, routing, spool
from peerquest_ops.alerting.channels import alertmanager
from peerquest_ops.alerting.output import PROGRAM, say, warn
from peerquest_ops.alerting.schema import load_config
from peerquest_ops.core.config import ConfigError
from peerquest_ops.core.constants import SEVERITIES
from peerquest_ops.core.eventlog import EventLog

# An alertname as Prometheus' rules spell them.
ALERTNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _alertname(text):
    if not ALERTNAME.match(text):
        raise argparse.ArgumentTypeError(f"must be letters, digits and _, not starting with a digit: {text!r}")
    return text


def _epoch(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be seconds since the epoch: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be seconds since the epoch: {text!r}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    # No built-in path: the deployed one is a site's choice, passed by the wrapper on PATH.
    parser.add_argument("--config", required=True, metavar="FILE", help="configuration file (required)")
    parser.add_argument("--severity", type=str.upper, choices=SEVERITIES)
    parser.add_argument("--message", help="alert text; read from standard input when omitted")
    parser.add_argument("--key", help="deduplication key (default: severity and the message's first line)")
    parser.add_argument(
        "--alertname",
        type=_alertname,
        help=f"the check's name, the alert's alertname through Alertmanager (default {alertmanager.ALERTNAME})",
    )
    parser.add_argument("--no-spool", action="store_true", help="exit 1 on a failed channel instead of queueing")
    parser.add_argument(
        "--event-time", type=_epoch, metavar="EPOCH", help="when what is alerted happened (for the alert history)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-config", action="store_true", help="only check the configuration file")
    mode.add_argument("--flush-spool", action="store_true", help="retry the queued deliveries that are due")
    mode.add_argument("--test-channels", action="store_true", help="send a test to each of selftest_channels")
    mode.add_argument("--resolve", action="store_true", help="the condition behind --key is over")
    args = parser.parse_args(argv)
    if args.resolve and not args.key:
        parser.error("--resolve needs --key")
    if not (args.check_config or args.flush_spool or args.test_channels or args.resolve) and not args.severity:
        parser.error("--severity is required")
    return args


def _send(args, config, log):
    message = args.message if args.message is not None else sys.stdin.read().strip()
    if not message:
        say("empty message", error=True)
        return 2
    return routing.send_alert(
        config,
        log,
        args.severity,
        message,
        key=args.key,
        use_spool=not args.no_spool,
        alertname=args.alertname,
        event_time=args.event_time,
    )


def _flush(config, log):
    def alert(severity, text):
        return routing.send_alert(config, log, severity, text)

    def reroute(entry):
        return routing.send_alert(config, log, entry["severity"], entry["message"], key=entry["key"])

    # First the alerts still firing (before the spool, so an entry delivered below is not posted twice).
    if alertmanager.active(config):
        reposted = alertmanager.refresh(config, log)
        if reposted:
            say(f"{reposted} firing alert(s) posted to Alertmanager again")
    # An entry set aside is reported through the channels (or Alertmanager) themselves.
    return spool.flush(config, log, alert=alert, reroute=reroute)


def _resolve(key, config, log):
    dedup.forget(config, key)
    ended = alertmanager.resolve(config, key, log) if alertmanager.active(config) else 0
    say(f"{key}: resolved" + (f" ({ended} firing alert(s) ended in Alertmanager)" if ended else ""))
    return 0


def main(argv=None):
    args = parse_args(argv)
    # Spool, state and log are shared by root and the alert account through their group.
    os.umask(0o007)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        say(str(exc), error=True)
        return 2
    if args.check_config:
        say(f"{args.config} is valid")
        return 0
    log = EventLog(config["log_file"], PROGRAM, warn=warn)
    # A state file set aside (dedup, holds) is said on standard error and recorded in the log.
    output.record_warnings(log)
    try:
        if args.flush_spool:
            return _flush(config, log)
        if args.test_channels:
            return routing.selftest(config, log)
        if args.resolve:
            return _resolve(args.key, config, log)
        return _send(args, config, log)
    except OSError as exc:
        # State or spool directory unusable: say so plainly, not as a traceback.
        say(f"{exc.filename or 'file'}: {exc.strerror}", error=True)
        return 1
