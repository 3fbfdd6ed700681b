"""Running a job: once per job id, by one process at a time, a bounded number of times, its failure recorded.

A job that already succeeded or failed is skipped, so a re-delivered message
(worker killed, outbox relay re-sending, the broker restarted) does no work
twice. A running job is held by its process with a session-level advisory lock
(``Claim``) on a connection of its own: a second delivery of the same job while
it runs elsewhere finds the lock taken and leaves it (its holder finishes it;
if the holder dies, its connection and so the lock go with it, and the relay
sends the job again: ``registry.jobs.services.rescue``). Two processes never
run one job at once, whatever the broker re-delivers.

Each start counts an attempt; a job whose earlier attempts all died with their
worker (killed, out of memory: a poison file, a runaway) is failed at its
``REGISTRY_JOB_MAX_ATTEMPTS``-th re-delivery instead of being run again, so it
cannot hold a worker, and every job queued behind it, for ever. A job whose
database went away under it (restarted, failed over) is neither failed nor
counted: the worker waits for the database and runs it again, from the start,
in the same delivery. A failed job's upload is deleted with the failure.
Failures are logged by type and frames only: exception messages may quote
personal data.
"""
from __future__ import annotations

import logging
import os
import time
import traceback
import uuid
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select, text

from registry.auth import scope
from registry.errors import ApiError
from registry.extensions import database_unreachable, db
from registry.jobs import uploads
from registry.jobs.models import Job
from registry.jobs.services import fail, lock_key

log = logging.getLogger(__name__)

DATABASE_WAIT_S = 600      # how long a worker waits for its database to come back before giving the job up
MAX_DATABASE_OUTAGES = 20  # outages one delivery rides out before it gives the job up (the relay re-sends it)


class Claim:
    """This process's hold on a job: an advisory lock on a pooled connection kept for the run (autocommit:
    no transaction stays open). The connection's ``application_name`` names the job's kind and this process,
    so ``pg_stat_activity`` shows which process runs which job."""

    def __init__(self, job_id: uuid.UUID):
        self.key = lock_key(job_id)
        self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            self.held = bool(self.connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                     {"key": self.key}).scalar())
        except BaseException:
            self.connection.close()
            raise

    def name(self, kind: str) -> None:
        self.connection.execute(text("SELECT set_config('application_name', :name, false)"),
                                {"name": f"sagip job {kind} pid {os.getpid()}"})

    def release(self) -> None:
        """Unlock and give the connection back; a dead connection (its lock went with it) is thrown away."""
        try:
            if self.held:
                self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self.connection.execute(text("RESET application_name"))
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            self.connection.invalidate()
        finally:
            self.connection.close()


def run_job(job_id: str, work, *, on_failure=None) -> None:
    """Run ``work(job)`` for a queued or interrupted job, once.

    ``work`` writes its rows and the job's result (``registry.jobs.services.finish``) in the session's
    transaction, committed when it returns (or commits itself); on failure nothing of it stays, and
    ``on_failure(job_id)`` marks what the job was building (a run, a roster) failed with the job. ``work``
    must be rerunnable from the start: a killed worker's job, or one whose database went away, is run again.
    """
    job_uuid = uuid.UUID(job_id)
    outages = 0
    while True:
        try:
            _run_once(job_uuid, work, on_failure, count_attempt=outages == 0)
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


def _run_once(job_uuid: uuid.UUID, work, on_failure, *, count_attempt: bool) -> None:
    job_id = str(job_uuid)
    claim = Claim(job_uuid)
    try:
        if not claim.held:
            log.info("job %s is running in another process: this delivery leaves it", job_id)
            return
        scope.use_everything()  # workers act for the service; the job's creator was checked when it was queued
        job = db.session.scalar(select(Job).where(Job.id == job_uuid).with_for_update())
        if job is None or job.status in ("succeeded", "failed"):
            db.session.rollback()
            return
        claim.name(job.kind)
        limit = current_app.config["REGISTRY_JOB_MAX_ATTEMPTS"]
        if count_attempt and job.attempts >= limit:
            log.error("job %s (%s) stopped after %d interrupted attempts", job_id, job.kind, job.attempts)
            _failed(job_uuid, on_failure, "too-many-attempts",
                    f"The job was interrupted {job.attempts} times (its worker stopped each time: killed, or out "
                    "of memory); it was stopped so that it cannot hold up other work. Check the file or the "
                    "request, then start it again.")
            return
        job.status, job.started_at = "running", datetime.now(timezone.utc)
        if count_attempt:
            job.attempts += 1
        kind = job.kind
        db.session.commit()
        _work(job_uuid, job, kind, work, on_failure)
    finally:
        claim.release()


def _work(job_uuid: uuid.UUID, job: Job, kind: str, work, on_failure) -> None:
    job_id = str(job_uuid)
    try:
        work(job)
        db.session.commit()
    except ApiError as exc:
        db.session.rollback()
        _failed(job_uuid, on_failure, exc.code, exc.detail)
    except MemoryError:
        db.session.rollback()
        log.error("job %s (%s) ran out of memory", job_id, kind)
        _failed(job_uuid, on_failure, "out-of-memory", "The job needed more memory than a worker may use "
                                                       "(REGISTRY_WORKER_MAX_MEMORY_MB).")
    except Exception as exc:  # a bug: recorded on the job, logged without the exception's message
        if database_unreachable(exc):
            raise  # not the job's failure: run_job runs it again once the database is back
        db.session.rollback()
        log.error("job %s (%s) failed: %s\n%s", job_id, kind, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        _failed(job_uuid, on_failure, "internal-error", "The job failed unexpectedly; it has been logged.")


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
    """Mark the job (and what it was building) failed and delete its upload (personal data), in one commit."""
    uploads.discard(job_id)
    if on_failure is not None:
        on_failure(job_id)
    fail(job_id, {"code": code, "message": message})
