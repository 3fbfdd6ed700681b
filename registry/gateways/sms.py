"""Sending SMS through Kannel's ``sendsms`` HTTP interface (SPEC §10).

``REGISTRY_SMS_URL`` is the interface with its user and password
(``http://host:port/cgi-bin/sendsms?username=…&password=…``); empty, the SMS
channel is off (``ChannelOff``). Each message is one GET with ``to``, ``text``,
``from`` (``REGISTRY_SMS_SENDER``), ``charset=UTF-8`` and ``coding`` (0 for
GSM-7, 2 for UCS-2: ``registry.gateways.text``), and, when a delivery report
is wanted, ``dlr-mask`` and ``dlr-url``. Each thread keeps its own keep-alive
connection (``http.client``: one socket per thread, reopened when Kannel
closed it).

Kannel's answers are classified for the sender: ``accepted`` (202 "Sent." or
"Queued for later delivery"), ``refused`` (4xx: this message to this number
will never go: try the next phone), ``unavailable`` (no connection, a timeout,
5xx/503: the gateway is away; try again later, the number is not to blame).
Neither the number nor the text is ever logged.
"""
from __future__ import annotations

import http.client
import logging
import socket
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from registry.gateways import text as sms_text

log = logging.getLogger(__name__)

ACCEPTED, REFUSED, UNAVAILABLE = "accepted", "refused", "unavailable"
# Kannel's dlr-mask bits: 1 delivered, 2 undelivered, 4 buffered, 8 accepted by the SMSC, 16 rejected by it.
DLR_DELIVERED, DLR_FAILED, DLR_BUFFERED, DLR_SMSC_ACCEPTED, DLR_SMSC_REJECTED = 1, 2, 4, 8, 16
DLR_MASK = DLR_DELIVERED | DLR_FAILED | DLR_SMSC_REJECTED
TIMEOUT_S = 10.0


class ChannelOff(RuntimeError):
    """REGISTRY_SMS_URL (or REGISTRY_SMTP_URL for email) is empty: the channel is off."""


@dataclass(frozen=True)
class Sent:
    """What the gateway answered: ``outcome`` (accepted, refused, unavailable), the HTTP status (None without
    an answer) and a short reason code (never the gateway's text, which may quote the number)."""

    outcome: str
    status: int | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED


def classify(status: int, body: str) -> Sent:
    """Kannel's answer to a sendsms request, classified (module docstring)."""
    if status in (200, 202) and (body.startswith("Sent") or body.startswith("Queued") or status == 202):
        return Sent(ACCEPTED, status)
    if status in (200, 202):  # an answer Kannel does not give to an accepted message
        return Sent(UNAVAILABLE, status, "unexpected_answer")
    if 400 <= status < 500:
        return Sent(REFUSED, status, f"refused_{status}")
    return Sent(UNAVAILABLE, status, f"gateway_{status}")


class KannelClient:
    """A sendsms client: ``send(to, text, dlr_url=None)`` → ``Sent``. Thread-safe (a connection per thread)."""

    def __init__(self, url: str, sender: str, timeout_s: float = TIMEOUT_S):
        if not url:
            raise ChannelOff("The SMS channel is off: REGISTRY_SMS_URL is not set.")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("REGISTRY_SMS_URL must be an http:// or https:// URL")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path or "/cgi-bin/sendsms"
        self.base_query = parse_qsl(parts.query, keep_blank_values=True)
        self.sender = sender
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            connection = self._local.connection = kind(self.host, self.port, timeout=self.timeout_s)
        return connection

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def query(self, to: str, text: str, dlr_url: str | None = None) -> str:
        """The request's path and query (for tests: no network)."""
        fields = list(self.base_query) + [("to", to), ("text", text), ("from", self.sender), ("charset", "UTF-8"),
                                          ("coding", "2" if sms_text.encoding_of(text) == sms_text.UCS2 else "0")]
        if dlr_url:
            fields += [("dlr-mask", str(DLR_MASK)), ("dlr-url", dlr_url)]
        return f"{self.path}?{urlencode(fields)}"

    def send(self, to: str, text: str, dlr_url: str | None = None) -> Sent:
        target = self.query(to, text, dlr_url)
        for attempt in (1, 2):  # a kept-alive socket Kannel closed meanwhile: reopen once
            connection = self._connection()
            try:
                connection.request("GET", target, headers={"Connection": "keep-alive"})
                response = connection.getresponse()
                body = response.read(200).decode("utf-8", "replace")
                response.read()
                if response.will_close:
                    self.close()
                return classify(response.status, body)
            except (http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError,
                    ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    log.warning("Kannel closed the connection: %s", type(exc).__name__)
                    return Sent(UNAVAILABLE, None, "connection_lost")
            except (socket.timeout, TimeoutError):
                self.close()
                return Sent(UNAVAILABLE, None, "timeout")
            except OSError as exc:
                self.close()
                log.warning("Kannel unreachable: %s", type(exc).__name__)
                return Sent(UNAVAILABLE, None, "unreachable")
        return Sent(UNAVAILABLE, None, "unreachable")  # not reached


def client_from_config(config) -> KannelClient:
    """:raises ChannelOff: REGISTRY_SMS_URL is empty."""
    return KannelClient(config["REGISTRY_SMS_URL"], config["REGISTRY_SMS_SENDER"])


def channel_on(config) -> bool:
    return bool(config["REGISTRY_SMS_URL"])
