"""Running a job: once per job id, a bounded number of times, its failure recorded with a reason.

A job that already succeeded or failed is skipped, so a re-delivered message
(worker killed, outbox relay re-sending) does no work twice. Each start
counts an attempt; a job whose earlier attempts all died with their worker
(killed, out of memory: a poison file, a runaway) is failed at its
``REGISTRY_JOB_MAX_ATTEMPTS``-th re-delivery instead of being run again, so it
cannot hold a worker, and every job queued behind it, for ever. A failed
job's upload is deleted with the failure. Failures are logged by type and
frames only: exception messages may quote personal data.
"""
from __future__ import annotations

import logging
import time
import traceback
import uuid
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select

from registry.auth import scope
from registry.errors import ApiError
from registry.extensions import db
from registry.jobs import uploads
from registry.jobs.models import Job
from registry.jobs.services import fail
from registry.logs import job_context

log = logging.getLogger(__name__)


def run_job(job_id: str, work, *, on_failure=None) -> None:
    """Run ``work(job)`` for a queued or interrupted job, once.

    ``work`` writes its rows and the job's result (``registry.jobs.services.finish``) in the session's
    transaction, committed when it returns (or commits itself); on failure nothing of it stays, and
    ``on_failure(job_id)`` marks what the job was building (a run, a roster) failed with the job.
    """
    job_uuid = uuid.UUID(job_id)
    scope.use_everything()  # workers act for the service; the job's creator was checked when it was queued
    job = db.session.scalar(select(Job).where(Job.id == job_uuid).with_for_update())
    if job is None or job.status in ("succeeded", "failed"):
        db.session.rollback()
        return
    limit = current_app.config["REGISTRY_JOB_MAX_ATTEMPTS"]
    if job.attempts >= limit:
        log.error("job %s (%s) stopped after %d interrupted attempts", job_id, job.kind, job.attempts)
        _failed(job_uuid, on_failure, "too-many-attempts",
                f"The job was interrupted {job.attempts} times (its worker stopped each time: killed, or out of "
                "memory); it was stopped so that it cannot hold up other work. Check the file or the request, "
                "then start it again.")
        return
    job.status, job.started_at, job.attempts = "running", datetime.now(timezone.utc), job.attempts + 1
    kind, attempt = job.kind, job.attempts
    db.session.commit()
    with job_context(job_id, kind):
        log.info("job %s (%s) started", job_id, kind, extra={"attempt": attempt})
        started = time.perf_counter()
        status = _run(job, job_uuid, kind, work, on_failure)
        log.info("job %s (%s) %s", job_id, kind, status,
                 extra={"job_status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def _run(job: Job, job_uuid: uuid.UUID, kind: str, work, on_failure) -> str:
    """``work(job)`` committed, or its failure recorded (``kind`` read before: a rollback expires ``job``); the
    job's status."""
    try:
        work(job)
        db.session.commit()
        return "succeeded"
    except ApiError as exc:
        db.session.rollback()
        _failed(job_uuid, on_failure, exc.code, exc.detail)
    except MemoryError:
        db.session.rollback()
        log.error("job %s (%s) ran out of memory", job_uuid, kind)
        _failed(job_uuid, on_failure, "out-of-memory", "The job needed more memory than a worker may use "
                                                       "(REGISTRY_WORKER_MAX_MEMORY_MB).")
    except Exception as exc:  # a bug: recorded on the job, logged without the exception's message
        db.session.rollback()
        log.error("job %s (%s) failed: %s\n%s", job_uuid, kind, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        _failed(job_uuid, on_failure, "internal-error", "The job failed unexpectedly; it has been logged.")
    return "failed"


def _failed(job_id: uuid.UUID, on_failure, code: str, message: str) -> None:
    """Mark the job (and what it was building) failed and delete its upload (personal data), in one commit."""
    uploads.discard(job_id)
    if on_failure is not None:
        on_failure(job_id)
    fail(job_id, {"code": code, "message": message})
