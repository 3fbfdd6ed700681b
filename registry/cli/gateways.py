"""``registry gateways up``: Kannel (bearerbox + smsbox) with fakesmsc and an SMTP sink, for the demo and
docker-compose (registry/gateways/local.py).

It prints the environment the API and the worker need (``export REGISTRY_SMS_URL=…`` lines), writes what
fakesmsc and the SMTP sink receive under ``--log-dir`` (``sms.log``, ``mail.log`` and ``mail/*.eml``: the
demo's phones and mailboxes, not the service's logs) and runs until stopped (SIGTERM or Ctrl-C).
"""
from __future__ import annotations

import json
import shlex
import signal
import threading
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import current_app


def _sendsms_password(sms_url: str) -> str | None:
    """The password in a configured REGISTRY_SMS_URL, so that Kannel and the service agree on it."""
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(sms_url).query).get("password")
    return values[0] if values else None


class _Files:
    """What the demo's phones and mailboxes received, one line each (and each mail as a file)."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "mail").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._mails = 0

    @staticmethod
    def _now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")

    def sms(self, sms) -> None:
        with self._lock, open(self.folder / "sms.log", "a", encoding="utf-8") as log:
            log.write(f"{self._now()} from={sms.sender} to={sms.receiver} text={json.dumps(sms.text, ensure_ascii=False)}\n")

    def email(self, message) -> None:
        with self._lock:
            self._mails += 1
            name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{self._mails:05d}.eml"
            (self.folder / "mail" / name).write_bytes(message.as_bytes())
            with open(self.folder / "mail.log", "a", encoding="utf-8") as log:
                log.write(f"{self._now()} to={message.get('To')} subject={json.dumps(str(message.get('Subject')), ensure_ascii=False)} file=mail/{name}\n")


@click.group("gateways")
def gateways():
    """The SMS and email gateways of a demo or development machine."""


@gateways.command("up")
@click.option("--port-base", default=14500, show_default=True,
              help="Kannel's admin port; then box, sendsms, the two fake SMSCs and SMTP (+5).")
@click.option("--hook-base", default="http://127.0.0.1:8000", show_default=True,
              help="The service's address: replies are posted to its /api/v1/hooks/sms.")
@click.option("--log-dir", default=".run/gateways", show_default=True, type=click.Path(file_okay=False),
              help="Where Kannel's logs and what the fake phones and mailboxes received are written.")
@click.option("--env-file", type=click.Path(dir_okay=False),
              help="Also write the `export …` lines to this file (written once the stack is up).")
@click.option("--listen", default="127.0.0.1", show_default=True,
              help="Where sendsms listens and the fake SMSCs accept clients (0.0.0.0 in a container).")
@click.option("--peers", default="127.0.0.1", show_default=True,
              help="Kannel's allow-ip pattern for fake SMSC clients (*.*.*.* in a container).")
@click.option("--kannel-only", is_flag=True,
              help="Only bearerbox + smsbox: fakesmsc and the SMTP sink run elsewhere (docker-compose).")
def up(port_base: int, hook_base: str, log_dir: str, env_file: str | None, listen: str, peers: str,
       kannel_only: bool):
    """Start Kannel + fakesmsc + an SMTP sink and print the environment the service needs."""
    from registry.gateways.local import GatewayStack
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = _Files(folder)
    config = current_app.config
    stack = GatewayStack(port_base, hook_base=hook_base, hook_secret=config["REGISTRY_SMS_HOOK_SECRET"],
                         sender=config["REGISTRY_SMS_SENDER"], workdir=str(folder / "kannel"), bind_host=listen,
                         peer_ips=peers, smtp_host=listen,
                         sendsms_password=_sendsms_password(config.get("REGISTRY_SMS_URL") or ""),
                         fakesmsc=not kannel_only, smtp=not kannel_only, on_sms=files.sms, on_email=files.email)
    stack.start()
    stopping = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopping.set())
    try:
        environment = stack.environment()
        if kannel_only:
            environment.pop("REGISTRY_SMTP_URL")
        exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in environment.items())
        click.echo(exports, nl=False)
        if env_file:
            Path(env_file).write_text(exports)
        click.echo(f"[gateways] Kannel on {port_base}..{port_base + 4}, replies to {stack.hook_url}"
                   + ("" if kannel_only else f"; fakesmsc's messages in {folder / 'sms.log'}, mails in "
                      f"{folder / 'mail.log'}"), err=True)
        while not stopping.wait(1):
            stack.check_running()
    finally:
        stack.stop()
        click.echo("[gateways] stopped", err=True)
