"""The email channel: one message per delivery through the configured SMTP relay."""

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from peerquest_ops.alerting import message
from peerquest_ops.alerting.channels.base import DeliveryError


def build_email(severity, text, config, recipients, when=None):
    email = config["email"]
    msg = EmailMessage()
    msg["Subject"] = message.subject(config, severity)
    msg["From"] = email["from"]
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(when, localtime=True)
    msg["Message-ID"] = make_msgid(domain=socket.getfqdn())
    msg["X-PeerQuest-Severity"] = severity
    msg.set_content(message.body(severity, text, config, when))
    return msg


def _reason(exc, host, timeout):
    # smtplib reports a timed-out reply as "Connection unexpectedly closed: timed out".
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # Accepted the connection (or not) and never answered: a hung relay.
        return f"timed out: no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def send_email(msg, config):
    smtp = config["email"]["smtp"]
    host, port = smtp["host"], smtp["port"]
    timeout = smtp["timeout"]
    context = ssl.create_default_context(cafile=smtp["ca_file"] or None)
    try:
        if smtp["ssl"]:
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if smtp["starttls"]:
                client.starttls(context=context)
            if smtp["user"]:
                client.login(smtp["user"], smtp["password"])
            refused = client.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        # Retrying with the same password only fails again (and may lock the account): held until it changes.
        answer = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        raise DeliveryError(
            f"email via {host}:{port} failed: the relay refused the login of email.smtp.user {smtp['user']!r} "
            f"({exc.smtp_code} {answer}); check the SMTP user and password",
            permanent=True,
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"email via {host}:{port} failed: {_reason(exc, host, timeout)}") from None
    if refused:
        raise DeliveryError(
            f"email via {host}:{port} refused recipients: {', '.join(sorted(refused))}", recipients=sorted(refused)
        )


def send(delivery, config):
    """Deliver by email; returns what was done or raises DeliveryError."""
    recipients = delivery.get("recipients") or []
    if not recipients:
        raise DeliveryError("email: no recipients configured")
    msg = build_email(delivery["severity"], delivery["message"], config, recipients, delivery["created"])
    send_email(msg, config)
    return f"email to {', '.join(recipients)}"
