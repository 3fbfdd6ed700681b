"""Jobs: create them with their outbox message, send after commit, track progress."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import redis
from flask import current_app
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.extensions import db
from registry.jobs import claims
from registry.jobs.models import Job, OutboxMessage

log = logging.getLogger(__name__)

_PENDING_KEY = "sagip_outbox_pending"
# session.info: the claims this session's runner holds, {job id: (claim backend pid, lock key)} (runner.py)
CLAIM_INFO = "sagip_job_claims"
# The broker's run id as the relay last saw it: another one means Redis restarted (and may have lost its queues).
BROKER_RUN_KEY = "sagip:broker-run-id"


def enqueue(kind: str, task: str, *, params: dict | None = None, created_by: uuid.UUID | None = None) -> Job:
    """Create a queued job and its outbox message in the current transaction.

    The task is sent only after that transaction commits (see ``_after_commit``);
    if sending fails, the worker's outbox relay sends it later.
    """
    job = Job(id=uuid.uuid4(), kind=kind, status="queued", params=params or {}, created_by=created_by)
    db.session.add(job)
    db.session.flush()
    message = OutboxMessage(job_id=job.id, task=task)
    db.session.add(message)
    db.session.flush()
    db.session.info.setdefault(_PENDING_KEY, []).append((message.id, task, job.id))
    return job


def send(message_id: int, task: str, job_id: uuid.UUID) -> bool:
    """Publish one outbox message and mark it dispatched; False if the broker is unreachable."""
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(task, args=[str(job_id)], task_id=str(job_id),
                         retry=True, retry_policy={"max_retries": 1, "interval_start": 0.2})
    except Exception as exc:  # kombu raises several types for an unreachable broker
        log.warning("outbox message %s not sent (%s); the relay will retry", message_id, type(exc).__name__)
        with db.engine.begin() as conn:
            conn.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                         .values(attempts=OutboxMessage.attempts + 1))
        return False
    with db.engine.begin() as conn:
        conn.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                     .values(dispatched_at=datetime.now(timezone.utc), attempts=OutboxMessage.attempts + 1))
    return True


def relay_outbox(min_age_seconds: float = 2.0, limit: int = 500) -> int:
    """Send the outbox messages still undispatched after ``min_age_seconds``.

    Two relays may send the same message twice; that is harmless because the
    message id is the job id and tasks skip a job that already finished.
    """
    sent = 0
    with db.engine.begin() as conn:
        rows = conn.execute(
            select(OutboxMessage.id, OutboxMessage.task, OutboxMessage.job_id)
            .where(OutboxMessage.dispatched_at.is_(None),
                   OutboxMessage.created_at < db.func.now() - timedelta(seconds=min_age_seconds))
            .order_by(OutboxMessage.id).limit(limit)
        ).all()
    for message_id, task, job_id in rows:
        sent += send(message_id, task, job_id)
    return sent


def recover_orphaned(limit: int = 500) -> int:
    """Re-send the jobs left ``running`` by a worker that died: nobody holds their claim (``registry.jobs.claims``).

    Redis would re-deliver such a job's message only after the visibility timeout (an hour by default); this
    finds it within a beat period. A job whose worker is alive keeps its claim and is left alone; re-sending one
    that just finished, or that another worker has just claimed, is harmless (the runner skips or passes).
    """
    with db.engine.begin() as conn:
        running = conn.execute(
            select(Job.id, OutboxMessage.id, OutboxMessage.task).join(OutboxMessage, OutboxMessage.job_id == Job.id)
            .where(Job.status == "running").order_by(Job.started_at).limit(limit)).all()
        held = claims.held_keys(conn) if running else set()
    orphaned = [(message_id, task, job_id) for job_id, message_id, task in running
                if claims.job_key(job_id) not in held]
    for message_id, task, job_id in orphaned:
        log.warning("job %s was left running by a worker that stopped: sent again", job_id)
        send(message_id, task, job_id)
    return len(orphaned)


def rescue() -> int:
    """Mark for re-sending every unfinished job when the broker (Redis) restarted since the relay last looked
    (its ``run_id`` changed, or the key that remembers it is gone): its queues, and the unacknowledged messages
    of running jobs, may be gone; how many jobs. The relay then sends them. Running jobs whose worker died are
    ``recover_orphaned``'s. A job sent twice runs once (the runner skips finished jobs and claimed ones)."""
    if not broker_restarted():
        return 0
    unfinished = select(Job.id).where(Job.status.in_(("queued", "running")))
    with db.engine.begin() as conn:
        marked = conn.execute(update(OutboxMessage).where(OutboxMessage.dispatched_at.is_not(None),
                                                          OutboxMessage.job_id.in_(unfinished))
                              .values(dispatched_at=None)).rowcount
    if marked:
        log.warning("the broker restarted: %d unfinished jobs to send again", marked)
    return marked


def broker_restarted() -> bool:
    """Whether the broker (Redis) restarted since the last call, by its ``run_id``; False when unreachable."""
    client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
    try:
        run_id = client.info("server")["run_id"]
        return client.getset(BROKER_RUN_KEY, run_id) != run_id.encode()
    except redis.RedisError as exc:
        log.warning("broker restart not checked, Redis unavailable: %s", type(exc).__name__)
        return False
    finally:
        client.close()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    for message_id, task, job_id in pending or ():
        send(message_id, task, job_id)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def get_job(job_id: uuid.UUID, user) -> Job:
    """The job, if ``user`` created it or is an admin. :raises NotFound:"""
    job = db.session.get(Job, job_id)
    if job is None or (user.role != "admin" and job.created_by != user.id):
        raise NotFound("No such job.")
    return job


def recent_jobs(user, limit: int = 10, kind: str | None = None) -> list[Job]:
    """``user``'s newest jobs (of ``kind``, if given): the running ones first."""
    return list(db.session.scalars(
        select(Job).where(Job.created_by == user.id, *([Job.kind == kind] if kind else []))
        .order_by(Job.status.notin_(("queued", "running")), Job.created_at.desc()).limit(limit)))


def set_progress(job_id: uuid.UUID, progress: float) -> None:
    """Record progress (0..1) in its own short transaction, visible at once."""
    with db.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(progress=round(min(max(progress, 0.0), 1.0), 4)))


def finish(job_id: uuid.UUID, result: dict) -> None:
    """Mark the job succeeded in the current transaction, with the rows it wrote.

    :raises registry.jobs.claims.Superseded: the job is no longer this runner's (its claim was lost, or the job
        already ended): the transaction must be rolled back, so a job's result is always one attempt's.
    """
    ended = db.session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(
        status="succeeded", progress=1.0, result=result, finished_at=datetime.now(timezone.utc)))
    claim = db.session.info.get(CLAIM_INFO, {}).get(job_id)
    if ended.rowcount != 1 or (claim is not None and not claims.holds(*claim)):
        raise claims.Superseded(str(job_id))


def fail(job_id: uuid.UUID, error: dict) -> None:
    """Mark the job failed (after the caller rolled back its work) and commit."""
    db.session.execute(update(Job).where(Job.id == job_id).values(
        status="failed", error=error, finished_at=datetime.now(timezone.utc)))
    db.session.commit()
