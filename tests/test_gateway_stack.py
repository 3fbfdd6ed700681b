"""The gateway stack itself (registry/gateways/local.py): real Kannel + fakesmsc and a real SMTP server.

Messages given to Kannel's sendsms reach fakesmsc intact, a reply injected through fakesmsc reaches an
HTTP endpoint as Kannel's post-url sends it (with the hook secret), delivery reports reach their URL, and
an email reaches the SMTP server. The Kannel → HTTP tests use a second stack (ports base+10 .. base+15)
pointed at a small recording HTTP server of the test's own, so they do not depend on the service's hook.
"""
from __future__ import annotations

import smtplib
import threading
import time
from pathlib import Path
import urllib.parse
import urllib.request
from email.message import EmailMessage

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from registry.gateways.local import FakesmscReader, GatewayError, GatewayStack, Sms
from tests.gateway_stack import PORT_BASE, QuietRequestHandler


class Recorder:
    """An HTTP server that keeps every request it gets (method, path, query, headers, body)."""

    def __init__(self):
        self.requests: list[dict] = []
        self._changed = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    @Request.application
    def _app(self, request: Request) -> Response:
        with self._changed:
            self.requests.append({"method": request.method, "path": request.path, "args": request.args.to_dict(),
                                  "headers": dict(request.headers), "body": request.get_data()})
            self._changed.notify_all()
        return Response("", content_type="text/plain")

    def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.requests)} requests of {count} after {timeout} s: {self.requests}"
                self._changed.wait(left)
            return list(self.requests)

    def close(self):
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def recorder():
    server = Recorder()
    yield server
    server.close()


@pytest.fixture(scope="module")
def recorded_stack(recorder):
    """A second stack whose replies go to the recorder's /api/v1/hooks/sms."""
    with GatewayStack(PORT_BASE + 10, hook_base=recorder.url, hook_secret="s3cret-for-the-test") as stack:
        yield stack


@pytest.fixture
def stack(gateway_stack):
    gateway_stack.clear()
    yield gateway_stack
    gateway_stack.clear()


def send(stack, to: str, text: str, **params) -> bytes:
    query = urllib.parse.urlencode({"to": to, "text": text, "charset": "UTF-8", **params})
    with urllib.request.urlopen(f"{stack.sms_url}&{query}", timeout=30) as answer:
        assert answer.status == 202
        return answer.read()


def test_the_session_app_is_pointed_at_the_stack(app, gateway_stack, live_server):
    assert app.config["REGISTRY_SMS_URL"] == gateway_stack.sms_url
    assert app.config["REGISTRY_SMTP_URL"] == gateway_stack.smtp_url == f"smtp://127.0.0.1:{PORT_BASE + 5}"
    assert app.config["REGISTRY_SMS_HOOK_SECRET"] == gateway_stack.hook_secret
    assert gateway_stack.hook_url == f"{live_server}/api/v1/hooks/sms"
    assert f"secret={gateway_stack.hook_secret}" in (gateway_stack.workdir / "kannel.conf").read_text()


def test_sendsms_reaches_fakesmsc_with_latin_and_arabic_text_intact(stack):
    send(stack, "+639171234567", "Ligtas ka ba, Juan? Reply 1 SAFE")
    send(stack, "+971501234567", "هل أنت بخير يا أحمد؟ أجب 1", coding="2")
    send(stack, "+971501234568", "Ñoño, are you safe? " * 12)  # 240 characters: two concatenated parts
    received = stack.wait_for_sms(3, timeout=60)
    assert sorted(received) == sorted([
        Sms(stack.sender, "+639171234567", "Ligtas ka ba, Juan? Reply 1 SAFE"),
        Sms(stack.sender, "+971501234567", "هل أنت بخير يا أحمد؟ أجب 1"),
        Sms(stack.sender, "+971501234568", "Ñoño, are you safe? " * 12),
    ])
    assert stack.received_sms(timeout=1) == received  # nothing more arrives


def test_text_outside_gsm7_without_ucs2_is_mangled_by_kannel(stack):
    """Why the sender must ask for coding=2 (UCS-2) when a text leaves the GSM alphabet."""
    send(stack, "+639171234567", "أحمد")
    assert stack.wait_for_sms(1, timeout=60)[0].text == "????"


def test_an_injected_reply_reaches_the_post_url_with_sender_and_secret(recorded_stack, recorder):
    before = len(recorder.requests)
    recorded_stack.inject_sms("+639171234567", "SAGIP", "1 ligtas kami")
    recorded_stack.inject_sms("00971501234567", "SAGIP", "2 نحتاج مساعدة")
    recorded_stack.inject_sms("+639170000000", "SAGIP", "safe\nall four of us")
    hooks = recorder.wait_for(before + 3)[before:]
    replies = {request["headers"]["X-Kannel-From"]: request for request in hooks}
    assert set(replies) == {"+639171234567", "00971501234567", "+639170000000"}
    for request in hooks:
        assert request["method"] == "POST"
        assert request["path"] == "/api/v1/hooks/sms"
        assert request["args"] == {"secret": "s3cret-for-the-test"}
    assert replies["+639171234567"]["body"].decode("utf-8") == "1 ligtas kami"
    assert replies["+639171234567"]["headers"]["Content-Type"] == 'text/plain; charset="UTF-8"'
    assert replies["00971501234567"]["body"].decode("utf-8") == "2 نحتاج مساعدة"
    assert replies["+639170000000"]["body"].decode("utf-8") == "safe\nall four of us"
    # The hook answered an empty body: Kannel sends nothing back.
    assert recorded_stack.received_sms(timeout=2) == []


def test_delivery_reports_reach_the_dlr_url(recorded_stack, recorder):
    """The fake SMSC reports type 8 (accepted by the SMSC) and type 1 (delivered), never a failure."""
    before = len(recorder.requests)
    dlr_url = f"{recorder.url}/dlr?message=42&type=%d"
    send(recorded_stack, "+639171234567", "with a report", **{"dlr-mask": "31", "dlr-url": dlr_url})
    reports = recorder.wait_for(before + 2)[before:]
    assert {(r["path"], r["args"]["message"], r["args"]["type"]) for r in reports} == {
        ("/dlr", "42", "1"), ("/dlr", "42", "8")}
    assert recorded_stack.wait_for_sms(1, timeout=60)[0].text == "with a report"


def test_an_email_reaches_the_smtp_server(stack):
    message = EmailMessage()
    message["From"] = "Sagip <no-reply@sagip.example.org>"
    message["To"] = "maria@example.org"
    message["Subject"] = "Ligtas ka ba? هل أنت بخير"
    message.set_content("Maria, reply through https://sagip.example.org/checkin/abc")
    host, port = urllib.parse.urlsplit(stack.smtp_url).hostname, urllib.parse.urlsplit(stack.smtp_url).port
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(message)
    received = stack.wait_for_email(1, timeout=60)
    assert received[0]["To"] == "maria@example.org"
    assert received[0]["Subject"] == "Ligtas ka ba? هل أنت بخير"
    assert received[0].get_content().strip() == "Maria, reply through https://sagip.example.org/checkin/abc"


def test_a_stack_on_ports_in_use_says_which(gateway_stack):
    with pytest.raises(GatewayError, match=rf"ports already in use: {PORT_BASE}, {PORT_BASE + 1}"):
        GatewayStack(PORT_BASE).start()


def test_stop_leaves_no_process_running(recorder):
    stack = GatewayStack(PORT_BASE + 20, hook_base=recorder.url).start()
    processes = list(stack._processes.values())
    assert len(processes) == 4 and all(process.poll() is None for process in processes)
    stack.stop()
    assert all(process.poll() is not None for process in processes)
    assert not stack.workdir.exists()


def test_fakesmsc_lines_are_decoded_and_parts_joined():
    got: list[Sms] = []
    reader = FakesmscReader(got.append, lambda rest: got.__setitem__(-1, got[-1]._replace(
        text=got[-1].text + "\n" + rest)))
    for line in [
        b"2026-12-02 07:52:45 [1] [0] DEBUG: Got message 1: <SAGIP +639171234567 text Hello Juan>",
        b"... DEBUG: Got message 2: <SAGIP +971501 ucs-2 %06E%061%06-%06(%06'%00+%00o%00k>",
        b"... DEBUG: Got message 3: <SAGIP +63917 udh %05%00%03%07%02%02 data %06'>",
        b"... DEBUG: Got message 4: <SAGIP +63917 udh %05%00%03%07%02%01 data %06E%061%06-%06(>",
        b"... DEBUG: Got message 5: <SAGIP +63917 text first line>",
        b"... DEBUG: Got message 6: <second line>",
        b"... INFO: fakesmsc starting",
    ]:
        reader.feed(line)
    assert got == [Sms("SAGIP", "+639171234567", "Hello Juan"), Sms("SAGIP", "+971501", "مرحبا ok"),
                   Sms("SAGIP", "+63917", "مرحبا"), Sms("SAGIP", "+63917", "first line\nsecond line")]


def test_registry_gateways_up_prints_the_environment_and_stops_cleanly(tmp_path):
    """The demo's command: the `export` lines, fakesmsc's messages and the mails in files, SIGTERM stops all.
    Run as run-demo.sh runs it, with a --log-dir relative to the working directory."""
    import os
    import signal
    import subprocess
    import sys

    base = PORT_BASE + 30
    env_file = tmp_path / "gateways.env"
    process = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", "gateways", "up", "--port-base", str(base), "--log-dir",
         "gateways", "--env-file", str(env_file)], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "REGISTRY_SMS_URL": "", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    try:
        exports = process.stdout.readline() + process.stdout.readline()
        assert exports.startswith(b"export REGISTRY_SMS_URL='http://127.0.0.1:")
        assert f"export REGISTRY_SMTP_URL=smtp://127.0.0.1:{base + 5}".encode() in exports
        sms_url = exports.split(b"'")[1].decode()
        query = urllib.parse.urlencode({"to": "+639171234567", "text": "demo message"})
        with urllib.request.urlopen(f"{sms_url}&{query}", timeout=30) as answer:
            assert answer.status == 202
        with smtplib.SMTP("127.0.0.1", base + 5, timeout=30) as smtp:
            smtp.sendmail("a@example.org", ["b@example.org"], b"To: b@example.org\r\nSubject: demo\r\n\r\nhello")
        sms_log, mail_log = tmp_path / "gateways" / "sms.log", tmp_path / "gateways" / "mail.log"
        deadline = time.monotonic() + 60
        while not (sms_log.exists() and mail_log.exists()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 'to=+639171234567 text="demo message"' in sms_log.read_text()
        assert 'subject="demo"' in mail_log.read_text()
        assert env_file.read_bytes().startswith(exports)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert b"[gateways] stopped" in errors
    leftover = subprocess.run(["pgrep", "-f", f"{tmp_path}/gateways/kannel/kannel.conf"], capture_output=True)
    assert leftover.stdout == b""


def test_docker_compose_runs_the_same_gateways():
    """docker-compose.yml (no Docker engine here: read, not run): kannel configured by the same command,
    fakesmsc connected to its fake SMSC, an SMTP sink, and the app's gateway variables pointing at them."""
    from pathlib import Path

    import yaml

    from registry.gateways.local import Ports

    compose = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    kannel = services["kannel"]["command"]
    assert kannel[:4] == ["registry", "gateways", "up", "--kannel-only"]
    ports = Ports(int(kannel[kannel.index("--port-base") + 1]))
    for name in ("api", "worker", "kannel"):
        environment = services[name]["environment"]
        sms_url = urllib.parse.urlsplit(environment["REGISTRY_SMS_URL"])
        assert (sms_url.hostname, sms_url.port, sms_url.path) == ("kannel", ports.sendsms, "/cgi-bin/sendsms")
        assert environment["REGISTRY_SMTP_URL"] == "smtp://smtp:1025"
        assert environment["REGISTRY_SMS_HOOK_SECRET"]
    fakesmsc = services["fakesmsc"]["command"]
    assert fakesmsc[0] == "/usr/lib/kannel/test/fakesmsc"
    assert fakesmsc[fakesmsc.index("-H") + 1] == "kannel" and fakesmsc[fakesmsc.index("-r") + 1] == str(ports.smsc)
    assert services["smtp"]["command"] == ["python", "-m", "aiosmtpd", "-n", "-l", "0.0.0.0:1025"]
