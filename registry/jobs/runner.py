"""Running a job: once per job id, a bounded number of times, its failure recorded with a reason.

A worker first claims the job (``registry.jobs.claims``: an advisory lock held while it runs), so a second
delivery of its message while it runs (a Redis re-delivery after the visibility timeout, the relay re-sending,
a message published twice) does nothing, in whichever worker it lands; a job that already succeeded or failed
is skipped, so a re-delivered message does no work twice. The worker that claimed it is recorded
(``jobs.worker``). Each start counts an attempt; a job whose earlier attempts all died with their worker
(killed, out of memory: a poison file, a runaway) is failed at its
``REGISTRY_JOB_MAX_ATTEMPTS``-th re-delivery instead of being run again, so it
cannot hold a worker, and every job queued behind it, for ever. A job whose
database went away under it (restarted, failed over) is neither failed nor
counted: the worker waits for the database, takes the claim again (it died with
its connection) and runs the job again from the start, in the same delivery;
if another worker took it meanwhile, this one leaves it. A failed job's upload
is deleted with the failure. Failures are logged by type and frames only:
exception messages may quote personal data.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid
from datetime import datetime, timezone

from celery import current_task
from flask import current_app
from sqlalchemy import select, text

from registry.auth import scope
from registry.errors import ApiError
from registry.extensions import database_unreachable, db
from registry.jobs import claims, uploads
from registry.jobs.models import Job
from registry.jobs.services import CLAIM_INFO, fail
from registry.logs import job_context

log = logging.getLogger(__name__)

DATABASE_WAIT_S = 600      # how long a worker waits for its database to come back before giving the job up
MAX_DATABASE_OUTAGES = 20  # outages one delivery rides out before it gives the job up (the relay re-sends it)


def run_job(job_id: str, work, *, on_failure=None) -> None:
    """Run ``work(job)`` for a queued or interrupted job, once.

    ``work`` writes its rows and the job's result (``registry.jobs.services.finish``) in the session's
    transaction, committed when it returns (or commits itself); on failure nothing of it stays, and
    ``on_failure(job_id)`` marks what the job was building (a run, a roster) failed with the job.
    """
    job_uuid = uuid.UUID(job_id)
    claim = claims.Claim(claims.job_key(job_uuid))
    if not claim.acquire():
        log.info("job %s is being run by another worker: this delivery does nothing", job_id)
        return
    try:
        outages = 0
        while True:  # the session's info holds the claim for ``finish`` (a lost database gives a new session)
            db.session.info.setdefault(CLAIM_INFO, {})[job_uuid] = (claim.backend_pid, claim.key)
            try:
                _run_claimed(job_uuid, work, on_failure, claim, count_attempt=outages == 0)
                return
            except Exception as exc:
                if not database_unreachable(exc) or outages >= MAX_DATABASE_OUTAGES:
                    raise
                outages += 1
                _forget_session()
                log.warning("job %s: the database went away (%s); running it again once it is back",
                            job_id, type(exc).__name__)
                if not wait_for_database(DATABASE_WAIT_S):
                    raise
                claim.release()  # its session ended with the server's; another worker may hold the job now
                if not claim.acquire():
                    log.info("job %s was taken by another worker while the database was away", job_id)
                    return
    finally:
        db.session.info.get(CLAIM_INFO, {}).pop(job_uuid, None)
        claim.release()


def worker_name() -> str:
    """Who runs the job: the Celery worker's node name (``-n``) and the process, or this host and process."""
    request = current_task.request if current_task else None
    return f"{getattr(request, 'hostname', None) or socket.gethostname()}/{os.getpid()}"[:200]


def _run_claimed(job_uuid: uuid.UUID, work, on_failure, claim: claims.Claim, *, count_attempt: bool = True) -> None:
    job_id = str(job_uuid)
    scope.use_everything()  # workers act for the service; the job's creator was checked when it was queued
    job = db.session.scalar(select(Job).where(Job.id == job_uuid).with_for_update())
    if job is None or job.status in ("succeeded", "failed"):
        db.session.rollback()
        return
    claim.name(f"sagip job {job.kind} pid {os.getpid()}")  # pg_stat_activity: who runs what (bench/faults.py)
    limit = current_app.config["REGISTRY_JOB_MAX_ATTEMPTS"]
    if count_attempt and job.attempts >= limit:
        log.error("job %s (%s) stopped after %d interrupted attempts", job_id, job.kind, job.attempts)
        _failed(job_uuid, on_failure, "too-many-attempts",
                f"The job was interrupted {job.attempts} times (its worker stopped each time: killed, or out of "
                "memory); it was stopped so that it cannot hold up other work. Check the file or the request, "
                "then start it again.")
        return
    job.status, job.started_at = "running", datetime.now(timezone.utc)
    if count_attempt:  # a rerun after the database came back is the same attempt
        job.attempts += 1
    job.worker = worker_name()
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
    except claims.Superseded:
        db.session.rollback()
        log.warning("job %s (%s): its claim was lost while it ran; this attempt's work is discarded", job_uuid, kind)
        return "discarded"
    except ApiError as exc:
        db.session.rollback()
        _failed(job_uuid, on_failure, exc.code, exc.detail)
    except MemoryError:
        db.session.rollback()
        log.error("job %s (%s) ran out of memory", job_uuid, kind)
        _failed(job_uuid, on_failure, "out-of-memory", "The job needed more memory than a worker may use "
                                                       "(REGISTRY_WORKER_MAX_MEMORY_MB).")
    except Exception as exc:  # a bug: recorded on the job, logged without the exception's message
        if database_unreachable(exc):
            raise  # not the job's failure: run_job runs it again once the database is back
        db.session.rollback()
        log.error("job %s (%s) failed: %s\n%s", job_uuid, kind, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        _failed(job_uuid, on_failure, "internal-error", "The job failed unexpectedly; it has been logged.")
    return "failed"


def _forget_session() -> None:
    """Drop the session of a run whose connection died (its rollback may fail on the dead connection)."""
    try:
        db.session.rollback()
    except Exception as exc:  # the connection is gone: nothing to roll back on the server
        log.info("rollback after the database went away: %s", type(exc).__name__)
    db.session.remove()


def wait_for_database(timeout_s: float, interval_s: float = 1.0) -> bool:
    """Wait until the database answers a query (True), or ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            if not database_unreachable(exc):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def _failed(job_id: uuid.UUID, on_failure, code: str, message: str) -> None:
    """Mark the job (and what it was building) failed and delete its upload (personal data), in one commit;
    nothing if this runner lost its claim meanwhile (the job is another attempt's now)."""
    if not owns(job_id):
        db.session.rollback()
        log.warning("job %s: its claim was lost while it ran; its failure is not recorded", job_id)
        return
    uploads.discard(job_id)
    if on_failure is not None:
        on_failure(job_id)
    fail(job_id, {"code": code, "message": message})


def owns(job_id: uuid.UUID) -> bool:
    """Whether this runner still holds the job's claim, the job's row locked until the transaction ends."""
    claim = db.session.info.get(CLAIM_INFO, {}).get(job_id)
    db.session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
    return claim is None or claims.holds(*claim)
