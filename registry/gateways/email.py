"""Sending email through SMTP (SPEC §10).

``REGISTRY_SMTP_URL``: ``smtp://host:port`` (plain), ``smtp+starttls://user:pass@host:port``
(STARTTLS, then login) or ``smtps://user:pass@host:port`` (TLS from the start); empty,
the email channel is off (``ChannelOff``). From is ``REGISTRY_EMAIL_FROM``. Each
thread keeps its own SMTP session, reopened when the server dropped it. Answers are
classified as for SMS (``registry.gateways.sms``): accepted, refused (5xx for this
recipient: try no further), unavailable (no connection, 4xx: later).
"""
from __future__ import annotations

import logging
import secrets
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from registry.gateways.sms import ACCEPTED, REFUSED, UNAVAILABLE, ChannelOff, Sent

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0
SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class SmtpClient:
    """``send(to, subject, body)`` → ``Sent``. Thread-safe (a session per thread)."""

    def __init__(self, url: str, sender: str, timeout_s: float = TIMEOUT_S):
        if not url:
            raise ChannelOff("The email channel is off: REGISTRY_SMTP_URL is not set.")
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("REGISTRY_SMTP_URL must be smtp://, smtp+starttls:// or smtps://host:port")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port or SCHEMES[parts.scheme]
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _session(self) -> smtplib.SMTP:
        session = getattr(self._local, "session", None)
        if session is None:
            if self.scheme == "smtps":
                session = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                           context=ssl.create_default_context())
            else:
                session = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
                if self.scheme == "smtp+starttls":
                    session.starttls(context=ssl.create_default_context())
            if self.username:
                session.login(self.username, self.password or "")
            self._local.session = session
        return session

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        self._local.session = None
        if session is not None:
            try:
                session.quit()
            except (smtplib.SMTPException, OSError):
                session.close()

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        # Not email.utils.make_msgid: it draws from the process's shared ``random`` (predictable, and shared with
        # whatever else runs in the worker); a message id needs no more than 128 random bits of its own.
        domain = self.sender.rpartition("@")[2].strip(">") or "sagip.invalid"
        message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
        message.set_content(body)
        return message

    def send(self, to: str, subject: str, body: str) -> Sent:
        message = self.message(to, subject, body)
        for attempt in (1, 2):
            try:
                self._session().send_message(message)
                return Sent(ACCEPTED, 250)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                code = codes[0] if codes else 550
                return Sent(REFUSED if code >= 500 else UNAVAILABLE, code, f"smtp_{code}")
            except smtplib.SMTPResponseException as exc:
                self.close()
                if exc.smtp_code >= 500:
                    return Sent(REFUSED, exc.smtp_code, f"smtp_{exc.smtp_code}")
                return Sent(UNAVAILABLE, exc.smtp_code, f"smtp_{exc.smtp_code}")
            except smtplib.SMTPServerDisconnected:
                self.close()
                if attempt == 2:
                    return Sent(UNAVAILABLE, None, "connection_lost")
            except (smtplib.SMTPException, socket.timeout, OSError) as exc:
                self.close()
                log.warning("SMTP server unreachable: %s", type(exc).__name__)
                return Sent(UNAVAILABLE, None, "unreachable")
        return Sent(UNAVAILABLE, None, "unreachable")


def client_from_config(config) -> SmtpClient:
    """:raises ChannelOff: REGISTRY_SMTP_URL is empty."""
    return SmtpClient(config["REGISTRY_SMTP_URL"], config["REGISTRY_EMAIL_FROM"])


def channel_on(config) -> bool:
    return bool(config["REGISTRY_SMTP_URL"])


__all__ = ["SmtpClient", "ChannelOff", "Sent", "ACCEPTED", "REFUSED", "UNAVAILABLE", "client_from_config"]
