"""Claims: one worker runs a job at a time, and one beat task of a kind at a time, whatever delivered them.

Many workers share one Redis queue, and a job's message can arrive twice: Redis re-delivers an unacknowledged
message after the visibility timeout even when its worker is still running it, the outbox relay re-sends, a
publish is retried. A worker therefore *claims* a job before running it: a session-level advisory lock keyed
by the job's id, taken with ``pg_try_advisory_lock`` on a connection of its own and held while the job runs.
A second delivery cannot take it and does nothing (its message is acknowledged; the job is not failed).

The lock lives exactly as long as that connection. A worker killed (SIGKILL, out of memory) loses it at once
(the kernel closes its socket and the server ends the session); a machine that vanished loses it within the
keepalive time set on the connection (``KEEPALIVE``: about a minute). The beat then finds the job still
``running`` with nobody holding its claim (``held_keys``) and sends it again
(``registry.jobs.services.recover_orphaned``).

The claim is also a fence: ``registry.jobs.services.finish`` records a job's result only while its runner
still holds the claim (``holds``), in the same transaction as the work's rows, so a job's result is always one
attempt's. Session-level locks need a real session: behind a pooler, the claim connection must be in session
mode (PgBouncer ``pool_mode = session``), never transaction mode.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import uuid

import psycopg
from sqlalchemy import text

from registry.extensions import db

log = logging.getLogger(__name__)

# A vanished peer (a worker's machine powered off, a cable pulled) is noticed by the server after about
# idle + interval × count seconds; then its claims are free again.
KEEPALIVE = {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}


class Superseded(Exception):
    """The runner no longer holds the job's claim (its claim connection was lost): its work is discarded."""


def job_key(job_id: uuid.UUID) -> int:
    """The advisory lock key of a job: its id's first 64 bits, signed (ids are random)."""
    return int.from_bytes(job_id.bytes[:8], "big", signed=True)


def task_key(name: str) -> int:
    """The advisory lock key of a periodic task (``one_at_a_time``)."""
    return int.from_bytes(hashlib.sha256(f"sagip:periodic:{name}".encode()).digest()[:8], "big", signed=True)


def lock_ids(key: int) -> tuple[int, int]:
    """(classid, objid) under which ``pg_locks`` lists the bigint advisory lock ``key`` (objsubid 1)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class Claim:
    """An advisory lock held on a connection of its own, released by closing it."""

    def __init__(self, key: int):
        self.key = key
        self.backend_pid: int | None = None
        self._connection = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; whether it was taken. The connection is opened here, outside the
        engine's pool (a pooled connection could hand a forgotten lock to the next job), with the server-side
        keepalives as startup options, so taking the lock is one round trip after connecting."""
        options = " ".join(f"-c {name}={value}" for name, value in KEEPALIVE.items())
        connection = psycopg.connect(db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                                     autocommit=True, application_name="sagip claim", options=options)
        taken, pid = connection.execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (self.key,)).fetchone()
        if not taken:
            connection.close()
            return False
        self._connection, self.backend_pid = connection, pid
        return True

    def name(self, label: str) -> None:
        """Name the claim's session (``pg_stat_activity.application_name``): which process runs which job."""
        if self._connection is not None:
            self._connection.execute("SELECT set_config('application_name', %s, false)", (label[:63],))

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # the session ends, and its lock with it
            self._connection = None


def holds(backend_pid: int, key: int) -> bool:
    """Whether the session ``backend_pid`` still holds the advisory lock ``key``, read in the session's current
    transaction (``finish`` reads it after locking the job's row: a new claim waits for that row)."""
    classid, objid = lock_ids(key)
    return bool(db.session.scalar(text(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = :classid AND objid = :objid AND pid = :pid)"),
        {"classid": classid, "objid": objid, "pid": backend_pid}))


def held_keys(connection) -> set[int]:
    """The bigint advisory locks held in this database now (as keys), read on ``connection``."""
    rows = connection.execute(text(
        "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")).all()
    keys = set()
    for classid, objid in rows:
        unsigned = (classid << 32) | objid
        keys.add(unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned)
    return keys


def one_at_a_time(name: str):
    """A periodic task that runs in one worker at a time: a second copy (two beats, or a run that outlasted its
    interval) returns ``None`` at once instead of doing the same work beside the first."""
    def decorate(work):
        @functools.wraps(work)
        def run(*args, **kwargs):
            claim = Claim(task_key(name))
            if not claim.acquire():
                log.info("periodic task %s is running in another worker: skipped", name)
                return None
            try:
                return work(*args, **kwargs)
            finally:
                claim.release()
        return run
    return decorate
