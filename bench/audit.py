"""How fast the audit trail records, seals and verifies, and what a chain-per-event design would cost.

    python bench/audit.py [--seconds 5] [--clients 8] [--events 100000] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_audit]

1. ``record``: --clients threads each insert one event per transaction as the API does
   (INSERT + COMMIT), for --seconds: events/s.
2. ``chained at insert``: the same, but each transaction first locks the chain head
   (``SELECT … FOR UPDATE`` on a one-row table), computes the HMAC over the previous hash and
   updates the head, as a chain-per-read design must: every request waits for the one before.
3. ``seal``: ``registry.audit.services.seal_all()`` over --events unsealed events: events/s.
4. ``verify``: ``registry.audit.services.verify()`` over the same chain: events/s.

Runs against a scratch database (created and migrated if missing); it empties ``audit_events``
there. The floor of (1) is the same INSERT + COMMIT; the comparison is (1) against (2).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

INSERT = ("INSERT INTO audit_events (actor_id, actor_role, action, outcome, object_type, object_ids, purpose, "
          "details) VALUES (gen_random_uuid(), 'desk', 'nationals.get_national', 'ok', 'national', "
          "ARRAY[gen_random_uuid()], NULL, '{\"status\": 200}')")


def libpq_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep and scheme.startswith("postgres") else url


def hammer(url: str, clients: int, seconds: float, chained: bool) -> float:
    """Events per second from ``clients`` threads, one event per transaction."""
    counts = [0] * clients
    stop = time.monotonic() + seconds
    key = b"k" * 32

    def client(index: int) -> None:
        with psycopg.connect(url) as conn:
            while time.monotonic() < stop:
                with conn.transaction():
                    if chained:
                        head = conn.execute("SELECT hash FROM bench_chain_head FOR UPDATE").fetchone()[0]
                        digest = hmac.new(key, bytes(head) + INSERT.encode(), hashlib.sha256).digest()
                        conn.execute(INSERT)
                        conn.execute("UPDATE bench_chain_head SET hash = %s", (digest,))
                    else:
                        conn.execute(INSERT)
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_audit")
    args = parser.parse_args()
    url = libpq_url(args.database_url)
    if "bench" not in url.rsplit("/", 1)[-1]:
        raise SystemExit("refusing a database whose name lacks 'bench' (its audit trail is emptied)")

    import flask_migrate
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from registry import create_app
    from registry.audit import services
    from registry.config import database_url

    info = conninfo_to_dict(url)
    with psycopg.connect(make_conninfo(**{**info, "dbname": "postgres"}), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (info["dbname"],)).fetchone():
            conn.execute(f'CREATE DATABASE "{info["dbname"]}"')
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(url)})
    with app.app_context():
        flask_migrate.upgrade()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE audit_events, audit_seals")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_chain_head (hash bytea)")
        conn.execute("TRUNCATE bench_chain_head")
        conn.execute("INSERT INTO bench_chain_head VALUES ('\\x00'::bytea)")

    plain, chained, seal_rates, verify_rates = [], [], [], []
    for run in range(args.runs):
        plain.append(hammer(url, args.clients, args.seconds, chained=False))
        chained.append(hammer(url, args.clients, args.seconds, chained=True))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE audit_events, audit_seals")
            conn.execute(f"INSERT INTO audit_events (actor_id, actor_role, action, outcome, object_type, object_ids, "
                         f"details) SELECT gen_random_uuid(), 'desk', 'nationals.get_national', 'ok', 'national', "
                         f"ARRAY[gen_random_uuid()], '{{\"status\": 200}}' FROM generate_series(1, {args.events})")
        with app.app_context():
            started = time.perf_counter()
            sealed = services.seal_all()
            seal_rates.append(sealed / (time.perf_counter() - started))
            started = time.perf_counter()
            result = services.verify()
            verify_rates.append(result.checked / (time.perf_counter() - started))
            assert result.ok and result.checked == args.events, result
        print(f"run {run + 1}: record {plain[-1]:,.0f}/s, chained at insert {chained[-1]:,.0f}/s, "
              f"seal {seal_rates[-1]:,.0f}/s, verify {verify_rates[-1]:,.0f}/s", flush=True)

    med = statistics.median
    print(f"\nmedian of {args.runs} runs, {args.clients} clients, one event per transaction:")
    print(f"  record (INSERT + COMMIT, as the API does)   {med(plain):>10,.0f} events/s")
    print(f"  chained at insert (lock the head per event) {med(chained):>10,.0f} events/s  "
          f"= {med(chained) / med(plain):.2f}x of recording alone")
    print(f"  seal (batches of {services.SEAL_BATCH})              {med(seal_rates):>10,.0f} events/s")
    print(f"  verify                                      {med(verify_rates):>10,.0f} events/s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_chain_head")
        conn.execute("TRUNCATE audit_events, audit_seals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
