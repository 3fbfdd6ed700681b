"""A job that kills its worker every time it runs: stopped after REGISTRY_JOB_MAX_ATTEMPTS starts.

    python bench/poison.py [--rows 100000] [--kill-after 1.0] [--visibility-timeout 10] [--runs 3] \
        [--worker-log FILE] [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_e_poison] \
        [--redis-url redis://127.0.0.1:6379/4]

1. Creates the database if missing and migrates it; purges the Redis database's queue.
2. Starts a real worker: ``python -m celery -A tasks worker --pool prefork --concurrency 1`` with
   DATABASE_URL, REDIS_URL and REGISTRY_VISIBILITY_TIMEOUT_S (--visibility-timeout).
3. --runs times, one after the other on the same worker: queues two imports of a new desk officer in an
   app context (``registry.imports.services.create_import`` + commit; the outbox sends them after the
   commit): the poison, a CSV of --rows demo rows (a few seconds of work), then a small one (1,000 rows)
   behind it.
4. Watches the poison's job row (a light poll): each time it is ``running`` with a new attempt, waits
   --kill-after seconds and SIGKILLs the worker's pool child (the child of the worker's main process,
   from /proc), as the kernel's OOM killer would.
5. Prints per run the timeline (attempt, seconds since the first start, how soon after the last kill it
   started again, pid killed, its RSS, and how long the worker's main process took to notice the death,
   from its log), the poison's final status and error (expected: failed, too-many-attempts, after
   REGISTRY_JOB_MAX_ATTEMPTS starts and no further run), whether its upload was deleted, the time from its
   first start to the refusal, and the job behind it (expected: succeeded); then the medians.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api import ensure_database, migrate, plain_url  # noqa: E402
from bench.zipbomb import Started, children, status_kib  # noqa: E402

BEHIND_ROWS = 1000
LOST = "exited with 'signal 9 (SIGKILL)'"  # celery's line for a pool child killed under its task
LOST_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ERROR/MainProcess\] Process '[^']+' "
                       r"pid:(\d+) exited with 'signal 9", re.MULTILINE)
GIVE_UP_S = 600


def job_row(conn, job_id) -> tuple:
    return conn.execute("SELECT status, attempts, started_at, finished_at, error, result, created_at FROM jobs "
                        "WHERE id = %s", (job_id,)).fetchone()


def one_run(app, url: str, worker: Started, poison_csv: bytes, behind_csv: bytes, kill_after: float) -> dict:
    """Queue the poison and a job behind it, kill the pool child under each start of the poison; what
    happened."""
    from registry.auth import scope
    from registry.auth.services import create_user
    from registry.extensions import db
    from registry.imports.services import create_import
    with app.app_context():
        scope.use_everything()
        user = create_user(f"bench-poison-desk-{uuid.uuid4().hex[:6]}", "desk")
        db.session.commit()
        poison = create_import("poison.csv", poison_csv, user).id
        db.session.commit()  # the outbox sends it now
        behind = create_import("behind.csv", behind_csv, user).id
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    queued = time.monotonic()
    kills, killed_attempt, first_start, last_kill = [], 0, None, None
    with psycopg.connect(url, autocommit=True) as watcher:  # a light poll, not an API call
        while True:
            status, attempts, started_at = job_row(watcher, poison)[:3]
            if status in ("succeeded", "failed"):
                break
            if status == "running" and attempts > killed_attempt:
                first_start = first_start or started_at
                came_back = (started_at - last_kill).total_seconds() if last_kill else None
                time.sleep(kill_after)
                if job_row(watcher, poison)[:2] != ("running", attempts):
                    continue
                pool = children(worker.proc.pid)
                if len(pool) != 1:
                    raise RuntimeError(f"expected one pool child, found {pool}")
                rss = status_kib(pool[0], "VmRSS")
                os.kill(pool[0], signal.SIGKILL)
                killed_wall = datetime.now()  # local time, as the worker's log
                last_kill = watcher.execute("SELECT clock_timestamp()").fetchone()[0]
                kills.append({"attempt": attempts, "pid": pool[0], "rss_kib": rss, "came_back_s": came_back,
                              "started_s": (started_at - first_start).total_seconds(),
                              "killed_s": (last_kill - first_start).total_seconds(), "killed_wall": killed_wall})
                killed_attempt = attempts
            if time.monotonic() - queued > GIVE_UP_S:
                raise RuntimeError(f"the poison job is still {status} after {GIVE_UP_S} s")
            time.sleep(0.01)
        deadline = time.monotonic() + GIVE_UP_S
        while job_row(watcher, behind)[0] not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError("the job behind the poison did not end")
            time.sleep(0.05)
        time.sleep(1)  # anything still queued for the poison would start now
        p_status, p_attempts, _, p_finished, p_error, _, p_created = job_row(watcher, poison)
        b_status, b_attempts, b_started, b_finished, b_error, b_result, _ = job_row(watcher, behind)
        upload_left = watcher.execute("SELECT count(*) FROM import_files WHERE job_id = %s", (poison,)).fetchone()[0]
    return {"poison": poison, "behind": behind, "kills": kills, "first_start": first_start, "last_kill": last_kill,
            "queued_to_start_s": (first_start - p_created).total_seconds() if first_start else None,
            "status": p_status, "attempts": p_attempts, "error": p_error, "finished": p_finished,
            "upload_left": upload_left, "behind_status": b_status, "behind_attempts": b_attempts,
            "behind_started": b_started, "behind_finished": b_finished, "behind_error": b_error,
            "behind_result": b_result}


def report(run: int, r: dict, log: str, limit: int) -> bool:
    """Print one run's timeline and outcome; whether it went as expected."""
    # When the worker's main process noticed each death (and sent the message back), from its log.
    noticed = {int(pid): datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f") for at, pid in LOST_LINE.findall(log)}
    first = r["first_start"]
    print(f"\nrun {run}: poison job {r['poison']}: queued, first started {r['queued_to_start_s']:.2f} s later")
    print(f"  {'attempt':>7} {'started s':>10} {'back after kill s':>18} {'pid killed':>11} {'RSS MB':>7} "
          f"{'killed at s':>12} {'worker noticed after s':>23}")
    for kill in r["kills"]:
        pid = kill["pid"]
        kill["noticed_s"] = (noticed[pid] - kill["killed_wall"]).total_seconds() if pid in noticed else None
        came_back, lag = kill["came_back_s"], kill["noticed_s"]
        came_back = "-" if came_back is None else f"{came_back:.2f}"
        lag = "?" if lag is None else f"{lag:.2f}"
        print(f"  {kill['attempt']:>7} {kill['started_s']:>10.2f} {came_back:>18} {pid:>11} "
              f"{kill['rss_kib'] / 1024:>7.0f} {kill['killed_s']:>12.2f} {lag:>23}")
    print(f"  final: {r['status']}, attempts {r['attempts']}, error {r['error']}")
    r["refusal_s"] = (r["finished"] - first).total_seconds() if r["finished"] and first else None
    if r["refusal_s"] is not None:
        print(f"  refused at +{r['refusal_s']:.2f} s ({(r['finished'] - r['last_kill']).total_seconds():.2f} s after "
              f"the last kill): {r['refusal_s']:.2f} s from the first start to the refusal")
    refused_line = f"job {r['poison']} (import) stopped after"
    expected = (r["status"] == "failed" and (r["error"] or {}).get("code") == "too-many-attempts"
                and r["attempts"] == limit and len(r["kills"]) == limit)
    print(f"  failed / too-many-attempts after {limit} starts, no further run: {'YES' if expected else 'NO'} "
          f"({len(r['kills'])} starts seen and killed); its upload deleted: "
          f"{'yes' if r['upload_left'] == 0 else 'NO'}; the worker logged the refusal: "
          f"{'yes' if refused_line in log else 'no'}")
    b_started, b_finished = r["behind_started"], r["behind_finished"]
    print(f"  job behind it {r['behind']}: {r['behind_status']}, attempts {r['behind_attempts']}"
          + (f", started at +{(b_started - first).total_seconds():.2f} s, finished at "
             f"+{(b_finished - first).total_seconds():.2f} s" if b_started and b_finished and first else "")
          + (f", created {r['behind_result'].get('created')}" if r["behind_result"] else "")
          + (f", error {r['behind_error']}" if r["behind_error"] else ""))
    return expected and r["behind_status"] == "succeeded"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the poison import (its running time)")
    parser.add_argument("--kill-after", type=float, default=1.0, help="seconds into each attempt before the kill")
    parser.add_argument("--visibility-timeout", type=int, default=10, help="REGISTRY_VISIBILITY_TIMEOUT_S")
    parser.add_argument("--runs", type=int, default=3, help="poison jobs, one after the other, on the same worker")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_e_poison")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--worker-log", metavar="FILE", help="keep the worker's log in FILE")
    args = parser.parse_args()
    url = plain_url(args.database_url)
    if "bench" not in url.rsplit("/", 1)[-1]:
        raise SystemExit("refusing a database whose name lacks 'bench' (imports are written into it)")
    os.environ.update(DATABASE_URL=url, REDIS_URL=args.redis_url,
                      REGISTRY_VISIBILITY_TIMEOUT_S=str(args.visibility_timeout))
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")

    from registry import config, create_app
    from registry.demo import generate_rows, rows_to_csv

    ensure_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(url)})
    migrate(app)
    app.extensions["celery"].control.purge()
    limit = app.config["REGISTRY_JOB_MAX_ATTEMPTS"]
    seed = int(time.time())  # fresh passports: the jobs behind are not duplicates of an earlier run's
    started = time.perf_counter()
    poison_csv = rows_to_csv(generate_rows(args.rows, seed))
    print(f"poison: {args.rows:,} rows, {len(poison_csv) / 1e6:.1f} MB of CSV (built in "
          f"{time.perf_counter() - started:.1f} s); behind it: {BEHIND_ROWS:,} rows; {args.kill_after:g} s into "
          f"each start its pool child is SIGKILLed")

    worker = Started("worker", [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
                                "--concurrency", "1", "--loglevel", "INFO", "--without-mingle", "--without-gossip",
                                "--without-heartbeat"], dict(os.environ))
    runs, log = [], ""
    try:
        worker.wait_for(lambda: " ready." in worker.log() and children(worker.proc.pid), "ready worker")
        print(f"worker: main pid {worker.proc.pid}, pool child {children(worker.proc.pid)}; "
              f"REGISTRY_JOB_MAX_ATTEMPTS={limit}, REGISTRY_VISIBILITY_TIMEOUT_S={args.visibility_timeout}")
        for run in range(args.runs):
            behind_csv = rows_to_csv(generate_rows(BEHIND_ROWS, seed + 1 + run))
            runs.append(one_run(app, url, worker, poison_csv, behind_csv, args.kill_after))
            print(f"  run {run + 1}: {runs[-1]['status']} after {len(runs[-1]['kills'])} kills", flush=True)
        pool = children(worker.proc.pid)
    finally:
        log = worker.log()
        if args.worker_log:
            Path(args.worker_log).write_text(log)
        worker.stop()

    ok = [report(run + 1, r, log, limit) for run, r in enumerate(runs)]
    med = statistics.median
    refusals = [r["refusal_s"] for r in runs if r["refusal_s"] is not None]
    lags = [k["noticed_s"] for r in runs for k in r["kills"] if k["noticed_s"] is not None]
    print(f"\n{sum(ok)} of {len(runs)} runs as expected (failed, too-many-attempts after {limit} starts, no further "
          f"run; the job behind succeeded); worker main process {worker.proc.pid} alive to the end, pool child {pool}")
    if refusals:
        print(f"from the first start to the refusal: median {med(refusals):.2f} s (runs: "
              f"{', '.join(f'{s:.2f}' for s in refusals)}), with {limit} kills {args.kill_after:g} s into each start")
    if lags:
        print(f"the worker noticed a killed pool child after: median {med(lags):.2f} s, at most {max(lags):.2f} s")
    print(f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
