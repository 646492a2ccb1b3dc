"""Alert channels: deliver(delivery, config) sends one delivery or raises DeliveryError.

    email      build_email / send_email through the SMTP relay
    webhooks   slack, discord and the generic JSON webhook over core.http
    alertmanager  every Alertmanager's /api/v2/alerts (channel "alertmanager": the path that replaces
               the others when the configuration names Alertmanagers)

Before anything is sent the channel must be configured and must not carry a
secret in clear (schema.insecure_transport is judged again here, so a spooled
retry or a caller that skipped the configuration check cannot either).
"""

from peerquest_ops.alerting.channels import alertmanager, email, webhooks
from peerquest_ops.alerting.channels.base import DeliveryError
from peerquest_ops.alerting.schema import configured, insecure_transport
from peerquest_ops.core.constants import CHANNELS

__all__ = ["DeliveryError", "deliver"]


def deliver(delivery, config):
    """Send one delivery; returns what was done (for the output and the log) or raises DeliveryError."""
    channel = delivery.get("channel")
    if channel == alertmanager.CHANNEL:
        if not alertmanager.active(config):
            raise DeliveryError("alertmanager is not configured (alertmanager.enabled, alertmanager.urls)")
        return alertmanager.send(delivery, config)
    if channel not in CHANNELS or not configured(config, channel):
        raise DeliveryError(f"channel {channel!r} is not configured")
    refusal = insecure_transport(config, channel)
    if refusal:
        raise DeliveryError(f"{channel} refused: {refusal}")
    if channel == "email":
        return email.send(delivery, config)
    return webhooks.send(delivery, config)
