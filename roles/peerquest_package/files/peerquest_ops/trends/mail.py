"""The report as an e-mail: multipart/alternative (plain text, then HTML), sent through the alerting
package's SMTP code (the same relay settings, TLS and error texts as peerquest-alert's e-mail channel)."""

import socket
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from peerquest_ops.alerting.channels.email import send_email


def build(subject, sender, recipients, text, html, when=None):
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(when, localtime=True)
    msg["Message-ID"] = make_msgid(domain=socket.getfqdn())
    msg["X-PeerQuest-Severity"] = "INFO"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def send(msg, smtp):
    """smtp: host, port, starttls, ssl, user, password, ca_file, timeout; raises DeliveryError."""
    send_email(msg, {"email": {"smtp": smtp}})
