"""What ``registry backup`` and ``registry restore`` do.

A backup is one file (``registry.backups.format``): a manifest (the service's keys, the database's row
counts and roles, the migration revision) and the pg_dump archive of the whole database, both encrypted
with REGISTRY_BACKUP_KEY. A restore first authenticates the whole file, writing nothing anywhere; then
restores into an empty database in one transaction, puts the keys back, and checks the result with them.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import or_, select

from registry import config as config_module
from registry.audit import services as audit
from registry.auth.services import service_user
from registry.backups import database, format
from registry.crypto import DecryptionError, keyring, parse_index_keys, parse_keys
from registry.extensions import db
from registry.nationals.models import National
from registry.nationals.services import DOCUMENTS

MANIFEST_FORMAT = "sagip-backup"
MANIFEST_VERSION = 1


class BackupRefused(RuntimeError):
    """The command cannot go on; the message says why and what to do (no key material, no row values)."""


# --------------------------------------------------------------------- backup

def check_backup_key(key: bytes, app_config) -> None:
    """:raises BackupRefused: the backup key is one of the service's own keys."""
    settings = config_module.secret_settings(app_config)
    service_keys = {bytes.fromhex(settings[name]) for name in
                    ("REGISTRY_TOKEN_KEY", "REGISTRY_AUDIT_KEY", "REGISTRY_AUDIT_SIGNING_KEY", "REGISTRY_CHECKIN_KEY")}
    service_keys |= set(parse_keys(settings["REGISTRY_ENCRYPTION_KEYS"])[1].values())
    service_keys |= set(parse_index_keys(settings["REGISTRY_BLIND_INDEX_KEY"])[1].values())
    if key in service_keys:
        raise BackupRefused("REGISTRY_BACKUP_KEY must differ from the service's other keys")


@dataclass
class Written:
    created_at: str
    key_id: str
    file_bytes: int
    dump_bytes: int
    counts: dict[str, int]


def write_backup(out: BinaryIO, *, url: str, key: bytes, app_config, progress=None) -> Written:
    """Stream an encrypted backup of the database at ``url`` and the keys of ``app_config`` into ``out``.

    pg_dump reads an exported snapshot, the one the manifest's counts come from, so they describe the
    archive exactly while the service keeps writing. Its output goes through the encryption straight
    into ``out``: the archive never touches a disk in clear.

    :raises database.DatabaseError: the database could not be read.
    """
    roles = [app_config["REGISTRY_DB_ROLE"], app_config["REGISTRY_WORKER_DB_ROLE"]]
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with database.snapshot(url, [r for r in roles if r]) as (snapshot_id, source):
        manifest = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "created_at": created_at,
            "database": {"name": source.name, "server_version": source.server_version,
                         "revision": source.revision, "pg_dump": database.pg_dump_version()},
            "counts": source.counts, "roles": source.roles,
            "secrets": config_module.secret_settings(app_config),
        }
        dump = database.Dump(url, snapshot_id, bypasses_rls=source.bypasses_rls)
        counter = _Counter(out)
        try:
            dump_bytes = format.encrypt_stream(counter, key, json.dumps(manifest).encode(), dump.stdout,
                                               before_final=dump.finish, progress=progress)
        except BaseException:
            dump.abort()
            raise
    return Written(created_at, format.key_id(key), counter.bytes, dump_bytes, source.counts)


class _Counter:
    """A write-only stream that counts what passes (``out`` may be a pipe, whose position is unknown)."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.bytes += len(data)
        return len(data)


def backup_to_file(path: Path, **arguments) -> Written:
    """``write_backup`` into a new file ``path`` (mode 0600), which appears only once complete.

    :raises BackupRefused: ``path`` exists already.
    """
    if path.exists():
        raise BackupRefused(f"{path} exists already: give a new file name")
    partial = path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            written = write_backup(out, **arguments)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, path)  # never over a file that appeared meanwhile
        except FileExistsError:
            raise BackupRefused(f"{path} appeared while the backup was written: give a new file name") from None
    finally:
        partial.unlink(missing_ok=True)
    return written


def record_backup(written: Written) -> None:
    """The backup in the audit trail (the caller commits)."""
    audit.record("backup.create", actor=service_user(), result_count=sum(written.counts.values()),
                 details={"key_id": written.key_id, "bytes": written.file_bytes, "created_at": written.created_at})


# --------------------------------------------------------------------- restore

def read_manifest(path: Path, key: bytes, progress=None) -> dict:
    """Authenticate every chunk of the backup at ``path`` (nothing is written anywhere) and return its
    manifest.

    :raises format.BackupFileError: not a backup, another key, altered or cut short.
    """
    with open(path, "rb") as source:
        reader = format.Reader(source, key)
        chunks = reader.chunks()
        manifest = _manifest(next(chunks))
        if reader.finished:
            raise format.Corrupted("the file holds no database archive")
        for _ in chunks:
            if progress:
                progress(reader.bytes_read)
    return manifest


def _manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise format.Corrupted("the manifest is unreadable") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise format.Corrupted("the manifest is not a Sagip backup's")
    if manifest.get("version") != MANIFEST_VERSION:
        raise format.NotABackup(f"backup manifest version {manifest.get('version')} is not one this service reads")
    if set(manifest.get("secrets", {})) != set(config_module.SECRETS):
        raise format.Corrupted("the manifest does not hold the service's keys")
    return manifest


def check_target(url: str) -> None:
    """:raises BackupRefused: the database holds objects of its own: a restore goes into an empty one."""
    found = database.own_objects(url)
    if found:
        raise BackupRefused(
            f"the database is not empty ({', '.join(found)}, ...): a backup is restored into a new, empty "
            "database (createdb; PostGIS available), never over one in use. Point DATABASE_URL at one.")


def restore_archive(path: Path, key: bytes, url: str, progress=None) -> None:
    """Decrypt the archive of the backup at ``path`` into pg_restore, chunk by authenticated chunk.

    pg_restore runs in one transaction: a chunk that fails to authenticate (the file changed since
    ``read_manifest``) kills it before the end, and nothing is committed.

    :raises format.BackupFileError: as ``read_manifest``.
    :raises database.DatabaseError: pg_restore failed.
    """
    with open(path, "rb") as source:
        reader = format.Reader(source, key)
        chunks = reader.chunks()
        next(chunks)
        restore = database.Restore(url)
        try:
            for chunk in chunks:
                restore.write(chunk)
                if progress:
                    progress(reader.bytes_read)
        except BaseException:
            restore.abort()
            raise
        restore.finish()


def count_differences(url: str, manifest: dict) -> list[str]:
    """Tables whose restored row count is not the one recorded at backup time."""
    restored, recorded = database.counts(url), manifest["counts"]
    return [f"{table}: {recorded.get(table, 'no table')} in the backup, {restored.get(table, 'no table')} restored"
            for table in sorted(set(restored) | set(recorded)) if restored.get(table) != recorded.get(table)]


def _same_setting(name: str, first: str, second: str) -> bool:
    if name == "REGISTRY_SMS_HOOK_SECRET":
        return first.strip() == second.strip()
    return first.strip().lower() == second.strip().lower()  # hex keys: either case


def data_folder_conflicts(data_dir: Path, settings: dict[str, str]) -> list[str]:
    """The keys whose file in the data folder holds a different value (a restore would orphan the data
    they belong to)."""
    conflicts = []
    for name, value in settings.items():
        path = config_module.development_key_path(data_dir, config_module.development_key_name(name))
        if path.exists() and not _same_setting(name, path.read_text(), value):
            conflicts.append(f"{name} ({path})")
    return conflicts


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_to_data_folder(data_dir: Path, settings: dict[str, str], backup_key: bytes) -> list[Path]:
    """Write the keys the folder lacks (mode 0600), and the backup key if it has none, so the service and
    later backups on this machine use them. The files written."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    wanted = {config_module.development_key_name(name): value for name, value in settings.items()}
    wanted.setdefault("backup", backup_key.hex())
    for file_name, value in wanted.items():
        path = config_module.development_key_path(data_dir, file_name)
        if not path.exists():
            _write_new(path, value)
            written.append(path)
    return written


def write_keys_file(path: Path, settings: dict[str, str], manifest: dict) -> None:
    """The keys as ``NAME=value`` lines in a new file of mode 0600, for the operator's secret store.

    :raises BackupRefused: the file exists.
    """
    lines = [f"# Sagip's keys from the backup of {manifest['created_at']}: put them in the secret store the",
             "# service's environment comes from, then delete this file.",
             *(f"{name}={value}" for name, value in settings.items())]
    try:
        _write_new(path, "\n".join(lines) + "\n")
    except FileExistsError:
        raise BackupRefused(f"{path} exists already: the keys file must be a new file") from None


def environment_differences(settings: dict[str, str], environ) -> list[str]:
    """Keys set in the environment to other values than the backup's (the service would use those)."""
    return [name for name, value in settings.items()
            if environ.get(name) and not _same_setting(name, environ[name], value)]


@dataclass
class DocumentCheck:
    checked: int
    problems: list[str]


def check_documents(limit: int = 200) -> DocumentCheck:
    """Decrypt the passport and national ID numbers of up to ``limit`` records with the current keyring and
    recompute their blind indexes: the restored keys are the data's."""
    ring = keyring()
    columns = [(column, getattr(National, f"{column}_ciphertext"), getattr(National, f"{column}_index"))
               for column in DOCUMENTS.values()]
    rows = db.session.execute(
        select(National.id, National.index_key_version, *(c for _, cipher, index in columns for c in (cipher, index)))
        .where(or_(*(cipher.is_not(None) for _, cipher, _ in columns))).limit(limit)).all()
    problems = []
    for row in rows:
        for position, (column, _, _) in enumerate(columns):
            stored, index = row[2 + 2 * position], row[3 + 2 * position]
            if stored is None:
                continue
            try:
                number = ring.decrypt(column, row.id, stored)
            except DecryptionError as exc:
                problems.append(f"national {row.id}: the {column} number does not decrypt ({exc})")
                continue
            if row.index_key_version not in ring.index_keys or index is None or \
                    ring.blind_index(column, number, row.index_key_version) != bytes(index):
                problems.append(f"national {row.id}: the {column} lookup index does not match the restored "
                                "index key")
    return DocumentCheck(len(rows), problems)


def record_restore(manifest: dict, key_id: str) -> None:
    """The restore in the restored audit trail (the caller commits)."""
    audit.record("backup.restore", actor=service_user(), result_count=sum(manifest["counts"].values()),
                 details={"key_id": key_id, "backup_created_at": manifest["created_at"],
                          "revision": manifest["database"]["revision"]})

