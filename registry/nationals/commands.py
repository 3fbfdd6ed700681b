"""``registry keys rotate`` and ``registry retention purge``: the data-protection chores."""
from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from registry import config as config_module
from registry.audit import services as audit
from registry.auth import scope
from registry.crypto import format_keys, keyring, parse_keys
from registry.extensions import db
from registry.nationals import services


@click.group()
def keys():
    """Encryption keys of passport and national ID numbers."""


@keys.command("rotate")
@click.option("--new-key", is_flag=True,
              help="Development only: add a new key to the local key file first. In production, put the new key "
                   "first in REGISTRY_ENCRYPTION_KEYS, restart the API and workers, then run this.")
@with_appcontext
def rotate(new_key: bool):
    """Re-encrypt every passport and national ID number under the current (first) key."""
    if new_key:
        _add_development_key()
    scope.use_everything()
    current = keyring().current
    count = services.reencrypt_documents(progress=lambda n: click.echo(f"  {n} record(s) re-encrypted", err=True))
    from registry.cli import cli_user
    audit.record("keys.rotate", actor=cli_user(), object_type="national", result_count=count,
                 details={"key_version": current})
    db.session.commit()
    click.echo(f"{count} record(s) re-encrypted under key version {current}")


def _add_development_key() -> None:
    app_config = current_app.config
    if app_config["REGISTRY_ENV"] != "development":
        raise click.ClickException("--new-key is for development; in production the keys come from "
                                   "REGISTRY_ENCRYPTION_KEYS.")
    path: Path = config_module.development_key_path(app_config["REGISTRY_DATA_DIR"], "encryption")
    if not path.exists() or path.read_text().strip() != app_config["REGISTRY_ENCRYPTION_KEYS"]:
        raise click.ClickException("The keys come from REGISTRY_ENCRYPTION_KEYS, not the local key file: "
                                   "add the new key there.")
    current, ring = parse_keys(app_config["REGISTRY_ENCRYPTION_KEYS"])
    version = max(ring) + 1
    if version > 255:
        raise click.ClickException("No key version left (255 used).")
    ring[version] = secrets.token_bytes(32)
    path.write_text(format_keys(version, ring))
    app_config["REGISTRY_ENCRYPTION_KEYS"] = format_keys(version, ring)
    current_app.extensions.pop("sagip_keyring", None)
    click.echo(f"added key version {version} to {path}; restart the API and workers to use it", err=True)


@click.group()
def retention():
    """The retention rules of SPEC §6b."""


@retention.command("purge")
@click.option("--days", type=int, default=None, help="Default: REGISTRY_RETENTION_RETURNED_DAYS.")
@with_appcontext
def purge(days: int | None):
    """Erase nationals returned more than DAYS ago now (the worker does it every few hours)."""
    from tasks.housekeeping import purge_returned_now
    days = current_app.config["REGISTRY_RETENTION_RETURNED_DAYS"] if days is None else days
    click.echo(f"{purge_returned_now(days)} record(s) purged (returned more than {days} days ago)")


@retention.command("purge-crises")
@click.option("--days", type=int, default=None, help="Default: REGISTRY_RETENTION_CLOSED_CRISIS_DAYS.")
@with_appcontext
def purge_crises(days: int | None):
    """Delete the rosters, welfare records and exposure rows of crises closed more than DAYS ago."""
    from tasks.housekeeping import purge_closed_crises_now
    days = current_app.config["REGISTRY_RETENTION_CLOSED_CRISIS_DAYS"] if days is None else days
    click.echo(f"{purge_closed_crises_now(days)} closed crisis(es) purged (closed more than {days} days ago)")
