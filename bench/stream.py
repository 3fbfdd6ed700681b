"""A 1M-row exposure list streamed by the API under gunicorn: the worker's memory and rows/s, beside bare COPY.

    python bench/stream.py [--nationals 1000000] [--runs 3] [--threads 4] [--port 8767] \
        [--formats csv,geojson] [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_e_stream] \
        [--redis-url redis://127.0.0.1:6379/4]

1. Checks the free disk of PostgreSQL's data directory before seeding (about 1.5 GB per million rows
   still to seed, plus 2 GB of room) and refuses when it is short.
2. Creates, migrates and (once) seeds the database with bench/roster.py's seeding: N nationals around
   30 host-country cities, and one crisis whose one succeeded exposure run holds all N, its rows
   written directly by one ``INSERT … SELECT`` (not computed by an exposure run: the list is what is
   measured here, not the run).
3. Starts gunicorn (``registry/gunicorn_conf.py``) with ONE worker process (``--threads`` threads) and
   warms it up (a JSON page and an empty CSV through the streaming path).
4. Per format, --runs times: ``GET /api/v1/crises/{id}/exposure?format=…&purpose=bench`` as a
   coordinator, read in 64 KiB chunks (rows counted, the body never kept), while the gunicorn worker's
   VmRSS is sampled every 50 ms from /proc; VmHWM (reset before the download) catches a peak between
   two samples. Idle is the worker's RSS just before each download.
5. The floor, --runs times: the same SELECT the listing runs, written as plain SQL, in
   ``COPY (…) TO STDOUT (FORMAT csv)`` through psycopg, as the tables' owner (no SET ROLE, no
   row-level security), read the same way.

Prints medians: idle and peak RSS, peak above idle (target <= 100 MB), rows, seconds, rows/s, and the
ratio path/floor. Rows on the wire are counted: CSV lines after the header, GeoJSON features.
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api import Server  # noqa: E402
from bench.exposure import libpq_url, prepare  # noqa: E402
from bench.roster import SEED_TAG, seed_crisis, seed_nationals  # noqa: E402
from bench.zipbomb import children, reset_peaks, status_kib  # noqa: E402

MB = 1024 * 1024
TARGET_ABOVE_IDLE_MB = 100
SAMPLE_EVERY_S = 0.05
CHUNK = 64 * 1024
# This seed took 0.8 GB for 1M nationals and their 1M exposure rows, with indexes; the rest is room for WAL.
BYTES_PER_ROW = 1500
DISK_ROOM = 2 * 1024 * MB
FEATURE = b'{"type":"Feature"'

# The listing's statement (registry/crises/listing.py ``_rows`` for a coordinator, no filters, in distance
# order), as plain SQL.
FLOOR_SQL = """
COPY (
SELECT e.national_id, n.family_name, n.given_names, e.zone, e.ring_km, e.distance_km, e.certainty,
       ST_Y(e.location) AS lat, ST_X(e.location) AS lon, e.location_source, e.location_precision_m,
       e.location_age_days, e.priority, n.vulnerabilities, n.phones, d.host_country, d.city
FROM exposures e
JOIN nationals n ON n.id = e.national_id AND n.erased_at IS NULL
LEFT JOIN deployments d ON d.national_id = e.national_id AND d.is_current
WHERE e.run_id = {run}
ORDER BY e.distance_km, e.national_id
) TO STDOUT (FORMAT csv)
"""


def check_disk(url: str, count: int) -> None:
    """Refuse politely when PostgreSQL's disk cannot hold the rows still to seed."""
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM nationals WHERE search_name = %s", (SEED_TAG,)).fetchone()[0]
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    missing = max(0, count - have)
    if not missing:
        return
    path = Path(data_dir)
    while not path.exists() and path != path.parent:
        path = path.parent
    free = shutil.disk_usage(path).free
    need = missing * BYTES_PER_ROW + DISK_ROOM
    if free < need:
        raise SystemExit(f"not enough free disk for the seed: {missing:,} nationals and exposure rows to add need "
                         f"about {need / 1024 / MB:.1f} GB on {path}, {free / 1024 / MB:.1f} GB are free. Free some "
                         "space, or run with fewer --nationals.")
    print(f"disk: {free / 1024 / MB:.0f} GB free on {path}, the seed needs about {need / 1024 / MB:.1f} GB")


class RssSampler:
    """VmRSS of one process every 50 ms, and its VmHWM (reset at the start)."""

    def __init__(self, pid: int):
        self.pid, self.peak_kib, self._stop = pid, 0, threading.Event()
        self.idle_kib = status_kib(pid, "VmRSS")
        reset_peaks(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            self._stop.wait(SAMPLE_EVERY_S)

    def stop(self) -> tuple[int, int, int]:
        """(idle, sampled peak, VmHWM) in KiB."""
        self._stop.set()
        self._thread.join()
        return self.idle_kib, self.peak_kib, status_kib(self.pid, "VmHWM")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def download(port: int, path: str, token: str, fmt: str) -> tuple[int, int, float]:
    """GET ``path`` read in chunks, never kept: (rows, bytes, seconds to the headers). Rows: CSV lines after
    the header, or GeoJSON features."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    headers_s = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {response.read()[:500]!r}")
    size = lines = features = 0
    tail = b""
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if fmt == "csv":
            lines += chunk.count(b"\n")
        else:
            window = tail + chunk
            features += window.count(FEATURE)
            tail = window[-(len(FEATURE) - 1):]
    conn.close()
    return (lines - 1 if fmt == "csv" else features), size, headers_s


def floor(url: str, run_id: str) -> tuple[int, float]:
    """The bare COPY of the listing's SELECT: (rows, seconds)."""
    from psycopg import sql
    statement = sql.SQL(FLOOR_SQL).format(run=sql.Literal(run_id))
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        lines = 0
        with conn.cursor().copy(statement) as copy:
            for block in copy:
                lines += bytes(block).count(b"\n")
        return lines, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nationals", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="threads of the one gunicorn worker process")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--formats", default="csv,geojson")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_e_stream")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--crisis", help="download this crisis's latest succeeded run instead of seeding one (e.g. "
                        "bench/exposure.py's Dubai run on bench/seed.py's 10M registry, with --database-url)")
    args = parser.parse_args()
    url = libpq_url(args.database_url)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if set(formats) - {"csv", "geojson"}:
        raise SystemExit("--formats: csv and/or geojson")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")

    app, token, label_points = prepare(url, args.redis_url)
    if args.crisis:
        crisis_id = args.crisis
    else:
        check_disk(url, args.nationals)
        seed_nationals(url, args.nationals, label_points)
        crisis_id = seed_crisis(url, f"bench stream {args.nationals}", args.nationals)
    with psycopg.connect(url) as conn:
        run = conn.execute("SELECT id FROM exposure_runs WHERE crisis_id = %s AND status = 'succeeded' "
                           "ORDER BY finished_at DESC LIMIT 1", (crisis_id,)).fetchone()
        if run is None:
            raise SystemExit(f"crisis {crisis_id}: no succeeded exposure run in {args.database_url}")
        run_id = str(run[0])
        exposed = conn.execute("SELECT count(*) FROM exposures WHERE run_id = %s", (run_id,)).fetchone()[0]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(f"crisis {crisis_id}: {exposed:,} exposure rows in its run; database {size / 1024 / MB:.1f} GB")
    with app.app_context():
        from registry.extensions import db
        db.engine.dispose()

    base = f"/api/v1/crises/{crisis_id}/exposure?purpose=bench"
    server = Server(url, args.port, 1, args.threads)
    results: dict[str, list[tuple]] = {fmt: [] for fmt in formats}
    floors: list[tuple[int, float]] = []
    keep_log = False
    try:
        server.start()
        worker, = children(server.proc.pid)
        print(f"gunicorn: 1 worker process (pid {worker}) x {args.threads} threads on 127.0.0.1:{args.port}")
        # Warm-up: a page, and the streaming path with a filter no row matches.
        for query, fmt in (("&limit=10", "json"), ("&format=csv&city=Nowhere", "csv"),
                           ("&format=geojson&city=Nowhere", "geojson")):
            download(args.port, base + query, token, fmt)
        time.sleep(1)
        warm_kib = status_kib(worker, "VmRSS")
        print(f"idle after warm-up: {warm_kib / 1024:.1f} MB")
        for run in range(args.runs):
            for fmt in formats:
                sampler = RssSampler(worker)
                cpu_started = cpu_s(worker)
                started = time.perf_counter()
                rows, size, headers_s = download(args.port, f"{base}&format={fmt}", token, fmt)
                seconds = time.perf_counter() - started
                cpu = cpu_s(worker) - cpu_started
                idle, sampled, hwm = sampler.stop()
                results[fmt].append((rows, seconds, size, idle, max(sampled, hwm), headers_s, cpu))
                print(f"  run {run + 1} {fmt}: {rows:,} rows, {size / MB:,.0f} MB in {seconds:.2f} s "
                      f"({rows / seconds:,.0f} rows/s; headers after {headers_s:.2f} s; gunicorn worker CPU "
                      f"{cpu:.1f} s); "
                      f"RSS idle {idle / 1024:.1f} MB, peak {max(sampled, hwm) / 1024:.1f} MB (sampled "
                      f"{sampled / 1024:.1f}, VmHWM {hwm / 1024:.1f}): +{(max(sampled, hwm) - idle) / 1024:.1f} MB",
                      flush=True)
                if rows != exposed:
                    print(f"  ! {fmt}: {rows:,} rows on the wire, {exposed:,} in the run")
            floors.append(floor(url, run_id))
            print(f"  run {run + 1} floor: {floors[-1][0]:,} rows in {floors[-1][1]:.2f} s", flush=True)
        if children(server.proc.pid) != [worker]:
            print("  ! the gunicorn worker was replaced during the run")
    except BaseException:
        keep_log = True
        raise
    finally:
        server.stop()
        if keep_log or server.errors_in_log():
            print(f"gunicorn log kept: {server.log_path}")
        else:
            server.remove_log()

    med = statistics.median
    floor_rows = floors[0][0]
    floor_rate = floor_rows / med(s for _, s in floors)
    print(f"\n{exposed:,} exposure rows, coordinator, median of {args.runs} runs; gunicorn 1 worker x {args.threads} "
          f"threads; 2 CPUs shared by gunicorn, PostgreSQL and this client; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'format':<8} {'rows':>10} {'MB':>6} {'seconds':>8} {'headers s':>9} {'cpu s':>6} {'rows/s':>8} "
          f"{'idle MB':>8} {'peak MB':>8} {'above idle':>10} {'worst':>6}  target (<= {TARGET_ABOVE_IDLE_MB} MB above "
          "idle)  path/floor")
    for fmt in formats:
        runs = results[fmt]
        rows = runs[0][0]
        seconds = med(r[1] for r in runs)
        above = med((r[4] - r[3]) / 1024 for r in runs)
        worst = max((r[4] - r[3]) / 1024 for r in runs)
        print(f"{fmt:<8} {rows:>10,} {med(r[2] for r in runs) / MB:>6.0f} {seconds:>8.2f} "
              f"{med(r[5] for r in runs):>9.2f} "
              f"{med(r[6] for r in runs):>6.1f} {rows / seconds:>8,.0f} {med(r[3] for r in runs) / 1024:>8.1f} "
              f"{med(r[4] for r in runs) / 1024:>8.1f} {above:>10.1f} {worst:>6.1f}  "
              f"{'MET' if worst <= TARGET_ABOVE_IDLE_MB else 'MISSED'}{'':>28}{rows / seconds / floor_rate:.2f}")
    highest = max(r[4] for runs in results.values() for r in runs)
    print(f"the highest peak of all runs is {(highest - warm_kib) / 1024:.1f} MB above its "
          f"idle after the warm-up ({warm_kib / 1024:.1f} MB)")
    print(f"floor: bare COPY (the listing's SELECT) TO STDOUT (FORMAT csv), psycopg, as the owner: {floor_rows:,} "
          f"rows in {med(s for _, s in floors):.2f} s = {floor_rate:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
