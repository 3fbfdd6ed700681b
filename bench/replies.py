"""SMS replies: the hook's cost per reply, in-process (no gateway), with N exposed nationals of distinct phones.

    python bench/replies.py [--nationals 10000] [--replies 10000] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_replies] [--redis-url redis://127.0.0.1:6379/9]

1. Creates and migrates the database; seeds (once) N nationals around Dubai, each with its own UAE mobile
   number, and an active crisis whose succeeded exposure run lists them all (rows written directly: the
   bench measures replies, not exposure runs; bench/exposure.py does those).
2. Sends --replies replies through the whole hook (``POST /api/v1/hooks/sms`` through the Flask app: the
   secret, parsing, matching, the welfare record, the stored reply, its audit event, one commit), one at a
   time as Kannel's smsbox does, senders in the forms SMSCs use (``+971…``, ``00971…``, ``971…``), keywords in
   English, Filipino and digits.
3. Prints replies/s, the per-reply median and 95th percentile, the matching statement's own time (EXPLAIN
   ANALYZE), and checks every reply was matched and applied.

bench/outreach.py measures the same replies through Kannel + fakesmsc (the gateway's own cost on top).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.exposure import libpq_url, migrated_app  # noqa: E402

KEYWORDS = ("1", "SAFE", "ligtas", "2", "Tulong po", "3 need a boat", "safe at my cousin's", "HELP")
FORMS = (lambda n: n, lambda n: "00" + n[1:], lambda n: n[1:])


def phone(i: int) -> str:
    return f"+97150{1000000 + i:07d}"


def seed(url: str, count: int) -> str:
    """N exposed nationals with their own numbers and an active crisis listing them; the crisis id."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        found = conn.execute("SELECT id FROM crises WHERE name = 'bench replies' AND status = 'active'").fetchone()
        seeded = conn.execute("SELECT count(*) FROM nationals WHERE search_name = 'bench reply'").fetchone()[0]
        if found and seeded == count:
            return str(found[0])
        conn.execute("TRUNCATE sms_replies, welfare_events, welfare_statuses, exposures, exposure_runs, "
                     "crisis_area_parts, crisis_versions, crises, nationals CASCADE")
        conn.execute("""
            INSERT INTO nationals (id, family_name, given_names, nationality, jurisdiction_country, household_id,
                                   phones, search_name, location, location_source)
            SELECT gen_random_uuid(), 'Bench', 'Reply ' || i, 'PH', 'AE', gen_random_uuid(),
                   ARRAY['+97150' || lpad((1000000 + i)::text, 7, '0')], 'bench reply',
                   ST_SetSRID(ST_MakePoint(55.27 + (i %% 100) * 0.001, 25.2 + (i / 100) * 0.0001), 4326), 'gps'
            FROM generate_series(0, %s - 1) AS i""", (count,))
        crisis = conn.execute("""
            INSERT INTO crises (id, name, kind, severity, status, version) VALUES
            (gen_random_uuid(), 'bench replies', 'flood', 'high', 'active', 1) RETURNING id""").fetchone()[0]
        conn.execute("""
            INSERT INTO crisis_versions (crisis_id, version, geom, zones_km, vertices)
            VALUES (%s, 1, ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(55.3, 25.25), 4326), 0.5)), '{}', 33)""",
                     (crisis,))
        run = conn.execute("""INSERT INTO exposure_runs (id, crisis_id, version, status, counts, finished_at)
            VALUES (gen_random_uuid(), %s, 1, 'succeeded', '{}', now()) RETURNING id""", (crisis,)).fetchone()[0]
        conn.execute("""INSERT INTO exposures (run_id, national_id, zone, distance_km, certainty, location)
            SELECT %s, id, 'inside', 0, 'high', location FROM nationals""", (run,))
        conn.execute("ANALYZE")
        return str(crisis)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nationals", type=int, default=10_000)
    parser.add_argument("--replies", type=int, default=10_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_replies")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    app = migrated_app(args.database_url, args.redis_url)
    crisis = seed(args.database_url, args.nationals)
    with psycopg.connect(libpq_url(args.database_url), autocommit=True) as conn:
        conn.execute("DELETE FROM sms_replies")
        conn.execute("DELETE FROM welfare_events")
        conn.execute("DELETE FROM welfare_statuses")
    secret = app.config["REGISTRY_SMS_HOOK_SECRET"]
    client = app.test_client()
    rng = random.Random(20261202)
    numbers = [rng.randrange(args.nationals) for _ in range(args.replies)]
    times = []
    started = time.perf_counter()
    for i, number in enumerate(numbers):
        before = time.perf_counter()
        response = client.post("/api/v1/hooks/sms", headers={"X-Sagip-Hook-Secret": secret},
                               data={"from": FORMS[i % 3](phone(number)), "text": KEYWORDS[i % len(KEYWORDS)]})
        times.append(time.perf_counter() - before)
        if response.status_code != 200:
            raise SystemExit(f"reply {i}: {response.status_code} {response.get_data(as_text=True)[:200]}")
    elapsed = time.perf_counter() - started
    with psycopg.connect(libpq_url(args.database_url), autocommit=True) as conn:
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM sms_replies GROUP BY outcome").fetchall())
        matched = conn.execute("SELECT count(*) FROM sms_replies WHERE national_id IS NOT NULL AND crisis_id = %s",
                               (crisis,)).fetchone()[0]
        plan = conn.execute("""EXPLAIN (ANALYZE, FORMAT JSON)
            WITH current_runs AS (
                SELECT DISTINCT ON (r.crisis_id) r.id, r.crisis_id
                FROM exposure_runs r JOIN crises c ON c.id = r.crisis_id
                WHERE c.status = 'active' AND r.status = 'succeeded'
                ORDER BY r.crisis_id, r.created_at DESC)
            SELECT n.id, cr.crisis_id FROM nationals n
            LEFT JOIN (exposures e JOIN current_runs cr ON cr.id = e.run_id) ON e.national_id = n.id
            WHERE n.phones @> CAST(ARRAY[%s] AS varchar(16)[]) AND n.erased_at IS NULL""",
                            (phone(42),)).fetchone()[0][0]
    times.sort()
    print(f"{args.replies} replies over {args.nationals} exposed nationals: {elapsed:.1f} s, "
          f"{args.replies / elapsed:.0f} replies/s (one at a time, in-process)")
    print(f"per reply: median {statistics.median(times) * 1000:.2f} ms, "
          f"p95 {times[int(len(times) * 0.95)] * 1000:.2f} ms, max {times[-1] * 1000:.1f} ms")
    print(f"matching statement: {plan['Execution Time']:.3f} ms (EXPLAIN ANALYZE, phones GIN index)")
    print(f"outcomes: {outcomes}; matched to their national in the crisis: {matched}/{args.replies}")
    return 0 if matched == args.replies else 1


if __name__ == "__main__":
    sys.exit(main())
