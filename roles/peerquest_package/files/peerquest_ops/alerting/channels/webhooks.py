"""The HTTP channels: a Slack incoming webhook, a Discord webhook and a generic JSON webhook.

Each posts one JSON payload through core.http (no redirects: the token and the
secret URL path only ever reach the configured host) and judges the status.
"""

import socket

from peerquest_ops.alerting.channels.base import DeliveryError
from peerquest_ops.alerting.message import COLOURS, FOOTER, first_line, title, truncate
from peerquest_ops.core.http import HttpError, fetch, masked, retry_after, status_text
from peerquest_ops.core.timefmt import iso_utc


def slack_payload(delivery):
    attachment = {
        "color": f"#{COLOURS[delivery['severity']]:06x}",
        "title": title(delivery),
        "text": delivery["message"],
        "footer": FOOTER,
        "ts": int(delivery["created"]),
    }
    return {"text": f"{title(delivery)} - {first_line(delivery['message'])}", "attachments": [attachment]}


def discord_payload(delivery):
    embed = {
        "title": truncate(title(delivery), 256),
        "description": truncate(delivery["message"], 4096),
        "color": COLOURS[delivery["severity"]],
        "timestamp": iso_utc(delivery["created"]),
        "footer": {"text": FOOTER},
    }
    return {"username": FOOTER, "content": truncate(title(delivery), 2000), "embeds": [embed]}


def webhook_payload(delivery):
    return {
        "severity": delivery["severity"],
        "title": title(delivery),
        "message": delivery["message"],
        "host": socket.gethostname(),
        "key": delivery["key"],
        "timestamp": iso_utc(delivery["created"]),
        "suppressed": int(delivery.get("suppressed", 0)),
    }


# Answers that ask for a later retry, and those no retry fixes until the settings change.
THROTTLED = (429, 503)
REFUSED_CREDENTIALS = (401, 403)

# channel: (label, URL key in its section, payload, statuses that mean delivered)
HTTP_CHANNELS = {
    "slack": ("slack webhook", "webhook_url", slack_payload, lambda status: status == 200),
    "discord": ("discord webhook", "webhook_url", discord_payload, lambda status: status in (200, 204)),
    "webhook": ("webhook", "url", webhook_payload, lambda status: 200 <= status < 300),
}


def send(delivery, config):
    """POST the channel's payload; returns what was done or raises DeliveryError."""
    channel = delivery["channel"]
    label, url_key, payload, ok = HTTP_CHANNELS[channel]
    section = config[channel]
    url = section[url_key]
    label = f"{label} {masked(url)}"
    try:
        status, _text, headers = fetch(
            url,
            method="POST",
            body=payload(delivery),
            headers={"User-Agent": "peerquest-alert"},
            token=section.get("token", ""),
            timeout=config["http_timeout"],
            ca_file=config["ca_file"],
        )
    except HttpError as exc:
        raise DeliveryError(f"{label} failed: {exc}") from None
    if ok(status):
        return label
    if status in THROTTLED:
        wait = retry_after(headers)
        asked = f" (Retry-After: {wait} s)" if wait is not None else ""
        raise DeliveryError(f"{label} failed: {status_text(status)}{asked}", retry_after=wait)
    if status in REFUSED_CREDENTIALS:
        raise DeliveryError(
            f"{label} failed: {status_text(status)}: the receiver refuses our credentials", permanent=True
        )
    raise DeliveryError(f"{label} failed: {status_text(status)}")
