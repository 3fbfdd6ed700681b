"""Statistics (SPEC §11): stocks by three dimensions over N nationals, beside the bare ``GROUP BY`` on the
same data.

    python bench/stocks.py [--nationals 1000000] [--repeat 5] \
        [--database-url …] [--redis-url redis://127.0.0.1:6379/5]

1. The registry of N nationals from bench/seed.py (its shared database: sagip_bench_1m up to 1M,
   sagip_bench_10m above): sexes, birth dates over 52 years, statuses (abroad, 7% returned, some missing),
   each with a current deployment (10% also an earlier one) in the host countries of 30 cities (weighted:
   a few countries hold most people), an ISCO-08 occupation, a sector and a legal status, registered over
   five years. The status history is written by its triggers during the COPY, as in production.
2. Times, --repeat times each, as an analyst through the Flask app's test client (the whole path: token,
   role, the aggregate function, suppression, JSON, audit, commit):
   ``GET /api/v1/statistics/stocks?by=host_country,sex,age_band`` (today) and the same ``at`` a past day
   (read from the status history and the deployment of that day);
   and the floor, the bare ``GROUP BY`` of the same three dimensions over the same people, sent by psycopg as
   the tables' owner: for today the current status and deployment; for the past day the same lateral reads
   of the history and deployments, by hand.
3. Prints the medians, the ratios (target <= 1.5x for today) and the cells, suppressed cells and the
   suppression's own time.
4. With ``--profile``: the migration-profile report of ``--profile-year`` (default last year, when the seeded
   deployments began), as ``registry profile`` and the worker build it: its tables counted (six stocks at the
   end of the year, read from the history, and three flows), then written as XLSX and as PDF (charts drawn by
   matplotlib); prints the medians of each part and of each whole file.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg

from bench.exposure import libpq_url

DIMENSIONS = "host_country,sex,age_band"
# The floor writes the same five-year bands by hand, the cheapest way plain SQL has (the function's way).
AGE = ("CASE WHEN n.date_of_birth IS NULL THEN 'unknown' ELSE (ARRAY['00-04', '05-09', '10-14', '15-19', '20-24', "
       "'25-29', '30-34', '35-39', '40-44', '45-49', '50-54', '55-59', '60-64', '65+'])[greatest(least(("
       "%(day_number)s - (date_part('year', n.date_of_birth) * 10000 + "
       "date_part('month', n.date_of_birth) * 100 + date_part('day', n.date_of_birth))::int) / 50000, 13), 0) + 1] "
       "END")
FLOOR_TODAY = ("SELECT d.host_country, n.sex, " + AGE + ", count(*) FROM nationals n "
               "JOIN deployments d ON d.national_id = n.id AND d.is_current "
               # abroad today: a contract that starts later (a registered departure) does not count yet
               "WHERE n.status IN ('abroad', 'missing', 'unverified') "
               "AND coalesce(d.contract_start, d.created_at::date) <= current_date GROUP BY 1, 2, 3")
FLOOR_PAST = ("SELECT d.host_country, n.sex, " + AGE + ", count(*) FROM nationals n "
              "JOIN LATERAL (SELECT h.status FROM national_status_history h WHERE h.national_id = n.id "
              "AND h.since < %(day)s::date + 1 ORDER BY h.since DESC LIMIT 1) s ON true "
              "JOIN LATERAL (SELECT d.host_country FROM deployments d WHERE d.national_id = n.id "
              "AND coalesce(d.contract_start, d.created_at::date) <= %(day)s::date "
              "ORDER BY coalesce(d.contract_start, d.created_at::date) DESC LIMIT 1) d ON true "
              "WHERE s.status IN ('abroad', 'missing', 'unverified') GROUP BY 1, 2, 3")


def timed(call, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nationals", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None,
                        help="default: bench/seed.py's sagip_bench_1m, or sagip_bench_10m above 1M nationals")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--profile", action="store_true", help="also time the migration-profile report")
    parser.add_argument("--profile-year", type=int, default=date.today().year - 1)
    args = parser.parse_args()

    from bench import seed
    url = libpq_url(args.database_url or seed.default_url(args.nationals))
    app = seed.ensure(url, args.nationals, redis_url=args.redis_url)
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db
    from registry.statistics.suppression import suppress
    with app.app_context():
        analyst = create_user(f"bench-analyst-{uuid.uuid4().hex[:6]}", "analyst", [])
        token = issue_token(analyst)
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    past = date.today() - timedelta(days=150)

    def api(day=None):
        query = {"by": DIMENSIONS, **({"at": day.isoformat()} if day else {})}
        response = client.get("/api/v1/statistics/stocks", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return response.get_json()

    with psycopg.connect(url, autocommit=True) as conn:
        def floor(statement, day):
            return conn.execute(statement, {"day": day, "day_number": int(day.strftime("%Y%m%d"))}).fetchall()

        api()  # warm the caches of both alike
        floor(FLOOR_TODAY, date.today())
        rows = []
        for label, day, statement in (("today", None, FLOOR_TODAY), (f"at {past}", past, FLOOR_PAST)):
            path, answer = timed(lambda: api(day), args.repeat)
            bare, floor_rows = timed(lambda: floor(statement, day or date.today()), args.repeat)
            total = sum(r[3] for r in floor_rows)
            published = next((t["count"] for t in answer["totals"]
                              if all(t[d] is None for d in answer["dimensions"])), None)
            assert published in (total, None), (published, total)
            inner = {tuple(map(str, r[:3])): r[3] for r in floor_rows}
            started = time.perf_counter()
            suppress(DIMENSIONS.split(","), inner, 10)
            alone = time.perf_counter() - started
            rows.append((label, path, bare, len(answer["cells"]), answer["suppression"]["suppressed_cells"], alone,
                         total))
    print(f"\nstocks by {DIMENSIONS} over {args.nationals:,} nationals (median of {args.repeat})")
    print(f"{'day':>16} {'path s':>8} {'floor s':>8} {'ratio':>6} {'cells':>6} {'hidden':>7} {'suppress s':>10}"
          f" {'abroad':>9}")
    for label, path, bare, cells, hidden, alone, total in rows:
        print(f"{label:>16} {path:8.3f} {bare:8.3f} {path / bare:6.2f} {cells:6d} {hidden:7d} {alone:10.3f}"
              f" {total:9,}")
    print("target: today's path <= 1.5x the bare GROUP BY")
    if args.profile:
        profile_report(app, args.profile_year, args.nationals, args.repeat)
    return 0


def profile_report(app, year: int, nationals: int, repeat: int) -> None:
    """The profile report's time: its tables counted, then each file written (in memory, as the worker does
    before encrypting)."""
    from registry.auth import scope
    from registry.auth.reach import Reach
    from registry.statistics import profile_files
    from registry.statistics.profile import build

    with app.app_context():
        scope.use_everything()
        counted, report = timed(lambda: build(Reach.everywhere(), year), repeat)
        written = {}
        for fmt in profile_files.FORMATS:
            def write(fmt=fmt):
                out = io.BytesIO()
                profile_files.write(out, report, fmt)
                return out.getbuffer().nbytes
            written[fmt] = timed(write, repeat)
    hidden = sum(t.suppressed_cells for t in report.tables)
    print(f"\nprofile report {year} over {nationals:,} nationals (median of {repeat}): {len(report.tables)} tables, "
          f"{hidden} suppressed cells")
    print(f"{'step':>24} {'s':>8} {'bytes':>10}")
    print(f"{'tables counted':>24} {counted:8.3f} {'':>10}")
    for fmt, (seconds, size) in written.items():
        print(f"{fmt + ' written':>24} {seconds:8.3f} {size:10,}")
    for fmt, (seconds, size) in written.items():
        print(f"{fmt + ' report in all':>24} {counted + seconds:8.3f} {size:10,}")


if __name__ == "__main__":
    sys.exit(main())
