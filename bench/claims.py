"""What claiming a job costs a worker (registry/jobs/claims.py), beside the bare advisory lock.

    python bench/claims.py [--claims 500] [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench]

The claim: a connection of its own (the engine's address, keepalives as startup options), one
``pg_try_advisory_lock``, the one read of ``pg_locks`` that the job's ``finish`` makes in the work's open
transaction (``holds``), then closing the connection (which releases the lock). The floor: a bare psycopg
connection opened, ``pg_try_advisory_lock``, closed: a lock that dies with its connection cannot cost less.
For reference, the lock and unlock alone on a connection already open (what a pooled claim would cost, at the
price of a lock that can outlive its job on a pooled connection). Medians and p95 per claim, in milliseconds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402


def timed(action, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    return f"median {statistics.median(ordered):.2f} ms, p95 {ordered[int(len(ordered) * 0.95) - 1]:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    from sqlalchemy import text

    from registry import create_app
    from registry.extensions import db
    from registry.jobs import claims

    app = create_app({"REGISTRY_PROCESS": "worker", "REGISTRY_WORKER_DB_ROLE": "", "REGISTRY_DB_ROLE": ""})
    with app.app_context():
        def claim_and_check():
            claim = claims.Claim(claims.job_key(uuid.uuid4()))
            assert claim.acquire()
            assert claims.holds(claim.backend_pid, claim.key)  # as finish() does, in the work's open transaction
            claim.release()

        db.session.execute(text("SELECT 1"))  # the work's transaction, open before its finish
        path = timed(claim_and_check, args.claims)
        db.session.rollback()
    def bare_claim():
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_try_advisory_lock(%s)", (claims.job_key(uuid.uuid4()),))

    floor = timed(bare_claim, args.claims)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        def lock_only():
            key = claims.job_key(uuid.uuid4())
            conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

        pooled = timed(lock_only, args.claims)
    print(f"claim (own connection, lock, holds, close): {summary(path)}")
    print(f"floor (psycopg connect, lock, close):       {summary(floor)}")
    print(f"ratio of medians: {statistics.median(path) / statistics.median(floor):.2f}x")
    print(f"reference, lock + unlock on an open connection: {summary(pooled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
