"""``registry keys rotate``, ``registry keys rotate-index`` and ``registry retention purge``: the
data-protection chores."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from registry import config as config_module
from registry.audit import services as audit
from registry.auth import scope
from registry.auth.services import service_user
from registry.crypto import format_keys, keyring, parse_index_keys, parse_keys
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
    audit.record("keys.rotate", actor=service_user(), object_type="national", result_count=count,
                 details={"key_version": current})
    db.session.commit()
    click.echo(f"{count} record(s) re-encrypted under key version {current}")


# Skipped records named on the terminal (the audit event lists them all).
SKIPPED_SHOWN = 100


@keys.command("rotate-index")
@click.option("--new-key", is_flag=True,
              help="Development only: add a new index key version to the local key file first.")
@click.option("--batch", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Records re-indexed per transaction.")
@with_appcontext
def rotate_index(new_key: bool, batch: int):
    """Re-index every passport and national ID number under the current (first) index key.

    Lookups match every key of REGISTRY_BLIND_INDEX_KEY meanwhile. In production, list the new key after
    the current one first (`1:<old>,2:<new>`: looked up, not yet written) and restart the API and workers;
    then put it first (`2:<new>,1:<old>`), restart them again, and run this. It commits batch by batch:
    run it again after an interruption. Once every record is re-indexed, the old version can be removed.
    """
    if new_key:
        _add_development_index_key()
    scope.use_everything()
    current = keyring().index_current
    total = sum(services.index_versions_in_use().values())
    db.session.commit()
    reported = [0]

    def progress(done: int) -> None:
        reported[0] = done
        click.echo(f"  {done:,} of {total:,} re-indexed", err=True)
    try:
        count, skipped = services.reindex_documents(batch, progress=progress)
    except SQLAlchemyError as exc:
        db.session.rollback()
        reason = type(getattr(exc, "orig", None) or exc).__name__
        audit.record("keys.rotate_index", outcome="error", actor=service_user(), object_type="national",
                     result_count=reported[0], details={"index_key_version": current, "stopped": reason})
        db.session.commit()
        raise click.ClickException(
            f"stopped after {reported[0]:,} of {total:,} record(s): the database refused a batch ({reason}); "
            "rerun `registry keys rotate-index` to continue with what is left") from None
    audit.record("keys.rotate_index", outcome="error" if skipped else "ok", actor=service_user(),
                 object_type="national", object_ids=[national_id for national_id, _ in skipped],
                 result_count=count, details={"index_key_version": current})
    db.session.commit()
    click.echo(f"{count:,} record(s) re-indexed under index key version {current}")
    for national_id, why in skipped[:SKIPPED_SHOWN]:
        click.echo(f"  not re-indexed: {national_id}: {why}", err=True)
    if len(skipped) > SKIPPED_SHOWN:
        click.echo(f"  ... and {len(skipped) - SKIPPED_SHOWN:,} more (listed in the audit event)", err=True)
    in_use = services.index_versions_in_use()
    db.session.commit()
    if in_use:
        versions = ", ".join(f"version {v} is still in use by {n:,} record(s)" for v, n in sorted(in_use.items()))
        raise click.ClickException(
            f"{versions}: keep {'it' if len(in_use) == 1 else 'them'} in {_index_key_source()}; resolve the "
            "records named above (or, if none are, records written meanwhile by a process on the old keys) "
            "and rerun")
    older = keyring().older_index_versions
    if older:
        click.echo(f"every record now uses index key version {current}: version "
                   f"{', '.join(map(str, older))} can now be removed from {_index_key_source()} "
                   "(then restart the API and workers)")


def _index_key_source() -> str:
    """Where the index keys come from: the environment, or the development key file."""
    path = _development_index_key_file()
    return str(path) if path else "REGISTRY_BLIND_INDEX_KEY"


def _development_index_key_file() -> Path | None:
    """The local key file, when it is what the index keys were read from."""
    app_config = current_app.config
    path = config_module.development_key_path(app_config["REGISTRY_DATA_DIR"], "blind_index")
    if app_config["REGISTRY_ENV"] != "development" or not path.exists():
        return None
    try:
        from_file = parse_index_keys(path.read_text().strip())
    except ValueError:
        return None
    return path if from_file == parse_index_keys(app_config["REGISTRY_BLIND_INDEX_KEY"]) else None


def _add_development_key() -> None:
    """A new encryption key version in the local key file (development only)."""
    path = config_module.development_key_path(current_app.config["REGISTRY_DATA_DIR"], "encryption")
    from_file = path.exists() and path.read_text().strip() == current_app.config["REGISTRY_ENCRYPTION_KEYS"]
    _add_key_version("REGISTRY_ENCRYPTION_KEYS", path if from_file else None, parse_keys, "key")


def _add_development_index_key() -> None:
    """A new blind-index key version in the local key file (development only)."""
    _add_key_version("REGISTRY_BLIND_INDEX_KEY", _development_index_key_file(), parse_index_keys, "index key")


def _add_key_version(setting: str, path: Path | None, parse, what: str) -> None:
    """Add a random key as the new current version of ``setting`` to its local key file ``path`` (None:
    the keys come from the environment, where the operator adds it)."""
    app_config = current_app.config
    if app_config["REGISTRY_ENV"] != "development":
        raise click.ClickException(f"--new-key is for development; in production the keys come from {setting}.")
    if path is None:
        raise click.ClickException(f"The keys come from {setting}, not the local key file: add the new key there.")
    _, ring = parse(app_config[setting])
    version = max(ring) + 1
    if version > 255:
        raise click.ClickException(f"No {what} version left (255 used).")
    ring[version] = secrets.token_bytes(32)
    written = format_keys(version, ring)
    # Written beside, then renamed over the file: a crash leaves the old keys or the new ones, never neither.
    staging = path.with_name(path.name + ".new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(written)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    app_config[setting] = written
    current_app.extensions.pop("sagip_keyring", None)
    click.echo(f"added {what} version {version} to {path}; restart the API and workers to use it", err=True)
