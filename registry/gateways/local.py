"""A local gateway stack: Kannel (bearerbox + smsbox) with its fake SMSC and one ``fakesmsc`` client, and an
aiosmtpd SMTP server — real gateways on spare ports, for the tests, the demo and the benches.

How Kannel 1.4.5 (Debian ``kannel`` + ``kannel-extras``) behaves here, checked on this machine:

* A ``smsc = fake`` group accepts ONE ``fakesmsc`` client at a time (its listener serves one connection;
  a second client connects into the backlog and nothing it writes is read). So the stack runs two fake
  SMSC groups: ``fakesmsc`` (what Sagip sends lands there: one ``fakesmsc -m 0`` client, which only
  receives) and ``replies`` (``allowed-smsc-id = replies``, so no outgoing message is ever routed to it),
  where a second ``fakesmsc`` client in its interactive mode (no message argument: it reads lines from its
  standard input, each line ``FROM TO text BODY``) injects replies.
* ``fakesmsc`` prints what it receives on standard error: ``Got message N: <FROM TO TYPE DATA>`` where TYPE
  is ``text`` (the raw UTF-8 text, GSM-7 message; a newline in it starts a new ``Got message`` line),
  ``ucs-2`` (URL-encoded UTF-16BE, a message sent with ``coding=2``) or ``udh UDH data DATA`` (one part of
  a concatenated message, both URL-encoded; the part's coding is not printed). Text sent without
  ``coding=2`` is converted to the GSM alphabet: Arabic script arrives as ``?``.
* Delivery reports: with ``dlr-mask`` and ``dlr-url`` on sendsms, the fake SMSC reports type 1 (delivered
  to the phone) as soon as ``fakesmsc`` has been written the message, and bearerbox type 8 (accepted by
  the SMSC); it never reports 2 (failed), 4 (buffered) or 16 (rejected). A ``dlr-mask`` (with or without
  a ``dlr-url``) costs sendsms its latency: about one answer in ten then waits ~40 ms (the shape of Nagle
  against delayed ACKs; not traced further), so one keep-alive client sends ~200
  messages/s with reports against ~2,500 without; throughput grows with concurrent clients
  (``bench/outreach.py ceiling``).
* The ``sms-service`` cannot add an HTTP header of our own (its ``header`` is text put before a reply
  SMS), so the hook secret travels as the ``secret`` query parameter of ``post-url``. Kannel posts the
  reply's text as the body (``Content-Type: text/plain; charset="UTF-8"`` for a ``text`` line,
  ``charset="UTF-16BE"`` for ``ucs2``, ``application/octet-stream`` for ``data``) with the sender in
  ``X-Kannel-From`` (``send-sender = true``). ``max-messages = 0``: Kannel never answers a reply by SMS.

Nothing here logs a phone number or a message text: Kannel logs at warning level into the stack's folder
and keeps no access log; what ``fakesmsc`` and the SMTP server received stays in memory (and in the files
a caller asks for, e.g. ``registry gateways up --log-dir``).
"""
from __future__ import annotations

import email
import email.policy
import errno
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, NamedTuple

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
HOOK_PATH = "/api/v1/hooks/sms"
# fakesmsc's interactive mode reads its standard input with fgets() into 256 bytes.
INJECT_LINE_BYTES = 254
SENDSMS_USER = "sagip"


class GatewayError(RuntimeError):
    """The stack cannot start (a port in use, Kannel missing) or did not come up."""


class Sms(NamedTuple):
    """A message as fakesmsc received it (a concatenated message's parts joined)."""
    sender: str
    receiver: str
    text: str


@dataclass(frozen=True)
class Ports:
    """The stack's ports, from one base: admin, box, sendsms, the two fake SMSCs, SMTP."""
    base: int

    @property
    def admin(self) -> int:
        return self.base

    @property
    def smsbox(self) -> int:
        return self.base + 1

    @property
    def sendsms(self) -> int:
        return self.base + 2

    @property
    def smsc(self) -> int:
        return self.base + 3

    @property
    def replies_smsc(self) -> int:
        return self.base + 4

    @property
    def smtp(self) -> int:
        return self.base + 5

    def kannel(self) -> tuple[int, ...]:
        return self.admin, self.smsbox, self.sendsms, self.smsc, self.replies_smsc


def render_kannel_conf(*, ports: Ports, hook_url: str, hook_secret: str, sender: str, sendsms_password: str,
                       admin_password: str, log_dir: str, log_level: int = 2, bind_host: str = "127.0.0.1",
                       peer_ips: str = "127.0.0.1") -> str:
    """Kannel's configuration: bearerbox with two fake SMSCs, smsbox with sendsms and the reply service.

    ``hook_url`` is the full URL of Sagip's hook; ``hook_secret`` is added as its ``secret`` query parameter
    (URL-safe; Kannel would read a ``%`` as one of its escapes). ``bind_host`` is where the HTTP interfaces
    listen and ``peer_ips`` who may connect (fakesmsc clients, smsbox): ``0.0.0.0``/``*.*.*.*`` in containers.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.~-]*", hook_secret):
        raise ValueError("the hook secret must be URL-safe (letters, digits, _ . ~ -) for Kannel's post-url")
    separator = "&" if "?" in hook_url else "?"
    post_url = f"{hook_url}{separator}secret={hook_secret}" if hook_secret else hook_url
    log = Path(log_dir)
    return f"""\
# Written by registry/gateways/local.py (render_kannel_conf): Kannel 1.4.5 with its fake SMSC.
group = core
admin-port = {ports.admin}
admin-interface = {bind_host}
admin-password = {admin_password}
status-password = {admin_password}
smsbox-port = {ports.smsbox}
box-allow-ip = {peer_ips}
log-file = "{log / 'bearerbox.log'}"
log-level = {log_level}
dlr-storage = internal

# What Sagip sends: one fakesmsc client (-m 0) connects here and prints each message.
group = smsc
smsc = fake
smsc-id = fakesmsc
port = {ports.smsc}
connect-allow-ip = {peer_ips}

# Replies come in here: a fakesmsc client fed on its standard input. Nothing is ever sent through it.
group = smsc
smsc = fake
smsc-id = replies
allowed-smsc-id = replies
port = {ports.replies_smsc}
connect-allow-ip = {peer_ips}

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports.smsbox}
sendsms-port = {ports.sendsms}
sendsms-interface = {bind_host}
global-sender = {sender}
log-file = "{log / 'smsbox.log'}"
log-level = {log_level}
# The hook down (the service restarting, its database restarting): Kannel tries again for a minute rather
# than drop a reply or a delivery report.
http-request-retry = 30
http-queue-delay = 2

group = sendsms-user
username = {SENDSMS_USER}
password = {sendsms_password}
max-messages = 10
concatenation = true

# Every reply (no keyword of Kannel's own) goes to Sagip's hook; an empty answer sends nothing back.
group = sms-service
keyword = default
post-url = "{post_url}"
send-sender = true
max-messages = 0
omit-empty = true
"""


def ports_in_use(ports, host: str = "0.0.0.0") -> list[int]:
    """The ports among ``ports`` something already listens on (Kannel listens on every interface)."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                busy.append(port)
    return busy


def _kill_with_parent() -> None:
    """In the child: die with the process that started the stack (no orphan Kannel after a crash)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _decode_data(raw: bytes) -> str:
    """A URL-decoded payload whose coding fakesmsc does not print: UCS-2 (UTF-16BE) or UTF-8 text.

    UCS-2 text holds a NUL or a C0 control byte in nearly every character's high byte (Latin, Arabic,
    Cyrillic …); text that is valid UTF-8 without such bytes is read as UTF-8.
    """
    controls = any(byte < 0x20 and byte not in (0x09, 0x0A, 0x0D) for byte in raw)
    if len(raw) % 2 == 0 and raw and (controls or not _is_utf8(raw)):
        return raw.decode("utf-16-be", errors="replace")
    return raw.decode("utf-8", errors="replace")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unquote(value: bytes) -> bytes:
    return urllib.parse.unquote_to_bytes(value.replace(b"+", b" "))


def _concatenation(udh: bytes):
    """``(reference, total, number)`` of a concatenated message's part, from its UDH, or None."""
    index, end = 1, 1 + (udh[0] if udh else 0)
    while index + 1 < min(end, len(udh)):
        element, length = udh[index], udh[index + 1]
        data = udh[index + 2:index + 2 + length]
        if element == 0x00 and length == 3:
            return data[0], data[1], data[2]
        if element == 0x08 and length == 4:
            return (data[0] << 8) | data[1], data[2], data[3]
        index += 2 + length
    return None


class FakesmscReader:
    """Parses what a fakesmsc client prints (its standard error) into whole messages."""

    LINE = re.compile(rb"Got message \d+: <(.*)$")

    def __init__(self, on_message: Callable[[Sms], None], on_continuation: Callable[[str], None]):
        self._on_message = on_message
        self._on_continuation = on_continuation
        self._parts: dict[tuple, dict[int, bytes]] = {}
        self.lines = 0

    def feed(self, line: bytes) -> None:
        match = self.LINE.search(line.rstrip(b"\r\n"))
        if not match:
            return
        self.lines += 1
        content = match.group(1)
        if content.endswith(b">"):
            content = content[:-1]
        fields = content.split(b" ", 3)
        if len(fields) < 4 or fields[2] not in (b"text", b"ucs-2", b"ucs2", b"data", b"udh"):
            # A newline inside a GSM-7 text: fakesmsc reads the rest as another message.
            self._on_continuation(content.decode("utf-8", errors="replace"))
            return
        sender, receiver = fields[0].decode(), fields[1].decode()
        kind, data = fields[2], fields[3]
        if kind == b"text":
            self._on_message(Sms(sender, receiver, data.decode("utf-8", errors="replace")))
        elif kind in (b"ucs-2", b"ucs2"):
            self._on_message(Sms(sender, receiver, _unquote(data).decode("utf-16-be", errors="replace")))
        elif kind == b"data":
            self._on_message(Sms(sender, receiver, _decode_data(_unquote(data))))
        else:
            udh, _, rest = data.partition(b" ")
            kind, _, payload = rest.partition(b" ")
            if kind not in (b"data", b"text", b"ucs-2"):  # fakesmsc before 1.4: "udh UDH DATA"
                payload = rest
            self._part(sender, receiver, _unquote(udh), _unquote(payload) if kind != b"text" else payload)

    def _part(self, sender: str, receiver: str, udh: bytes, payload: bytes) -> None:
        concatenation = _concatenation(udh)
        if concatenation is None:
            self._on_message(Sms(sender, receiver, _decode_data(payload)))
            return
        reference, total, number = concatenation
        key = (sender, receiver, reference, total)
        parts = self._parts.setdefault(key, {})
        parts[number] = payload
        if len(parts) == total:
            del self._parts[key]
            joined = b"".join(parts[n] for n in sorted(parts))
            self._on_message(Sms(sender, receiver, _decode_data(joined)))


class _Collector:
    """A thread-safe list that can be waited on."""

    def __init__(self):
        self._items: list = []
        self._changed = threading.Condition()
        self._last_change = time.monotonic()

    def add(self, item) -> None:
        with self._changed:
            self._items.append(item)
            self._last_change = time.monotonic()
            self._changed.notify_all()

    def amend_last(self, change) -> None:
        with self._changed:
            if self._items:
                self._items[-1] = change(self._items[-1])
                self._last_change = time.monotonic()
                self._changed.notify_all()

    def items(self, quiet_seconds: float = 0.0) -> list:
        """The items so far; with ``quiet_seconds``, once that long has passed without a new one."""
        with self._changed:
            while quiet_seconds > 0:
                left = self._last_change + quiet_seconds - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return list(self._items)

    def wait_for(self, count: int, timeout: float, what: str) -> list:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._items)} {what} received of {count} expected after {timeout} s")
                self._changed.wait(left)
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()
            self._changed.notify_all()


class _SmtpHandler:
    """aiosmtpd's handler: every message accepted and kept."""

    def __init__(self, on_email: Callable[[EmailMessage, object], None]):
        self._on_email = on_email

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self._on_email(message, envelope)
        return "250 Message accepted for delivery"


class GatewayStack:
    """Kannel bearerbox + smsbox + one fakesmsc, a reply injector, and an SMTP server, on ``Ports(port_base)``.

    ``hook_base`` is the service's base URL (``http://127.0.0.1:8000``): replies go to its
    ``/api/v1/hooks/sms`` with ``hook_secret``. ``on_sms``/``on_email`` are called (from the reader threads)
    with each message received, e.g. to write them to files. Without ``fakesmsc`` and ``smtp`` it is Kannel
    alone (bearerbox + smsbox), whose fake SMSC clients connect from elsewhere (docker-compose's
    ``fakesmsc`` service; ``bind_host``/``peer_ips`` then open it to other hosts).
    """

    def __init__(self, port_base: int = 14000, *, hook_base: str = "http://127.0.0.1:8000",
                 hook_secret: str | None = None, sender: str = "SAGIP", workdir: str | None = None,
                 log_level: int = 2, bind_host: str = "127.0.0.1", peer_ips: str = "127.0.0.1",
                 smtp_host: str = "127.0.0.1", sendsms_password: str | None = None, fakesmsc: bool = True,
                 smtp: bool = True, on_sms: Callable[[Sms], None] | None = None,
                 on_email: Callable[[EmailMessage], None] | None = None):
        self.ports = Ports(port_base)
        self.hook_url = hook_base.rstrip("/") + HOOK_PATH
        self.hook_secret = hook_secret if hook_secret is not None else secrets.token_urlsafe(24)
        self.sender = sender
        self.log_level = log_level
        self.bind_host = bind_host
        self.peer_ips = peer_ips
        self.smtp_host = smtp_host
        self.with_fakesmsc = fakesmsc
        self.with_smtp = smtp
        self._own_workdir = workdir is None
        # Absolute: Kannel runs in its own directory and reads the configuration by this path.
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sagip-gateways-")).resolve()
        self.sendsms_password = sendsms_password or secrets.token_urlsafe(16)
        self._admin_password = secrets.token_urlsafe(16)
        self._on_sms = on_sms
        self._on_email = on_email
        self._sms = _Collector()
        self._email = _Collector()
        self._processes: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._inject_lock = threading.Lock()
        self._smtp = None
        self.fakesmsc_lines = 0

    # ----------------------------------------------------------------------------------------- addresses
    @property
    def sms_url(self) -> str:
        """Kannel's sendsms URL with its user and password (REGISTRY_SMS_URL)."""
        query = urllib.parse.urlencode({"username": SENDSMS_USER, "password": self.sendsms_password})
        return f"http://127.0.0.1:{self.ports.sendsms}/cgi-bin/sendsms?{query}"

    @property
    def smtp_url(self) -> str:
        """The SMTP server (REGISTRY_SMTP_URL)."""
        return f"smtp://127.0.0.1:{self.ports.smtp}"

    def environment(self) -> dict[str, str]:
        """What the service needs to use this stack."""
        return {"REGISTRY_SMS_URL": self.sms_url, "REGISTRY_SMTP_URL": self.smtp_url,
                "REGISTRY_SMS_HOOK_SECRET": self.hook_secret, "REGISTRY_SMS_SENDER": self.sender}

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> "GatewayStack":
        for program in (BEARERBOX, SMSBOX, FAKESMSC):
            if not os.access(program, os.X_OK):
                raise GatewayError(f"{program} is missing: scripts/bootstrap.sh installs Debian's kannel and "
                                   "kannel-extras (apt-get install kannel kannel-extras)")
        busy = ports_in_use((*self.ports.kannel(), *((self.ports.smtp,) if self.with_smtp else ())))
        if busy:
            raise GatewayError(f"ports already in use: {', '.join(map(str, busy))} (the gateway stack uses "
                               f"{self.ports.base}..{self.ports.smtp}; choose another port base)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "kannel.conf"
        conf.write_text(render_kannel_conf(
            ports=self.ports, hook_url=self.hook_url, hook_secret=self.hook_secret, sender=self.sender,
            sendsms_password=self.sendsms_password, admin_password=self._admin_password,
            log_dir=str(self.workdir), log_level=self.log_level, bind_host=self.bind_host, peer_ips=self.peer_ips))
        conf.chmod(0o600)
        try:
            self._spawn("bearerbox", [BEARERBOX, str(conf)])
            self._wait_listening(self.ports.smsbox, timeout, "bearerbox")
            self._spawn("smsbox", [SMSBOX, str(conf)])
            self._wait_listening(self.ports.sendsms, timeout, "smsbox")
            if self.with_fakesmsc:
                self._start_receiver()
                self._start_injector()
            self._wait_online(timeout)
            if self.with_smtp:
                self._start_smtp()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything this stack started; nothing is left running."""
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        stopped = []
        for name in ("injector", "fakesmsc", "smsbox", "bearerbox"):
            process = self._processes.pop(name, None)
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            stopped.append(process)
        for thread in self._threads:  # the reader ends at fakesmsc's end of output
            thread.join(timeout=15)
        self._threads.clear()
        for process in stopped:
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "GatewayStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str], stdin=subprocess.DEVNULL, stderr=None) -> subprocess.Popen:
        """Start one program of the stack; its standard error goes to ``NAME.out`` unless given."""
        output = open(self.workdir / f"{name}.out", "wb") if stderr is None else None
        try:
            process = subprocess.Popen(args, cwd=self.workdir, stdin=stdin, stdout=subprocess.DEVNULL,
                                       stderr=output or stderr, preexec_fn=_kill_with_parent)
        finally:
            if output is not None:
                output.close()
        self._processes[name] = process
        return process

    def check_running(self) -> None:
        """:raises GatewayError: a process of the stack has exited."""
        self._check_running()

    def _check_running(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise GatewayError(f"{name} exited with status {process.returncode} (see {self.workdir})")

    def _wait_listening(self, port: int, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_running()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise GatewayError(f"{name} did not listen on port {port} within {timeout} s") from None
                time.sleep(0.05)

    def status(self) -> str:
        """bearerbox's status page (text)."""
        url = f"http://127.0.0.1:{self.ports.admin}/status.txt?password={self._admin_password}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read().decode("utf-8", errors="replace")

    def _wait_online(self, timeout: float) -> None:
        """Both fake SMSCs have their client and smsbox is connected to bearerbox."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_running()
            try:
                status = self.status()
            except OSError:
                status = ""
            online = set(re.findall(r"^\s*(fakesmsc|replies)\s*\[\1\].*online", status, re.MULTILINE))
            clients_in = len(online) == 2 or not self.with_fakesmsc
            if clients_in and re.search(r"smsbox:\S*, IP 127\.0\.0\.1", status):
                return
            if time.monotonic() > deadline:
                raise GatewayError(f"Kannel did not come online within {timeout} s:\n{status}")
            time.sleep(0.1)

    # ------------------------------------------------------------------------------------------------ SMS
    def _start_receiver(self) -> None:
        reader = FakesmscReader(self._received, self._continued)
        process = self._spawn("fakesmsc", [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports.smsc), "-m", "0",
                                           "0 0 text unused"], stderr=subprocess.PIPE)

        def read():
            for line in process.stderr:
                reader.feed(line)
                self.fakesmsc_lines = reader.lines

        thread = threading.Thread(target=read, name="fakesmsc-reader", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _received(self, sms: Sms) -> None:
        self._sms.add(sms)
        if self._on_sms is not None:
            self._on_sms(sms)

    def _continued(self, rest: str) -> None:
        self._sms.amend_last(lambda sms: sms._replace(text=sms.text + "\n" + rest))

    def _start_injector(self) -> None:
        # No message argument: fakesmsc reads its messages from its standard input, one a line.
        self._spawn("injector", [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports.replies_smsc), "-i", "0"],
                    stdin=subprocess.PIPE)

    def received_sms(self, timeout: float = 0.0) -> list[Sms]:
        """What fakesmsc received: ``[(from, to, text)]``; with ``timeout``, once no message came for that
        many seconds (to see that nothing more is sent)."""
        return self._sms.items(quiet_seconds=timeout)

    def wait_for_sms(self, count: int, timeout: float = 60.0) -> list[Sms]:
        """Wait until fakesmsc has received ``count`` messages in all; all of them.

        :raises TimeoutError: fewer after ``timeout`` seconds.
        """
        return self._sms.wait_for(count, timeout, "SMS")

    def inject_sms(self, from_number: str, to: str, text: str) -> None:
        """A message from a phone: fakesmsc → Kannel → the sms-service's post-url (the hook).

        Returns once fakesmsc has read the line (Kannel posts it to the hook soon after, asynchronously).
        """
        self.inject_many([(from_number, to, text)])

    def inject_many(self, messages, pause: float = 0.0002) -> None:
        """``inject_sms`` for each ``(from, to, text)``, in order."""
        process = self._processes.get("injector")
        if process is None or process.poll() is not None:
            raise GatewayError("the reply injector (fakesmsc) is not running")
        with self._inject_lock:
            pipe = process.stdin
            for from_number, to, text in messages:
                pipe.write(self._inject_line(from_number, to, text))
                pipe.flush()
                # One line in the pipe at a time: fakesmsc select()s on the descriptor, then fgets() — lines
                # already in its stdio buffer would wait for the next write.
                while self._pipe_pending(pipe.fileno()):
                    if process.poll() is not None:
                        raise GatewayError(f"the reply injector exited with status {process.returncode}")
                    time.sleep(pause)

    @staticmethod
    def _pipe_pending(descriptor: int) -> int:
        return struct.unpack("i", fcntl.ioctl(descriptor, termios.FIONREAD, b"\0\0\0\0"))[0]

    @staticmethod
    def _inject_line(from_number: str, to: str, text: str) -> bytes:
        for number in (from_number, to):
            if not number or any(ch.isspace() for ch in number):
                raise ValueError("phone numbers are one word")
        if "\n" in text or "\r" in text or not text.strip():
            # URL-encoded UTF-8 (Kannel posts it as application/octet-stream, coding 1).
            line = f"{from_number} {to} data {urllib.parse.quote_plus(text.encode('utf-8'))}\n".encode()
        else:
            line = f"{from_number} {to} text {text}\n".encode("utf-8")
        if len(line) > INJECT_LINE_BYTES:
            raise ValueError(f"a reply of {len(line)} bytes as a fakesmsc line; fakesmsc reads at most "
                             f"{INJECT_LINE_BYTES}")
        return line

    # ---------------------------------------------------------------------------------------------- email
    def _start_smtp(self) -> None:
        from aiosmtpd.controller import Controller
        self._smtp = Controller(_SmtpHandler(self._received_email), hostname=self.smtp_host,
                                port=self.ports.smtp, ready_timeout=30)
        self._smtp.start()

    def _received_email(self, message: EmailMessage, envelope) -> None:
        self._email.add(message)
        if self._on_email is not None:
            self._on_email(message)

    def received_email(self, timeout: float = 0.0) -> list[EmailMessage]:
        """The emails the SMTP server accepted; with ``timeout``, once none came for that many seconds."""
        return self._email.items(quiet_seconds=timeout)

    def wait_for_email(self, count: int, timeout: float = 60.0) -> list[EmailMessage]:
        """Wait until ``count`` emails were accepted in all; all of them.

        :raises TimeoutError: fewer after ``timeout`` seconds.
        """
        return self._email.wait_for(count, timeout, "emails")

    def clear(self) -> None:
        """Forget what was received (between tests)."""
        self._sms.clear()
        self._email.clear()
