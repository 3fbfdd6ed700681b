"""Running a job: idempotent per job id, status and errors recorded in ``jobs``."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from registry.auth import scope
from registry.errors import ApiError
from registry.extensions import db
from registry.jobs.models import Job
from registry.jobs.services import fail

log = logging.getLogger(__name__)


def run_job(job_id: str, work) -> None:
    """Run ``work(job)`` for a queued or interrupted job, once.

    A job that already succeeded or failed is skipped, so a re-delivered
    message (worker killed, outbox relay re-sending) does no work twice.
    ``work`` must commit its rows together with the job's result
    (``registry.jobs.services.finish``) or leave nothing behind.
    """
    job_uuid = uuid.UUID(job_id)
    scope.use_everything()  # workers act for the service; the job's creator was checked when it was queued
    job = db.session.scalar(select(Job).where(Job.id == job_uuid).with_for_update())
    if job is None or job.status in ("succeeded", "failed"):
        db.session.rollback()
        return
    job.status, job.started_at, job.attempts = "running", datetime.now(timezone.utc), job.attempts + 1
    db.session.commit()
    try:
        work(job)
    except ApiError as exc:
        db.session.rollback()
        fail(job_uuid, {"code": exc.code, "message": exc.detail})
    except Exception as exc:
        db.session.rollback()
        log.error("job %s (%s) failed: %s", job_id, job.kind, type(exc).__name__)
        fail(job_uuid, {"code": "internal-error", "message": "The job failed unexpectedly; it has been logged."})
        raise
