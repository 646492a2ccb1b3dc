"""What every channel raises when a delivery did not go out."""


class DeliveryError(Exception):
    def __init__(self, text, recipients=None):
        super().__init__(text)
        # Only the recipients the relay refused need a retry.
        self.recipients = recipients
