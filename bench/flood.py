"""A flood of bogus-token requests against the API under gunicorn: what it adds to the audit trail.

    python bench/flood.py [--requests 10000] [--processes 4] [--connections 4] [--port 8768] \
        [--web-workers 2] [--threads 4] [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_e_flood] \
        [--redis-url redis://127.0.0.1:6379/4]

1. Creates the database if missing and migrates it; folds refused calls left over by an earlier run
   (so that what is folded at the end is this run's); deletes this Redis database's counters of failed
   authentications, so the run starts with a fresh per-minute limit (REGISTRY_AUTH_FAILURES_PER_MINUTE).
2. Counts ``audit_events`` and ``audit_refused_calls`` (rows, and calls counted in them).
3. Starts gunicorn (``registry/gunicorn_conf.py``, --web-workers x --threads) and sends --requests
   ``GET /api/v1/nationals/{random id}`` with a random, well-formed (``sgp_…``) but unknown bearer token
   each, from --processes client processes of --connections keep-alive connections each.
4. Counts again: statuses seen (401 until the limit, then 429), audit events and refused-call rows the
   flood added, and the time. Stops gunicorn.
5. Folds, as the worker's sealing task does (``registry.audit.services.fold_refused_calls`` with until =
   now + 1 minute, so the current minute is folded too, then commit): the audit events folding added,
   with their counts, which sum to the calls refused. Beside it, the rows the old design (one audit
   event per refused call) would have added.
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import queue
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api import Server, ensure_database, migrate, plain_url  # noqa: E402


def counts(url: str) -> dict:
    with psycopg.connect(url) as conn:
        events, last_id = conn.execute("SELECT count(*), coalesce(max(id), 0) FROM audit_events").fetchone()
        rows, calls = conn.execute("SELECT count(*), coalesce(sum(calls), 0) FROM audit_refused_calls").fetchone()
    return {"events": events, "last_id": last_id, "refused_rows": rows, "refused_calls": calls}


def fold(app) -> list[tuple]:
    """Fold every counted minute (the current one too) into audit events, commit; the events added."""
    from registry.audit.services import fold_refused_calls
    from registry.extensions import db
    with app.app_context():
        before = db.session.execute(db.text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar()
        fold_refused_calls(until=datetime.now(timezone.utc) + timedelta(minutes=1))
        db.session.commit()
        added = db.session.execute(db.text(
            "SELECT id, outcome, result_count, details FROM audit_events WHERE id > :id AND action = 'refused_calls' "
            "ORDER BY id"), {"id": before}).all()
        db.session.remove()
        db.engine.dispose()
    return [tuple(row) for row in added]


def _client(port: int, quota: int, go, results) -> None:
    """One keep-alive connection sending ``quota`` requests with bogus tokens."""
    statuses, reconnects = Counter(), 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    go.wait()
    for _ in range(quota):
        headers = {"Authorization": f"Bearer sgp_{secrets.token_urlsafe(32)}", "Accept": "application/json"}
        for attempt in (1, 2):
            try:
                conn.request("GET", f"/api/v1/nationals/{uuid.uuid4()}", headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[response.status] += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    reconnects += 1
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                reconnects += 1
                if attempt == 2:
                    statuses["connection error"] += 1
    conn.close()
    results.append((statuses, reconnects))


def _process(port: int, quotas: list[int], ready, go, out) -> None:
    results: list = []
    start = threading.Event()
    threads = [threading.Thread(target=_client, args=(port, quota, start, results)) for quota in quotas]
    for thread in threads:
        thread.start()
    ready.set()
    go.wait()
    start.set()
    for thread in threads:
        thread.join()
    statuses, reconnects = Counter(), 0
    for counted, again in results:
        statuses.update(counted)
        reconnects += again
    out.put((dict(statuses), reconnects))


def flood(port: int, requests: int, processes: int, connections: int) -> tuple[Counter, int, float]:
    """(statuses, reconnects, seconds) of ``requests`` bogus calls."""
    total = processes * connections
    quotas = [requests // total + (1 if i < requests % total else 0) for i in range(total)]
    go, out = mp.Event(), mp.Queue()
    readies, children = [], []
    for p in range(processes):
        ready = mp.Event()
        child = mp.Process(target=_process, args=(port, quotas[p::processes], ready, go, out), daemon=True)
        child.start()
        readies.append(ready)
        children.append(child)
    try:
        for ready in readies:
            if not ready.wait(60):
                raise RuntimeError("a client process did not start")
        started = time.perf_counter()
        go.set()
        statuses, reconnects = Counter(), 0
        for _ in children:
            try:
                counted, again = out.get(timeout=600)
            except queue.Empty:
                raise RuntimeError("a client process did not report") from None
            statuses.update(counted)
            reconnects += again
        seconds = time.perf_counter() - started
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
    return statuses, reconnects, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections (threads) per process")
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--web-workers", type=int, default=None, help="gunicorn workers (default: the conf's)")
    parser.add_argument("--threads", type=int, default=None, help="threads per gunicorn worker (default: the conf's)")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_e_flood")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    url = plain_url(args.database_url)
    if "bench" not in url.rsplit("/", 1)[-1]:
        raise SystemExit("refusing a database whose name lacks 'bench' (its audit trail is changed)")
    os.environ.update(DATABASE_URL=url, REDIS_URL=args.redis_url)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")

    from registry import config, create_app
    ensure_database(url)
    # The sealing task's process: the workers' database role, which folds the counts.
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(url), "REGISTRY_PROCESS": "worker"})
    migrate(app)
    leftover = fold(app)
    if leftover:
        print(f"folded {len(leftover)} refused-call rows left by an earlier run first")
    import redis
    limiter = redis.Redis.from_url(args.redis_url)
    stale = list(limiter.scan_iter("sagip:ratelimit:auth-failures:*"))
    if stale:
        limiter.delete(*stale)
    limit = app.config["REGISTRY_AUTH_FAILURES_PER_MINUTE"]

    before = counts(url)
    server = Server(url, args.port, args.web_workers, args.threads)
    keep_log = False
    try:
        server.start()
        print(f"gunicorn ({server.label}) up on 127.0.0.1:{args.port}; {args.requests:,} requests from "
              f"{args.processes} processes x {args.connections} keep-alive connections", flush=True)
        started_at, cpu_started = datetime.now(timezone.utc), server.cpu_seconds()
        statuses, reconnects, seconds = flood(args.port, args.requests, args.processes, args.connections)
        ended_at, cpu = datetime.now(timezone.utc), server.cpu_seconds() - cpu_started
    except BaseException:
        keep_log = True
        raise
    finally:
        server.stop()
        if keep_log or server.errors_in_log():
            print(f"gunicorn log kept: {server.log_path}")
        else:
            server.remove_log()
    after = counts(url)
    minutes = int(ended_at.timestamp() // 60) - int(started_at.timestamp() // 60) + 1

    sent = sum(statuses.values())
    print(f"\n{sent:,} requests with bogus tokens in {seconds:.2f} s ({sent / seconds:,.0f}/s), "
          f"{reconnects} reconnections; gunicorn CPU {cpu * 1000 / max(1, sent):.1f} ms per request; load average "
          f"now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("statuses: " + ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items(), key=str)) +
          f"  (limit {limit} failed authentications per address and minute; the flood touched {minutes} "
          f"minute{'s' if minutes > 1 else ''})")
    print(f"audit_events added by the flood:        {after['events'] - before['events']:>7,}")
    print(f"audit_refused_calls rows added:         {after['refused_rows'] - before['refused_rows']:>7,}  "
          f"(calls counted in them: {after['refused_calls'] - before['refused_calls']:,})")

    folded = fold(app)
    print(f"audit events added by folding:          {len(folded):>7,}")
    for event_id, outcome, calls, details in folded:
        print(f"  event {event_id}: {outcome:<15} status {details.get('status')}  client {details.get('client')}  "
              f"minute {details.get('minute')}  calls {calls:,}")
    total = sum(calls for _, _, calls, _ in folded)
    print(f"  their counts sum to {total:,} ({'=' if total == sent else '!='} {sent:,} requests sent)")
    print(f"the trail grew by {len(folded):,} audit events (and by {after['refused_rows'] - before['refused_rows']:,} "
          f"refused-call rows until folding deleted them); the old design, an audit event per refused call, would "
          f"have added {sent:,}")
    return 0 if total == sent and after["events"] == before["events"] else 1


if __name__ == "__main__":
    sys.exit(main())
