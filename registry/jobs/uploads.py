"""Files uploaded for a job (imports): encrypted at rest, read only by the worker, deleted once the job has run.

An upload holds personal data: it is encrypted like document numbers (bound
to its job), deleted in the transaction that finishes its job, deleted when
the job fails (``registry.jobs.runner``), and purged by the worker's beat
when older than REGISTRY_UPLOAD_RETENTION_HOURS whatever happened to its job.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, func

from registry.crypto import keyring
from registry.errors import Unprocessable
from registry.extensions import db
from registry.jobs.models import JobUpload

_FIELD = "import_file"  # the encryption's associated data (kept from when only imports uploaded files)


def store(job_id: uuid.UUID, filename: str, data: bytes) -> None:
    """Keep ``data`` for the job, encrypted. :raises Unprocessable: an empty file."""
    if not data:
        raise Unprocessable("The file is empty.", errors={"file": ["The file is empty."]})
    db.session.add(JobUpload(job_id=job_id, filename=filename[:255],
                             data=keyring().encrypt_bytes(_FIELD, job_id, data)))
    db.session.flush()


def read(job_id: uuid.UUID) -> bytes:
    """The job's file. :raises Unprocessable: it is gone (purged after REGISTRY_UPLOAD_RETENTION_HOURS)."""
    upload = db.session.get(JobUpload, job_id)
    if upload is None:
        raise Unprocessable("The uploaded file is no longer available; upload it again.")
    return keyring().decrypt_bytes(_FIELD, job_id, upload.data)


def discard(job_id: uuid.UUID) -> None:
    """Delete the job's file, if any, in the current transaction."""
    db.session.execute(delete(JobUpload).where(JobUpload.job_id == job_id))


def purge_older_than(hours: float) -> int:
    """Delete every upload older than ``hours``; how many (the caller commits)."""
    cutoff = func.now() - timedelta(hours=hours)
    return db.session.execute(delete(JobUpload).where(JobUpload.created_at < cutoff)).rowcount
