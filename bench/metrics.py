"""What a ``/metrics`` scrape costs over a large jobs table, beside the bare ``GROUP BY``.

    python bench/metrics.py [--jobs 1000000] [--repeat 5] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_metrics] \
        [--redis-url redis://127.0.0.1:6379/4]

1. Creates the database if missing and migrates it; COPYs --jobs job rows (kinds and statuses in the
   proportions of a busy year: mostly finished imports, exposure runs, rosters, exports and campaigns, with
   run times from 0.05 s to an hour; a few queued and running) unless the table already holds that many.
2. Times, --repeat times each after one warm-up, medians:
   - the floor: ``SELECT kind, status, count(*) FROM jobs GROUP BY kind, status``;
   - the scrape's own statement (``registry.metrics.services``: counts by kind and status, run-time buckets,
     the oldest queued job, in one pass);
   - ``GET /metrics`` through the application as an admin (authentication, the statement, the broker's
     queue lengths, the exposition, the audit event), in-process.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api import ensure_database, migrate, plain_url  # noqa: E402

KINDS = (("import", 0.3), ("exposure", 0.3), ("roster", 0.2), ("roster_export", 0.1), ("campaign", 0.1))
FLOOR = "SELECT kind, status, count(*) FROM jobs GROUP BY kind, status"


def seed(url: str, count: int) -> None:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == count:
            print(f"jobs: {count:,} already seeded")
            return
        conn.execute("TRUNCATE jobs CASCADE")
        rng = random.Random(15)
        now = datetime.now(timezone.utc)
        kinds, weights = zip(*KINDS)
        started_at = time.perf_counter()
        with conn.cursor().copy("COPY jobs (id, kind, status, progress, created_at, started_at, finished_at) "
                                "FROM STDIN") as copy:
            for n in range(count):
                created = now - timedelta(seconds=rng.uniform(60, 365 * 86400))
                roll = rng.random()
                status = "succeeded" if roll < 0.95 else "failed" if roll < 0.999 else \
                    "queued" if roll < 0.9995 else "running"
                started = None if status == "queued" else created + timedelta(seconds=rng.uniform(0, 5))
                run_s = min(3600.0, rng.lognormvariate(1.0, 1.8))
                finished = started + timedelta(seconds=run_s) if status in ("succeeded", "failed") else None
                copy.write_row((uuid.UUID(int=rng.getrandbits(128)), rng.choices(kinds, weights)[0], status,
                                1.0 if finished else 0.0, created, started, finished))
        conn.execute("ANALYZE jobs")
        print(f"jobs: {count:,} seeded by COPY in {time.perf_counter() - started_at:.1f} s")


def timed(run, repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_metrics")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    url = plain_url(args.database_url)
    ensure_database(url)
    from registry import config, create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(url), "REDIS_URL": args.redis_url})
    migrate(app)
    seed(url, args.jobs)

    from registry.auth.services import create_user, issue_token
    from registry.extensions import db
    from registry.metrics.services import _JOBS
    with app.app_context():
        token = issue_token(create_user(f"bench-metrics-{uuid.uuid4().hex[:6]}", "admin", []))
        db.session.commit()
    with psycopg.connect(url) as conn:
        floor_s = timed(lambda: conn.execute(FLOOR).fetchall(), args.repeat)
        statement_s = timed(lambda: conn.execute(str(_JOBS)).fetchall(), args.repeat)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def scrape():
        with app.app_context():
            response = client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.status_code
        return response

    scrape_s = timed(scrape, args.repeat)
    size = len(scrape().get_data())
    print(f"{args.jobs:,} jobs, medians of {args.repeat}:")
    print(f"  floor  GROUP BY kind, status              {floor_s * 1000:8.1f} ms")
    print(f"  the scrape's statement (counts, buckets)  {statement_s * 1000:8.1f} ms  "
          f"({statement_s / floor_s:.2f}x the floor)")
    print(f"  GET /metrics as an admin, in-process      {scrape_s * 1000:8.1f} ms  "
          f"({scrape_s / floor_s:.2f}x the floor; {size:,} bytes)")


if __name__ == "__main__":
    main()
