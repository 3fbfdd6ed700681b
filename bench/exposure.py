"""Exposure runs: the whole path (declare → run succeeded) beside the bare SQL floor, on N nationals.

    python bench/exposure.py [--nationals 1000000] [--runs 3] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_exposure] [--redis-url redis://127.0.0.1:6379/9]

1. Creates, migrates and (once) seeds the database with N nationals clustered around 30 host-country
   cities (Gaussian, ~8 km): 80% GPS fixes, 15% geocoded cities (10-25 km precision), 5% country only.
2. Starts a real Celery worker process on --redis-url.
3. For each scenario, --runs times: the whole path (``POST /api/v1/crises`` through the Flask app, the
   worker's run, polled until ``succeeded``) and the floor: the same rows computed by one hand-written
   ``INSERT … SELECT`` (psycopg, as psql would send it) into a scratch table. For the detailed area also
   the same statement against the unsubdivided polygon (the naive join).
4. Prints medians, the ratio path/floor and the target (path <= 1.3 x floor + 0.1 s).

Scenarios: a 50 km circle on Dubai (dense), a 10 km circle on Jeddah with rings 25/100 km, the whole of
Saudi Arabia, a polygon across the antimeridian around Fiji, and a detailed flood extent of 120,000
vertices over Riyadh (BENCH.md: the world-atlas countries are too coarse to show subdivision).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

CITIES = [  # (country, name, lat, lon, weight)
    ("AE", "Dubai", 25.2048, 55.2708, 14), ("AE", "Abu Dhabi", 24.4539, 54.3773, 6), ("AE", "Sharjah", 25.3463,
                                                                                        55.4209, 4),
    ("SA", "Riyadh", 24.7136, 46.6753, 12), ("SA", "Jeddah", 21.4858, 39.1925, 9), ("SA", "Dammam", 26.4207,
                                                                                      50.0888, 5),
    ("QA", "Doha", 25.2854, 51.5310, 6), ("KW", "Kuwait City", 29.3759, 47.9774, 5), ("BH", "Manama", 26.2285,
                                                                                        50.5860, 2),
    ("OM", "Muscat", 23.5880, 58.3829, 2), ("HK", "Hong Kong", 22.3193, 114.1694, 7), ("SG", "Singapore", 1.3521,
                                                                                         103.8198, 5),
    ("TW", "Taipei", 25.0330, 121.5654, 3), ("JP", "Tokyo", 35.6762, 139.6503, 2), ("KR", "Seoul", 37.5665,
                                                                                       126.9780, 1),
    ("MY", "Kuala Lumpur", 3.1390, 101.6869, 2), ("IT", "Milan", 45.4642, 9.1900, 2), ("IT", "Rome", 41.9028,
                                                                                       12.4964, 1),
    ("ES", "Madrid", 40.4168, -3.7038, 1), ("GB", "London", 51.5072, -0.1276, 2), ("US", "Los Angeles", 34.0522,
                                                                                     -118.2437, 3),
    ("US", "New York", 40.7128, -74.0060, 2), ("CA", "Toronto", 43.6532, -79.3832, 2), ("CA", "Calgary", 51.0447,
                                                                                          -114.0719, 1),
    ("FJ", "Suva", -18.1416, 178.4419, 1), ("FJ", "Taveuni", -16.85, -179.95, 1), ("LB", "Beirut", 33.8938,
                                                                                    35.5018, 1),
    ("IL", "Tel Aviv", 32.0853, 34.7818, 1), ("JO", "Amman", 31.9539, 35.9106, 1), ("CY", "Nicosia", 35.1856,
                                                                                      33.3823, 1),
]
JITTER_KM = 8.0


def libpq_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep and scheme.startswith("postgres") else url


def flood_extent(lat: float, lon: float, radius_km: float, vertices: int, seed: int) -> dict:
    """A star-shaped, valid polygon with a ragged edge (sums of sines): a stand-in for a flood extent."""
    rng = random.Random(seed)
    waves = [(rng.randint(2, 400), rng.uniform(0, 2 * math.pi), 0.25 / (k + 1)) for k in range(12)]
    ring = []
    for i in range(vertices):
        angle = 2 * math.pi * i / vertices
        r = radius_km * (1 + sum(a * math.sin(f * angle + p) for f, p, a in waves)) * (1 + rng.uniform(-0.01, 0.01))
        ring.append([round(lon + r / (111.320 * math.cos(math.radians(lat))) * math.cos(angle), 6),
                     round(lat + r / 110.574 * math.sin(angle), 6)])
    ring.append(ring[0])
    return {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [ring]}}


SCENARIOS = {
    "circle-50km-dubai": ({"type": "circle", "center": {"lat": 25.2048, "lon": 55.2708}, "radius_km": 50}, []),
    "rings-25-100km-jeddah": ({"type": "circle", "center": {"lat": 21.4858, "lon": 39.1925}, "radius_km": 10},
                                [25, 100]),
    "country-sa": ({"type": "countries", "codes": ["SA"]}, []),
    "antimeridian-fiji": ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[177.0, -19.5], [-178.5, -19.5], [-178.5, -15.5], [177.0, -15.5], [177.0, -19.5]]]}}, [50]),
    "detailed-120k-riyadh": (flood_extent(24.7136, 46.6753, 35, 120_000, 7), [10]),
}


def migrated_app(url: str, redis_url: str):
    """The app on a migrated bench database, created if need be (a name without "bench" is refused: it is
    seeded); DATABASE_URL and REDIS_URL are set for the worker this process starts. Also bench/map.py's."""
    if "bench" not in url.rsplit("/", 1)[-1]:
        raise SystemExit("refusing a database whose name lacks 'bench' (it is seeded)")
    os.environ.update(DATABASE_URL=url, REDIS_URL=redis_url)

    import flask_migrate
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from registry import create_app

    info = conninfo_to_dict(url)
    with psycopg.connect(make_conninfo(**{**info, "dbname": "postgres"}), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (info["dbname"],)).fetchone():
            conn.execute(f'CREATE DATABASE "{info["dbname"]}"')
    app = create_app()
    app.extensions["celery"].control.purge()
    with app.app_context():
        flask_migrate.upgrade()
    return app


def prepare(url: str, redis_url: str):
    """(the app, a coordinator's token, the countries' reference points) of a migrated bench database."""
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db

    app = migrated_app(url, redis_url)
    with app.app_context():
        user = create_user(f"bench-coordinator-{uuid.uuid4().hex[:6]}", "coordinator")
        token = issue_token(user, ttl_days=1)
        db.session.commit()
    with psycopg.connect(url) as conn:
        label_points = {code: (f"SRID=4326;POINT({x} {y})", float(p)) for code, x, y, p in conn.execute(
            "SELECT alpha2, ST_X(label_point), ST_Y(label_point), precision_m FROM countries")}
    return app, token, label_points


def random_place(rng: random.Random, weights: list, label_points: dict) -> tuple[str, str, str, float]:
    """(country, EWKT point, location source, precision in m) of one generated national: a city drawn by
    weight; 5% known only by their country (its label point), 15% by their city (the city's point), the rest
    by GPS, Gaussian around the city (JITTER_KM). Also bench/map.py's."""
    country, _, lat, lon, _ = rng.choices(CITIES, weights)[0]
    roll = rng.random()
    if roll < 0.05:
        point, precision = label_points[country]
        return country, point, "country_centroid", precision
    if roll < 0.20:
        source, precision = "geocoded_city", rng.choice((10_000.0, 15_000.0, 25_000.0))
    else:
        source, precision = "gps", 25.0
        dx, dy = rng.gauss(0, JITTER_KM), rng.gauss(0, JITTER_KM)
        lat, lon = lat + dy / 110.574, lon + dx / (111.320 * math.cos(math.radians(lat)))
        lon = (lon + 180) % 360 - 180
    return country, f"SRID=4326;POINT({lon:.6f} {lat:.6f})", source, precision


def seed(url: str, count: int, label_points: dict) -> None:
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM nationals WHERE source = 'bulk_import' "
                            "AND search_name = 'bench exposure'").fetchone()[0]
        if have >= count:
            print(f"seed: {have:,} nationals already there")
            return
        started = time.monotonic()
        rng = random.Random(have)
        weights = [c[4] for c in CITIES]
        now = datetime.now(timezone.utc)
        with conn.cursor().copy(
                "COPY nationals (id, family_name, given_names, sex, date_of_birth, nationality, household_id, "
                "status, source, search_name, jurisdiction_country, location, location_source, "
                "location_precision_m, location_reported_at, phones, vulnerabilities) FROM STDIN") as copy:
            for i in range(have, count):
                country, point, source, precision = random_place(rng, weights, label_points)
                copy.write_row((uuid.uuid4(), "Bench", "National", "F" if i % 2 else "M",
                                date(1970, 1, 1) + timedelta(days=i % 15000), "PH", uuid.uuid4(), "abroad",
                                "bulk_import", "bench exposure", country, point, source, precision,
                                now - timedelta(days=i % 60), ["+6391700" + f"{i % 100000:05d}"],
                                ["pregnant"] if i % 29 == 0 else []))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE nationals")
    print(f"seed: {count - have:,} nationals added in {time.monotonic() - started:.0f} s")


# The floor: the area cut into an indexed scratch table, then one hand-written INSERT … SELECT of the
# same rows (what a PostGIS hand would type into psql).
FLOOR_SETUP = (
    "SET LOCAL work_mem = '128MB'",
    "CREATE TEMP TABLE floor_parts ON COMMIT DROP AS "
    "SELECT g AS geom FROM ST_Subdivide(ST_GeomFromWKB(%(wkb)s, 4326), 256) g",
    "CREATE INDEX ON floor_parts USING gist (geom)",
    "ANALYZE floor_parts",
)
FLOOR_SQL = """
INSERT INTO bench_floor (run_id, national_id, zone, ring_km, distance_km, certainty, location, location_source,
                         location_precision_m, location_age_days)
WITH candidates AS MATERIALIZED (
    SELECT n.id, n.location, n.location_precision_m,
           n.location_source = 'gps' AND n.location_precision_m <= 1000 AS precise,
           EXISTS (SELECT 1 FROM floor_parts p WHERE p.geom && n.location AND ST_Intersects(p.geom, n.location))
               AS inside
    FROM nationals n
    WHERE n.location && (SELECT ST_Expand(ST_Extent(geom)::geometry, %(reach_deg)s + %(precision_deg)s)
                         FROM floor_parts)
      AND n.erased_at IS NULL AND n.location_source <> 'country_centroid'),
near AS MATERIALIZED (
    SELECT c.id, min(ST_Distance(c.location::geography, p.geom::geography)) AS d
    FROM candidates c JOIN floor_parts p
      ON p.geom && ST_Expand(c.location, CASE WHEN c.precise THEN %(reach_deg)s
                                              ELSE %(reach_deg)s + %(precision_deg)s END)
     AND ST_DWithin(c.location::geography, p.geom::geography, CASE WHEN c.precise THEN %(reach)s
                                                                   ELSE %(reach)s + 30000 END)
    WHERE NOT c.inside AND (NOT c.precise OR %(reach)s > 0)
    GROUP BY c.id),
countries AS MATERIALIZED (
    SELECT cp.alpha2, min(ST_Distance(cp.geom::geography, p.geom::geography)) AS d
    FROM floor_parts p JOIN country_parts cp ON cp.geom && ST_Expand(p.geom, %(reach_deg)s)
     AND ST_DWithin(cp.geom::geography, p.geom::geography, %(reach)s)
    GROUP BY cp.alpha2),
measured AS (
    SELECT id, 0.0::float8 AS km FROM candidates WHERE inside
    UNION ALL
    SELECT nr.id, CASE WHEN n.location_source = 'gps' AND n.location_precision_m <= 1000 THEN nr.d
                       ELSE greatest(0, nr.d - n.location_precision_m) END / 1000.0
    FROM near nr JOIN nationals n ON n.id = nr.id
    UNION ALL
    SELECT n.id, c.d / 1000.0 FROM countries c JOIN nationals n ON n.jurisdiction_country = c.alpha2
    WHERE n.location_source = 'country_centroid' AND n.erased_at IS NULL)
SELECT gen_random_uuid(), m.id, CASE WHEN m.km = 0 THEN 'inside' ELSE 'ring' END,
       CASE WHEN m.km > 0 THEN (SELECT min(z) FROM unnest(%(zones)s::float8[]) z WHERE z >= m.km) END,
       round(m.km::numeric, 3)::float8,
       CASE WHEN n.location_source = 'country_centroid' THEN 'country_only'
            WHEN n.location_source = 'gps' AND n.location_precision_m <= 1000 THEN 'high' ELSE 'possible' END,
       n.location, n.location_source, n.location_precision_m,
       floor(extract(epoch FROM now() - n.location_reported_at) / 86400)::int
FROM measured m JOIN nationals n ON n.id = m.id
WHERE m.km = 0 OR m.km <= %(max_zone)s
"""

# The plain floor (BENCH.md, issue 15): what a PostGIS hand types to put the same people, with their geodesic
# distances, into a logged table with the exposures' columns and primary key: a circle is ST_DWithin of the
# points (the ``((location)::geography)`` GiST index) around its centre; any other area is cut by ST_Subdivide
# into an indexed scratch table and joined on ST_Intersects (inside) or, with rings, ST_DWithin the outer ring.
# No precision circles, certainty or country-only records: the run's semantics are timed apart (the
# "semantics" floor above), so their cost shows as its own figure.
PLAIN_SETUP = (
    "SET LOCAL work_mem = '128MB'",
    "CREATE TEMP TABLE floor_parts ON COMMIT DROP AS "
    "SELECT g AS geom, g::geography AS geog FROM ST_Subdivide(ST_GeomFromWKB(%(wkb)s, 4326), 256) g",
    "CREATE INDEX ON floor_parts USING gist (geom)",
    "ANALYZE floor_parts",
)
PLAIN_COLUMNS = """INSERT INTO bench_floor (run_id, national_id, zone, ring_km, distance_km, certainty, location,
                         location_source, location_precision_m, location_age_days, household_id)
SELECT %(run)s, n.id, CASE WHEN {m} = 0 THEN 'inside' ELSE 'ring' END,
       CASE WHEN {m} > 0 THEN (SELECT min(z) FROM unnest(%(zones)s::float8[]) z WHERE z >= {m} / 1000) END,
       round({m}::numeric / 1000, 3)::float8, 'high', n.location, n.location_source, n.location_precision_m,
       floor(extract(epoch FROM now() - n.location_reported_at) / 86400)::int, n.household_id
"""
PLAIN_CIRCLE_SQL = PLAIN_COLUMNS.format(m="d.m") + """FROM nationals n,
     -- OFFSET 0: the distance computed once a row, not once in each expression using it (BENCH.md)
     LATERAL (SELECT greatest(0, ST_Distance(n.location::geography, %(centre)s::geography) - %(radius)s) AS m
              OFFSET 0) d
WHERE ST_DWithin(n.location::geography, %(centre)s::geography, %(radius)s + %(reach)s)
"""
# Grouped by the national's key (a point on an edge between two pieces meets both).
PLAIN_INSIDE_SQL = PLAIN_COLUMNS.format(m="0") + """FROM floor_parts p JOIN nationals n ON ST_Intersects(p.geom, n.location)
GROUP BY n.id
"""
PLAIN_RINGS_SQL = PLAIN_COLUMNS.format(m="min(ST_Distance(n.location::geography, p.geog))") + """FROM floor_parts p
JOIN nationals n ON ST_DWithin(n.location::geography, p.geog, %(reach)s)
GROUP BY n.id
"""


def plain_floor(conn, area: dict, params: dict) -> tuple[float, int]:
    """(seconds, rows) of the plain floor into ``bench_floor`` (emptied first), committed."""
    conn.execute("TRUNCATE bench_floor")
    conn.commit()
    started = time.perf_counter()
    if area.get("type") == "circle":
        conn.execute("SET LOCAL work_mem = '128MB'")
        centre = f"SRID=4326;POINT({area['center']['lon']} {area['center']['lat']})"
        rows = conn.execute(PLAIN_CIRCLE_SQL, {**params, "radius": area["radius_km"] * 1000.0,
                                               "centre": centre}).rowcount
    else:
        for statement in PLAIN_SETUP:
            conn.execute(statement, params)
        rows = conn.execute(PLAIN_RINGS_SQL if params["reach"] > 0 else PLAIN_INSIDE_SQL, params).rowcount
    conn.commit()
    return time.perf_counter() - started, rows


# The naive join: the same statement against the area as one unsubdivided polygon per part, stopped
# after NAIVE_TIMEOUT_S (unsubdivided, it can run for many minutes).
NAIVE_SETUP = (
    "SET LOCAL work_mem = '128MB'",
    "CREATE TEMP TABLE floor_parts ON COMMIT DROP AS "
    "SELECT (ST_Dump(ST_GeomFromWKB(%(wkb)s, 4326))).geom AS geom",
    "CREATE INDEX ON floor_parts USING gist (geom)",
    "ANALYZE floor_parts",
)
NAIVE_TIMEOUT_S = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nationals", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None,
                        help="default: bench/seed.py's sagip_bench_1m, or sagip_bench_10m from 10M nationals")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    parser.add_argument("--no-naive", action="store_true", help="skip the unsubdivided polygon (minutes at 10M)")
    parser.add_argument("--no-semantics", action="store_true",
                        help="skip the semantics floor (the run's rules written by hand: minutes at 10M for the "
                             "detailed area); the plain floor is the reference")
    parser.add_argument("--keep-crises", action="store_true",
                        help="leave the bench's crises and their runs in place (bench/stream.py --crisis lists them)")
    args = parser.parse_args()
    from bench import seed
    url = libpq_url(args.database_url or seed.default_url(args.nationals))
    seed.ensure(url, args.nationals, redis_url=args.redis_url)
    app, token, _ = prepare(url, args.redis_url)

    from registry.crises import areas
    from registry.crises.exposure import degrees
    with psycopg.connect(url, autocommit=True) as conn:
        # The floors write the same rows, with the same columns and primary key, as the run does.
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute("CREATE TABLE bench_floor (LIKE exposures INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                     "INCLUDING INDEXES)")
        nationals = conn.execute("SELECT count(*) FROM nationals").fetchone()[0]

    worker = subprocess.Popen([sys.executable, "-m", "celery", "--quiet", "-A", "tasks", "worker", "--pool", "solo",
                               "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle",
                               "--without-gossip"], cwd=ROOT, env=os.environ.copy())
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    results = []
    try:
        time.sleep(3)  # the worker connects
        for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
            area, zones = SCENARIOS[name]
            with app.app_context():
                geometry, _ = areas.area_from_spec(area, lambda codes: _countries(url, codes))
            wkb = geometry.wkb
            reach = (max(zones) if zones else 0) * 1000.0
            floor_params = {"wkb": wkb, "reach": reach, "reach_deg": degrees(reach), "run": uuid.uuid4(),
                            "precision_deg": degrees(30_000), "zones": zones, "max_zone": max(zones) if zones else 0}
            paths, plains, floors, naive, rows, plain_rows = [], [], [], [], 0, 0
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.post("/api/v1/crises", headers=headers, json={
                    "name": f"bench {name}", "kind": "flood", "severity": "high", "area": area, "zones_km": zones})
                if response.status_code != 202:
                    raise SystemExit(f"{name}: {response.status_code} {response.get_json()}")
                job_id = response.get_json()["latest_run"]["job_id"]
                with psycopg.connect(url, autocommit=True) as watcher:  # a light poll, not an API call
                    while watcher.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()[0] \
                            not in ("succeeded", "failed"):
                        time.sleep(0.01)
                paths.append(time.perf_counter() - started)
                job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
                if job["status"] != "succeeded":
                    raise SystemExit(f"{name}: run failed: {job['error']}")
                rows = job["result"]["counts"]["total"]
                with psycopg.connect(url) as conn:
                    seconds, plain_rows = plain_floor(conn, area, floor_params)
                    plains.append(seconds)
                    conn.execute("TRUNCATE bench_floor")
                    conn.commit()
                    if args.no_semantics:
                        floors.append(math.nan)
                        continue
                    started = time.perf_counter()
                    for statement in FLOOR_SETUP:
                        conn.execute(statement, floor_params)
                    floor_rows = conn.execute(FLOOR_SQL, floor_params).rowcount
                    conn.commit()
                    floors.append(time.perf_counter() - started)
                    if floor_rows != rows:
                        print(f"  ! {name}: the semantics floor wrote {floor_rows} rows, the run {rows}")
                    if name.startswith("detailed") and not naive and not args.no_naive:  # once: minutes
                        conn.execute("TRUNCATE bench_floor")
                        conn.commit()
                        started = time.perf_counter()
                        try:
                            conn.execute(f"SET statement_timeout = '{NAIVE_TIMEOUT_S}s'")
                            for statement in NAIVE_SETUP:
                                conn.execute(statement, floor_params)
                            conn.execute(FLOOR_SQL, floor_params)
                            conn.commit()
                            naive.append(time.perf_counter() - started)
                        except psycopg.errors.QueryCanceled:
                            conn.rollback()
                            naive.append(float("inf"))
                        conn.execute("SET statement_timeout = 0")
            med = statistics.median
            results.append((name, rows, plain_rows, med(paths), med(plains), med(floors),
                            med(naive) if naive else None, int(geometry_vertices(geometry))))
            print(f"  {name}: {rows:,} rows, path {med(paths):.2f} s; plain floor {plain_rows:,} rows "
                  f"{med(plains):.2f} s; semantics floor {med(floors):.2f} s", flush=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_floor")
            if args.keep_crises:
                for crisis, name in conn.execute("SELECT id, name FROM crises WHERE name LIKE 'bench %' "
                                                 "ORDER BY created_at"):
                    print(f"kept: crisis {crisis} ({name})")
            else:
                conn.execute("DELETE FROM exposures WHERE run_id IN (SELECT r.id FROM exposure_runs r JOIN crises c "
                             "ON c.id = r.crisis_id WHERE c.name LIKE 'bench %')")
                conn.execute("DELETE FROM crises WHERE name LIKE 'bench %'")

    print(f"\n{nationals:,} nationals, median of {args.runs} runs per scenario, 2 CPUs shared by the worker, "
          "PostgreSQL and this process")
    print("plain = the same located people with their geodesic distances, one hand-written INSERT … SELECT into a "
          "table with the exposures' columns and primary key;\nsemantics = the same rows as the run (precision "
          "circles, certainty, country-only records), hand-written")
    print(f"{'scenario':<24} {'vertices':>8} {'rows':>9} {'plain rows':>10} {'path s':>7} {'plain s':>7} "
          f"{'sem. s':>7} {'path/plain':>10} {'sem./plain':>10} {'path/sem.':>9}  target path <= 2 x plain")
    for name, rows, plain_rows, path, plain, floor, naive, vertices in results:
        print(f"{name:<24} {vertices:>8,} {rows:>9,} {plain_rows:>10,} {path:>7.2f} {plain:>7.2f} {floor:>7.2f} "
              f"{path / plain:>10.2f} {floor / plain:>10.2f} {path / floor:>9.2f}  "
              f"{'MET' if path <= 2 * plain else 'MISSED'}")
        if naive is not None:
            shown = f"{naive:.2f} s" if naive != float("inf") else f"over {NAIVE_TIMEOUT_S} s (stopped)"
            print(f"  the semantics floor against the unsubdivided polygon (naive join): {shown}; subdivided "
                  f"{floor:.2f} s: naive/subdivided = {'over ' if naive == float('inf') else ''}"
                  f"{min(naive, NAIVE_TIMEOUT_S) / floor:.2f}")
    return 0


def geometry_vertices(geometry) -> int:
    import shapely
    return shapely.get_num_coordinates(geometry)


def _countries(url: str, codes: list[str]):
    import shapely
    with psycopg.connect(url) as conn:
        wkbs = [row[0] for row in conn.execute("SELECT ST_AsBinary(geom) FROM countries WHERE alpha2 = ANY(%s)",
                                               (codes,))]
    return shapely.union_all([shapely.from_wkb(bytes(w)) for w in wkbs])


if __name__ == "__main__":
    sys.exit(main())
