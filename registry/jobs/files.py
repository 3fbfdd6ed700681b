"""Files built by jobs (large exports): encrypted at rest, downloadable by whoever asked, until they expire.

A file is written as AES-GCM chunks of 1 MiB, each bound to the job's id,
its index and whether it is the last, so chunks cannot be reordered,
swapped between files or dropped. The job's ``result`` names the file
(``filename``, ``media_type``, ``expires_at``); ``open_download`` serves it
to the job's creator only; the worker's beat deletes expired files.
"""
from __future__ import annotations

import os
import secrets
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from flask import current_app

from registry.crypto import keyring
from registry.errors import Gone, NotFound

CHUNK_BYTES = 1 << 20


class ExportGone(Gone):
    code, title = "export-expired", "The export has expired"


class EncryptedFile:
    """A write-only file encrypted at rest, chunk by chunk (see the module's docstring)."""

    def __init__(self, path: Path, job_id: uuid.UUID):
        self._file = open(path, "xb")
        os.chmod(path, 0o600)
        self._job_id, self._buffer, self._index, self._written = job_id, bytearray(), 0, 0

    def write(self, data) -> int:
        self._buffer += data
        self._written += len(data)
        while len(self._buffer) > CHUNK_BYTES:
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self._file.closed:
            self._seal(bytes(self._buffer), last=True)
            self._file.close()

    def _seal(self, data: bytes, *, last: bool) -> None:
        blob = keyring().encrypt_bytes(f"export:{self._index}:{int(last)}", self._job_id, data)
        self._file.write(struct.pack(">I", len(blob)) + blob)
        self._index += 1


def read_encrypted(stored, job_id: uuid.UUID, ring) -> Iterator[bytes]:
    """The plaintext of an ``EncryptedFile`` opened for reading (``open(path, "rb")``), a chunk at a
    time; the file is closed at the end. :raises DecryptionError: altered, reordered or truncated."""
    with stored:
        index = 0
        while True:
            head = stored.read(4)
            if len(head) < 4:
                raise ValueError("the export file is truncated")
            blob = stored.read(struct.unpack(">I", head)[0])
            last = not stored.peek(1)
            yield ring.decrypt_bytes(f"export:{index}:{int(last)}", job_id, blob)
            if last:
                return
            index += 1


def directory() -> Path:
    path = Path(current_app.config["REGISTRY_DATA_DIR"]) / "exports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def path_of(job_id: uuid.UUID) -> Path:
    return directory() / f"{job_id}.bin"


@contextmanager
def writing(job_id: uuid.UUID) -> Iterator[EncryptedFile]:
    """The job's file, written under a name of this attempt's own and put in place whole once complete
    (``os.replace``): two attempts never write into one file, and the job's name never holds half of one."""
    partial = directory() / f"{job_id}.{os.getpid()}.{secrets.token_hex(4)}.part"
    out = EncryptedFile(partial, job_id)
    try:
        yield out
        out.close()
        os.replace(partial, path_of(job_id))
    finally:
        out.close()
        partial.unlink(missing_ok=True)


def purge_expired(now: datetime | None = None) -> int:
    """Delete job-built files past their time (and any left by a failed job or a killed worker); how many."""
    ttl = current_app.config["REGISTRY_EXPORT_TTL_SECONDS"]
    now = now or datetime.now(timezone.utc)
    removed = 0
    for path in [*directory().glob("*.bin"), *directory().glob("*.part")]:
        if now.timestamp() - path.stat().st_mtime > ttl:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def open_download(job, user) -> tuple[Iterator[bytes], dict]:
    """(the plaintext chunks, the job's result) of a file ``user`` asked for. :raises NotFound, ExportGone:"""
    result = job.result or {}
    if job.created_by != user.id or job.status != "succeeded" or "download_url" not in result:
        raise NotFound("No such download.")
    path = path_of(job.id)
    if datetime.fromisoformat(result["expires_at"]) < datetime.now(timezone.utc) or not path.exists():
        raise ExportGone("The export has expired; export it again.")
    return read_encrypted(open(path, "rb"), job.id, keyring()), result
