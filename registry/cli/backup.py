"""``registry backup FILE`` and ``registry restore FILE``: the database and the service's keys, encrypted
with REGISTRY_BACKUP_KEY (registry/backups).

``restore`` is a command of the root group, not of the app: on a fresh machine the service's keys are
what it brings back, so it must run before an app can be built (production refuses to start without them,
development would generate new ones).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext
from psycopg.conninfo import conninfo_to_dict

from registry import config as config_module
from registry.auth import scope
from registry.backups import database, format, services
from registry.backups.database import DatabaseError
from registry.backups.services import BackupRefused
from registry.extensions import db


class _Progress:
    """``  <what>: N MB`` on stderr, every two seconds at most."""

    def __init__(self, what: str):
        self._what = what
        self._next = 0.0

    def __call__(self, done_bytes: int) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 2
            click.echo(f"  {self._what}: {done_bytes / 1e6:,.1f} MB", err=True)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@with_appcontext
def backup(file: Path):
    """Write an encrypted backup of the whole database and the service's keys to FILE (`-`: stdout).

    Encrypted with REGISTRY_BACKUP_KEY (development: generated once into the data folder as backup.key):
    that key alone restores it, here or on another machine (`registry restore FILE`). Keep a copy of the
    key away from this machine and from the backups. FILE must be new; it is written with mode 0600 and
    appears only once complete.
    """
    app_config = current_app.config
    environ = {**os.environ, "REGISTRY_ENV": app_config["REGISTRY_ENV"],
               "REGISTRY_DATA_DIR": app_config["REGISTRY_DATA_DIR"]}
    to_stdout = str(file) == "-"
    try:
        key = config_module.backup_key(environ, create=True)
        services.check_backup_key(key, app_config)
        if to_stdout and sys.stdout.isatty():
            raise BackupRefused("standard output is a terminal: redirect it, or give a file name")
        arguments = {"url": app_config["SQLALCHEMY_DATABASE_URI"], "key": key, "app_config": app_config,
                     "progress": _Progress("encrypted")}
        if to_stdout:
            written = services.write_backup(click.get_binary_stream("stdout"), **arguments)
        else:
            written = services.backup_to_file(file, **arguments)
    except (config_module.ConfigError, BackupRefused, DatabaseError) as exc:
        raise click.ClickException(str(exc)) from None
    scope.use_everything()
    documents = services.check_documents()  # keys that do not read the data would make a backup useless
    for problem in documents.problems[:10]:
        click.echo(f"warning: the service's keys do not read its data: {problem}", err=True)
    services.record_backup(written)
    db.session.commit()
    where = "standard output" if to_stdout else str(file)
    click.echo(f"backup written to {where}: {written.file_bytes / 1e6:,.1f} MB, {len(written.counts)} tables, "
               f"{sum(written.counts.values()):,} rows, the service's keys; encrypted with the backup key of id "
               f"{written.key_id}", err=True)


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--keys-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the restored keys to this new file (mode 0600, NAME=value lines) instead of the data "
                   "folder. Required in production: move them into the secret store the service's environment "
                   "comes from, then delete the file.")
def restore(file: Path, keys_file: Path | None):
    """Restore a backup made by `registry backup` into the empty database of DATABASE_URL.

    Needs REGISTRY_BACKUP_KEY (development: the data folder's backup.key). The whole file is authenticated
    first: with another key, or altered or cut short, it is refused and nothing is written. The database
    must be empty (create a new one; a restore never merges into or replaces data in use); it is restored
    in one transaction. The service's keys then go to the data folder (development; keys it holds already
    must be the same) or to --keys-file. Last, with those keys: the audit chain is verified, document
    numbers are decrypted, and every table's row count is compared with the backup's. Exit 1 if anything
    does not match.
    """
    environ = os.environ
    env = environ.get("REGISTRY_ENV", config_module.ENVIRONMENT["REGISTRY_ENV"][0])
    url = config_module.database_url(environ.get("DATABASE_URL", config_module.ENVIRONMENT["DATABASE_URL"][0]))
    data_dir = Path(environ.get("REGISTRY_DATA_DIR", config_module.ENVIRONMENT["REGISTRY_DATA_DIR"][0])).expanduser()
    if env == "production" and keys_file is None:
        raise click.ClickException("in production the restored keys go to a file for the secret store: give "
                                   "--keys-file FILE")
    try:
        key = config_module.backup_key(environ, create=False)
    except config_module.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        manifest = services.read_manifest(file, key, progress=_Progress("authenticated"))
    except format.BackupFileError as exc:
        raise click.ClickException(f"{file} cannot be restored: {exc}. Nothing was written.") from None
    settings = manifest["secrets"]
    created_roles: list[str] = []
    try:
        _check_keys_destination(keys_file, data_dir, settings)
        services.check_target(url)
        created_roles = database.ensure_roles(url, manifest["roles"])
        click.echo("restoring the database (one transaction) ...", err=True)
        services.restore_archive(file, key, url, progress=_Progress("restored"))
    except (BackupRefused, DatabaseError, format.BackupFileError) as exc:
        roles = f" (the cluster keeps the roles created: {', '.join(created_roles)})" if created_roles else ""
        raise click.ClickException(f"{exc}. The database was left as it was{roles}; no key was written.") from None
    try:
        if keys_file is not None:
            services.write_keys_file(keys_file, settings, manifest)
            keys_line = f"keys: written to {keys_file} (mode 0600): move them into the secret store, then delete it"
        else:
            written = services.write_to_data_folder(data_dir, settings, key)
            keys_line = (f"keys: {len(written)} file(s) written to {data_dir}" if written
                         else f"keys: {data_dir} holds them already")
    except (BackupRefused, OSError) as exc:
        raise click.ClickException(f"the database is restored, but its keys could not be written ({exc}): restore "
                                   "again into a new database, with --keys-file FILE") from None
    differences = services.count_differences(url, manifest)
    rearmed = database.rearm_unfinished_jobs(url)
    database.analyze(url)
    chain, documents, head = _verify(url, environ, settings, manifest, key)
    for variable in services.environment_differences(settings, environ):
        click.echo(f"warning: {variable} is set in the environment to another value than the backup's: the "
                   "restored data needs the backup's", err=True)
    failures = _report(url, manifest, keys_line, created_roles, rearmed, differences, chain, documents, head)
    if failures:
        for failure in failures:
            click.echo(f"restore check failed: {failure}", err=True)
        sys.exit(1)


def _report(url, manifest, keys_line, created_roles, rearmed, differences, chain, documents, head) -> list[str]:
    """Print what was restored and checked; the checks that failed."""
    name = conninfo_to_dict(database.libpq_url(url)).get("dbname", "")
    source = manifest["database"]
    click.echo(f"restored the backup of {manifest['created_at']} (database {source['name']}, migration "
               f"{source['revision']}) into database {name}")
    counts = manifest["counts"]
    shown = ", ".join(f"{counts[t]:,} {t.replace('_', ' ')}" for t in
                      ("nationals", "crises", "rosters", "jobs", "audit_events", "users") if t in counts)
    click.echo(f"rows: {shown}; {len(counts)} tables, {sum(counts.values()):,} rows in all"
               + ("" if differences else ", every table as counted in the backup"))
    click.echo(keys_line)
    if created_roles:
        click.echo(f"database roles created: {', '.join(created_roles)}")
    if rearmed:
        click.echo(f"jobs: {rearmed} unfinished at backup time, sent again by the worker's outbox relay")
    if chain.ok:
        click.echo(f"audit trail intact: {chain.checked} sealed entries verified, {chain.unsealed} not sealed yet")
    click.echo(f"document numbers: {documents.checked} record(s) decrypted, their lookup indexes recomputed")
    if source["revision"] != head:
        click.echo(f"note: the database is at migration {source['revision']}, this code at {head}: run "
                   "`registry db upgrade`", err=True)
    failures = [f"row counts differ from the backup's: {'; '.join(differences)}"] if differences else []
    if not chain.ok:
        failures.append(f"audit trail BROKEN: {chain.problem} (first bad entry: {chain.first_bad})")
    return failures + documents.problems[:10]


def _check_keys_destination(keys_file: Path | None, data_dir: Path, settings: dict[str, str]) -> None:
    """Before anything is restored: the keys will have somewhere to go (nothing is created yet).

    :raises BackupRefused: the keys file exists or cannot be written; the data folder holds other keys.
    """
    if keys_file is not None:
        if keys_file.exists():
            raise BackupRefused(f"{keys_file} exists already: the keys file must be a new file")
        if not os.access(keys_file.absolute().parent, os.W_OK):
            raise BackupRefused(f"{keys_file.absolute().parent} is not writable")
        return
    conflicts = services.data_folder_conflicts(data_dir, settings)
    if conflicts:
        raise BackupRefused(f"the data folder holds other keys than the backup's: {', '.join(conflicts)}; "
                            "they belong to another database. Restore with another REGISTRY_DATA_DIR, or with "
                            "--keys-file FILE")
    existing = next(folder for folder in (data_dir, *data_dir.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise BackupRefused(f"the data folder {data_dir} cannot be written")


def _verify(url: str, environ, settings: dict[str, str], manifest: dict, key: bytes):
    """The restored database seen by the service with the backup's keys: the audit chain, document numbers;
    the restore recorded in the trail."""
    from registry.audit import services as audit_services
    factory = click.get_current_context().find_object(ScriptInfo).create_app  # the root group's
    try:
        app = factory(environ={**environ, **settings, "DATABASE_URL": url})
    except config_module.ConfigError as exc:
        raise click.ClickException(f"the database is restored, but the service does not start with the "
                                   f"backup's keys: {exc}") from None
    with app.app_context():
        scope.use_everything()
        chain = audit_services.verify(progress=lambda n: click.echo(f"  audit chain: {n:,} entries checked",
                                                                    err=True))
        documents = services.check_documents()
        services.record_restore(manifest, format.key_id(key))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
        head = ScriptDirectory(app.extensions["migrate"].directory).get_current_head()
    return chain, documents, head
