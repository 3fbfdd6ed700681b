"""The map of nationals: server time and answer size per view at zooms 3, 6, 10 and 14, beside the bare
``ST_SnapToGrid … GROUP BY`` over the same box, on N nationals.

    python bench/map.py [--nationals 1000000] [--views 40] [--repeat 3] \
        [--database-url …] [--redis-url redis://127.0.0.1:6379/5]

1. The registry of N nationals from bench/seed.py (its shared database: sagip_bench_1m up to 1M,
   sagip_bench_10m above), clustered around bench/exposure.py's 30 host-country cities, with mixed statuses
   and vulnerabilities; the grid's changes (``map_cell_changes``) written by its triggers during the COPY, as
   in production (an import), and folded into ``map_cells`` as the worker's beat does.
2. For each zoom, --views viewports of 1920 x 1080 px centred on randomly drawn nationals (the places
   people look at), each asked --repeat times: ``GET /api/v1/map/nationals`` through the Flask app's test
   client (the whole server path: token, reach, query, JSON, audit, commit) as an admin, and as an embassy
   officer of AE; and the floor: ``SELECT ST_SnapToGrid(location, cell), count(*) … WHERE location && box
   GROUP BY 1`` over the same box, sent by psycopg as the tables' owner (--floor-repeat times: at low zooms
   it reads most of the table, seconds per view).
3. Prints median and p95 per zoom, bytes per answer (median, max), the ratio to the floor, and the target
   (p95 <= 150 ms, <= 100 KB).
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg

from bench.exposure import CITIES, libpq_url, migrated_app

ZOOMS = (3, 6, 10, 14)
SCREEN = (1920, 1080)
TARGET_MS, TARGET_KB = 150.0, 100.0
FLOOR_SQL = ("SELECT ST_SnapToGrid(location, %(size)s) AS cell, count(*) FROM nationals "
             "WHERE location && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326) GROUP BY 1")


def prepare(url: str, redis_url: str):
    """(the app, an admin's and an AE embassy officer's tokens) of a migrated bench database."""
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db

    app = migrated_app(url, redis_url)
    app.config["REGISTRY_BULK_READS_PER_MINUTE"] = 1_000_000
    with app.app_context():
        tokens = {}
        for role, jurisdiction in (("admin", []), ("embassy", ["AE"])):
            user = create_user(f"bench-map-{role}-{uuid.uuid4().hex[:6]}", role, jurisdiction)
            tokens[role] = issue_token(user, ttl_days=1)
        db.session.commit()
    return app, tokens


def fold(app, url: str) -> None:
    """Fold the grid's changes into its cells, as the worker's beat does (``registry.maps.grid.fold``): the
    views below are timed on a folded grid, the steady state of a service whose worker runs."""
    from registry.maps import grid
    with psycopg.connect(url) as conn:
        pending = conn.execute("SELECT count(*) FROM map_cell_changes").fetchone()[0]
    if not pending:
        return
    started = time.monotonic()
    with app.app_context():
        written = grid.fold()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE map_cells")
        conn.execute("VACUUM ANALYZE map_cell_changes")
    print(f"fold: {pending:,} changes into {written:,} cell rows in {time.monotonic() - started:.0f} s", flush=True)


def write_cost(url: str, rows: int, singles: int) -> None:
    """What the grid's triggers cost writes: the same COPY of ``rows`` generated nationals, and ``singles``
    one-row INSERTs (each its own statement, as a registration), with the triggers and without them
    (``DISABLE TRIGGER``, as the owner), each in a transaction rolled back (the data stay as they were)."""
    rng = random.Random(99)
    now = datetime.now(UTC)
    batch = []
    for i in range(rows):
        country, _, lat, lon, _ = rng.choices(CITIES, [c[4] for c in CITIES])[0]
        lat, lon = lat + rng.gauss(0, 0.07), lon + rng.gauss(0, 0.07)
        batch.append((uuid.uuid4(), "Bench", "Writecost", "F", date(1980, 1, 1), "PH", uuid.uuid4(), "abroad",
                      "bulk_import", "bench map write", country, f"SRID=4326;POINT({lon:.6f} {lat:.6f})", "gps",
                      25.0, now, [], ["minor"] if i % 9 == 0 else []))
    columns = ("id, family_name, given_names, sex, date_of_birth, nationality, household_id, status, source, "
               "search_name, jurisdiction_country, location, location_source, location_precision_m, "
               "location_reported_at, phones, vulnerabilities")
    print(f"\nwrites ({rows:,}-row COPY, {singles} one-row INSERTs; rolled back), with and without the grid's triggers:")
    for triggers in (True, False):
        with psycopg.connect(url) as conn:
            if not triggers:
                conn.execute("ALTER TABLE nationals DISABLE TRIGGER map_cells_inserted")
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY nationals ({columns}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            copied = time.perf_counter() - started
            started = time.perf_counter()
            for row in batch[:singles]:
                conn.execute(f"INSERT INTO nationals ({columns}) VALUES ({', '.join(['%s'] * 17)})",
                             (uuid.uuid4(), *row[1:]))
            single = (time.perf_counter() - started) / max(1, singles) * 1000
            conn.rollback()
        print(f"  {'with' if triggers else 'without':<8} triggers: COPY {rows / copied:,.0f} rows/s "
              f"({copied:.1f} s); one-row INSERT {single:.2f} ms", flush=True)


def viewport(lat: float, lon: float, zoom: int) -> tuple[float, float, float, float]:
    """The box of a SCREEN-sized Web Mercator view centred on (lat, lon) at ``zoom`` (256 px tiles)."""
    world = 256 * 2 ** zoom
    width_deg = min(359.0, SCREEN[0] / world * 360)
    y = (0.5 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / (2 * math.pi)) * world

    def lat_of(py: float) -> float:
        return math.degrees(2 * math.atan(math.exp((0.5 - py / world) * 2 * math.pi)) - math.pi / 2)

    north, south = lat_of(max(0.0, y - SCREEN[1] / 2)), lat_of(min(world, y + SCREEN[1] / 2))
    west, east = lon - width_deg / 2, lon + width_deg / 2
    west = (west + 180) % 360 - 180
    east = (east + 180) % 360 - 180
    return round(west, 5), round(max(-85.0, south), 5), round(east, 5), round(min(85.0, north), 5)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nationals", type=int, default=1_000_000)
    parser.add_argument("--views", type=int, default=40, help="viewports per zoom")
    parser.add_argument("--repeat", type=int, default=3, help="times each viewport is asked of the API")
    parser.add_argument("--floor-repeat", type=int, default=1, help="times each viewport's floor is run")
    parser.add_argument("--database-url", default=None,
                        help="default: bench/seed.py's sagip_bench_1m, or sagip_bench_10m above 1M nationals")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--write-cost", type=int, default=0, metavar="ROWS",
                        help="also time a COPY of ROWS nationals (and 200 one-row INSERTs) with and without the "
                             "grid's triggers, rolled back")
    parser.add_argument("--skip-views", action="store_true")
    args = parser.parse_args()
    from bench import seed
    url = libpq_url(args.database_url or seed.default_url(args.nationals))
    seed.ensure(url, args.nationals, redis_url=args.redis_url)
    app, tokens = prepare(url, args.redis_url)
    fold(app, url)
    if args.write_cost:
        write_cost(url, args.write_cost, 200)
    if args.skip_views:
        return 0

    from registry.maps.grid import cell_size
    rng = random.Random(12)
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM nationals").fetchone()[0]
        centres = conn.execute("SELECT ST_Y(location), ST_X(location) FROM nationals TABLESAMPLE SYSTEM (1) "
                               "REPEATABLE (7) WHERE location IS NOT NULL LIMIT 5000").fetchall()
        grid_rows = conn.execute("SELECT count(*) FROM map_cells").fetchone()[0]
    client = app.test_client()
    rows = []
    with psycopg.connect(url, autocommit=True) as floor_conn:
        for zoom in ZOOMS:
            views = [viewport(*rng.choice(centres), zoom) for _ in range(args.views)]
            timings = {"admin": [], "embassy": []}
            sizes = {"admin": [], "embassy": []}
            floors, in_view = [], []
            for bbox in views:
                query = f"/api/v1/map/nationals?bbox={','.join(map(str, bbox))}&zoom={zoom}"
                for _ in range(args.repeat):
                    for who in ("admin", "embassy"):
                        started = time.perf_counter()
                        response = client.get(query, headers={"Authorization": f"Bearer {tokens[who]}"})
                        timings[who].append((time.perf_counter() - started) * 1000)
                        if response.status_code != 200:
                            raise SystemExit(f"{query}: {response.status_code} {response.get_json()}")
                        sizes[who].append(len(response.data))
                        if who == "admin":
                            in_view.append(response.get_json()["total"])
                w, s, e, n = bbox
                boxes = [(w, s, e, n)] if w < e else [(w, s, 180.0, n), (-180.0, s, e, n)]
                for _ in range(args.floor_repeat):
                    started = time.perf_counter()
                    for box in boxes:
                        floor_conn.execute(FLOOR_SQL, {"size": cell_size(zoom), "w": box[0], "s": box[1],
                                                       "e": box[2], "n": box[3]}).fetchall()
                    floors.append((time.perf_counter() - started) * 1000)
            rows.append((zoom, timings, sizes, floors, in_view))
            print(f"  zoom {zoom}: admin p95 {pct(timings['admin'], 0.95):.1f} ms, floor p95 "
                  f"{pct(floors, 0.95):.1f} ms", flush=True)

    med = statistics.median
    print(f"\n{total:,} nationals ({grid_rows:,} grid rows); {args.views} viewports of {SCREEN[0]}x{SCREEN[1]} px per "
          f"zoom, each asked {args.repeat} times (floor: {args.floor_repeat}); server time through the Flask app "
          f"(test client); floor: bare "
          f"ST_SnapToGrid … GROUP BY over the same box (psycopg, as the owner); 2 shared CPUs")
    print(f"{'zoom':>4} {'caller':<8} {'people/view':>11} {'med ms':>7} {'p95 ms':>7} {'med KB':>7} {'max KB':>7} "
          f"{'floor med':>9} {'floor p95':>9} {'p95/floor p95':>13}  target (p95 <= {TARGET_MS:.0f} ms, "
          f"<= {TARGET_KB:.0f} KB)")
    for zoom, timings, sizes, floors, in_view in rows:
        for who in ("admin", "embassy"):
            p95, kb_max = pct(timings[who], 0.95), max(sizes[who]) / 1024
            ok = p95 <= TARGET_MS and kb_max <= TARGET_KB
            print(f"{zoom:>4} {who:<8} {int(med(in_view)):>11,} {med(timings[who]):>7.1f} {p95:>7.1f} "
                  f"{med(sizes[who]) / 1024:>7.1f} {kb_max:>7.1f} {med(floors):>9.1f} {pct(floors, 0.95):>9.1f} "
                  f"{p95 / pct(floors, 0.95):>13.2f}  {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
