"""What every channel raises when a delivery did not go out."""


class DeliveryError(Exception):
    """A delivery that did not go out.

    recipients   only these (refused by the relay) need a retry; None: all
    retry_after  seconds the receiver asked to wait (HTTP 429/503 Retry-After); None: our backoff
    permanent    retrying cannot help until the channel's settings change (wrong SMTP password,
                 a webhook answering 401/403): the delivery is held, not retried
    """

    def __init__(self, text, recipients=None, retry_after=None, permanent=False):
        super().__init__(text)
        self.recipients = recipients
        self.retry_after = retry_after
        self.permanent = permanent
