"""What peerquest-alert adds to the alert history (peerquest_ops.history.store): one record per channel and outcome.

    record.note(config, "sent", delivery)          # delivery: severity, key, channel, alert_id, event_time
    record.note(config, "suppressed", {"severity": ..., "key": ...}, count=3)

The history is state_dir/history.jsonl; no state_dir, no history. A record's
alert field is the id of the alert it belongs to (every channel's record of
one alert, and each retry of its queued delivery, share it), so an operator
can name the alert by any of them.
"""

from peerquest_ops.alerting.output import warn
from peerquest_ops.history import store


def host(config):
    """The host as the alerts name it: the Alertmanager instance label when set."""
    return (config.get("alertmanager") or {}).get("instance") or None


def note(config, outcome, delivery, **fields):
    """Append one record for delivery (or the alert's fields); never raises."""
    path = store.history_path(config["state_dir"])
    return store.record(
        path,
        outcome,
        delivery["key"],
        delivery["severity"],
        delivery.get("channel", "-"),
        warn=warn,
        alert=delivery.get("alert_id"),
        event_time=delivery.get("event_time"),
        host=host(config),
        **fields,
    )
