#!/usr/bin/env python
"""Mixed load on the whole service (SPEC §12): locust against gunicorn and a real Celery worker, on N nationals.

    python bench/load.py [--nationals 1000000] [--minutes 10] [--users 16] [--spawn-rate 2] \
        [--web-workers 2] [--threads 4] [--worker-concurrency 2] [--accounts 100] [--port 8811] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_load] \
        [--redis-url redis://127.0.0.1:6379/6] [--data-dir ~/.local/share/sagip-bench-load] \
        [--out bench/out/load-TAG] [--wait-s 0] [--floor-seconds 10]

1. Creates and migrates the scratch database (its name must contain "bench") and seeds it once by COPY
   (``seed_registry``: demo-like nationals in 14 host countries, with deployments, location reports, next of
   kin and passports); folds the map grid as the worker's beat would.
2. Creates (once) --accounts users per role through the project's own user services (audited, as
   ``registry users create`` does) and gives each a fresh one-day token: desk officers, embassy officers
   for AE, coordinators.
3. Starts a real worker (``registry worker``: Celery with its beat, --worker-concurrency processes) and
   gunicorn (``registry/gunicorn_conf.py``, --web-workers x --threads) on 127.0.0.1:--port.
4. Through the API, as a coordinator: creates assembly points around Dubai (once), declares a crisis (a
   30 km circle on Dubai, a 25 km ring) and waits for the worker's exposure run; builds a roster of it and
   waits for the worker again.
5. Writes the plan (tokens, ids, names, passports, the crisis, the roster, registration bodies) and runs
   ``locust -f bench/locustfile.py --headless -u USERS -r RATE -t MINUTES --csv OUT/locust``; the
   locustfile's docstring says what each role does. Samples the machine's load average meanwhile.
6. Prints per request type: count, req/s, p50/p95/p99, failures; the total; the CPU each part used (the
   machine is shared: "the rest" is PostgreSQL and everyone else); then the floor, the bare SQL single-national
   read (bench/api.py's) from 8 clients for --floor-seconds, with gunicorn and the worker stopped.
7. Closes the crisis, deletes the nationals the run registered and revokes the run's tokens. Exits non-zero
   on any failed request, any job that failed, or an error in gunicorn's log.

Only 127.0.0.1 is sent requests. The load generator shares the machine with the server, the worker and
PostgreSQL: the figures are a lower bound for a separate load generator.
"""
from __future__ import annotations

import argparse
import http.client
import importlib
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder leads sys.path and its statistics.py would shadow the standard library's.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api import Server, _machine_cpu, run_scenario  # noqa: E402
from bench.exposure import libpq_url, migrated_app  # noqa: E402

JURISDICTION = "AE"
CRISIS_AREA = {"type": "circle", "center": {"lat": 25.2048, "lon": 55.2708}, "radius_km": 30}
CRISIS_ZONES_KM = [25]
POINT_CITIES = (("Dubai", 25.2048, 55.2708, 20), ("Sharjah", 25.3463, 55.4209, 12), ("Ajman", 25.4052, 55.5136, 8))
POINT_CAPACITY = 3000
SAMPLE_IDS = 20_000
SAMPLE_PASSPORTS = 5_000
REGISTRATION_BODIES = 2_000
ROLES = ("desk", "embassy", "coordinator")
# Request types every run must have made (the locustfile's names); export polls and downloads come with
# jobs, which a small seed does not need (its whole roster is the answer itself).
REQUEST_TYPES = ("POST /nationals (register)", "GET /nationals/{id}", "POST /nationals/search (name)",
                 "POST /nationals/search (passport)", "GET /crises/{id}/exposure (page 1)",
                 "GET /crises/{id}/exposure (next page)", "GET /rosters/{id}/export (point, csv)",
                 "GET /rosters/{id}/export (whole, job)")
PURPOSE = "load test setup"
BYTES_PER_NATIONAL = 2_500  # nationals, deployments, reports, kin and their indexes, with room for WAL
DISK_ROOM = 2 * 1024 ** 3


# --------------------------------------------------------------------------- the registry


def seeded_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM nationals WHERE source = 'bulk_import' AND created_by IS NULL"
                            ).fetchone()[0]


def check_disk(url: str, count: int) -> None:
    """Refuse when PostgreSQL's disk cannot hold the nationals still to seed."""
    missing = max(0, count - seeded_count(url))
    if not missing:
        return
    with psycopg.connect(url) as conn:
        data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
    while not data_dir.exists() and data_dir != data_dir.parent:
        data_dir = data_dir.parent
    free, need = shutil.disk_usage(data_dir).free, missing * BYTES_PER_NATIONAL + DISK_ROOM
    if free < need:
        raise SystemExit(f"not enough free disk to seed {missing:,} nationals: about {need / 1024 ** 3:.1f} GB "
                         f"needed on {data_dir}, {free / 1024 ** 3:.1f} GB free; run with fewer --nationals")


def seed_registry(app, url: str, count: int) -> None:
    """COPY ``count`` nationals, once (later runs reuse them; an interrupted seed resumes).

    The one seeding call of this bench (swap it for a shared seeder): demo rows (``registry.demo``: 14 host
    countries, households, 80% GPS points, next of kin) turned into the four tables' values by
    bench/import.py's ``prepare_floor`` (passports encrypted, blind-indexed), with unique passports
    ``B00000000``… and the search key the service writes. In chunks of 50,000, each its own transaction.
    """
    have = seeded_count(url)
    if have >= count:
        print(f"seed: {have:,} nationals already there")
        return
    from registry import validation
    from registry.demo import generate_rows
    from registry.imports.rows import COLUMNS
    bulk = importlib.import_module("bench.import")  # "import" is a keyword: no from-import
    passport_at, search_at = COLUMNS.index("passport_number"), bulk.NATIONAL_COLUMNS.index("search_name")
    chunk = 50_000
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        centroids = {code: (f"SRID=4326;POINT({lon} {lat})", precision) for code, lon, lat, precision in conn.execute(
            "SELECT alpha2, ST_X(label_point), ST_Y(label_point), precision_m FROM countries")}
        for first in range(have, count, chunk):
            rows = generate_rows(min(chunk, count - first), seed=first)
            for offset, row in enumerate(rows):
                row[passport_at] = f"B{first + offset:08d}"
            with app.app_context():  # the keyring
                nationals, deployments, reports, kin = bulk.prepare_floor(rows, COLUMNS, None, centroids)
            nationals = [(*r[:search_at], validation.search_key(r[1], r[2], r[3]), *r[search_at + 1:])
                         for r in nationals]
            for table, columns, values in (("nationals", bulk.NATIONAL_COLUMNS, nationals),
                                           ("deployments", bulk.DEPLOYMENT_COLUMNS, deployments),
                                           ("location_reports", bulk.REPORT_COLUMNS, reports),
                                           ("next_of_kin", bulk.KIN_COLUMNS, kin)):
                with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            conn.commit()
            done = first + len(rows)
            print(f"seed: {done:,} / {count:,} nationals ({time.monotonic() - started:.0f} s)", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("nationals", "deployments", "location_reports", "next_of_kin"):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(f"seed: {count - have:,} nationals added in {time.monotonic() - started:.0f} s (COPY)")
    from bench.map import fold
    fold(app, url)  # the grid's changes, as the worker's beat would fold them


def accounts(app, per_role: int) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(tokens by role, user ids by role): ``per_role`` users of each role, created once with the user
    services (audited, as ``registry users create``), each with a new one-day token."""
    from sqlalchemy import select

    from registry.auth.models import User
    from registry.auth.services import service_user
    from registry.extensions import db
    from registry.users import services as users_admin

    tokens: dict[str, list[str]] = {role: [] for role in ROLES}
    ids: dict[str, list[str]] = {role: [] for role in ROLES}
    with app.app_context():
        operator = service_user()
        existing = {u.username: u for u in db.session.scalars(select(User).where(User.username.like("load-%")))}
        for role in ROLES:
            for number in range(1, per_role + 1):
                username = f"load-{role}-{number:03d}"
                user = existing.get(username) or users_admin.create(
                    f"Load {role} {number}", role, [JURISDICTION] if role == "embassy" else [], username, by=operator)
                tokens[role].append(users_admin.issue_token(user, ttl_days=1, by=operator)[0])
                ids[role].append(str(user.id))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return tokens, ids


def revoke(app, user_ids: list[str]) -> None:
    from registry.auth.models import User
    from registry.auth.services import revoke_tokens
    from registry.extensions import db
    with app.app_context():
        revoked = sum(revoke_tokens(db.session.get(User, user_id)) for user_id in user_ids)
        db.session.commit()
        db.engine.dispose()
    print(f"cleanup: {revoked} tokens revoked")


def delete_registrations(url: str, desk_ids: list[str]) -> None:
    with psycopg.connect(url) as conn:
        deleted = conn.execute("DELETE FROM nationals WHERE created_by = ANY(%s::uuid[])", (desk_ids,)).rowcount
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE nationals")
    print(f"cleanup: {deleted:,} nationals registered by the desk officers deleted")


# --------------------------------------------------------------------------- the API, for the set-up


class Api:
    """JSON calls to the service on 127.0.0.1 with one token; anything but the expected status stops the run."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token

    def call(self, method: str, path: str, body: dict | None = None, expect: tuple[int, ...] = (200,)) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status not in expect:
            raise SystemExit(f"{method} {path}: {response.status} {data[:500]!r}")
        return json.loads(data) if data else {}

    def wait_job(self, job_id: str, what: str) -> dict:
        started = time.monotonic()
        while True:
            job = self.call("GET", f"/api/v1/jobs/{job_id}")
            if job["status"] == "succeeded":
                print(f"{what}: {time.monotonic() - started:.1f} s", flush=True)
                return job
            if job["status"] == "failed":
                raise SystemExit(f"{what}: the job failed: {job.get('error')}")
            time.sleep(0.5)


def ensure_points(api: Api, url: str) -> None:
    """Assembly points around Dubai, Sharjah and Ajman, created once through the API."""
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM assembly_points WHERE country = %s AND active AND name LIKE 'Load %%'",
                            (JURISDICTION,)).fetchone()[0]
    wanted = sum(n for *_, n in POINT_CITIES)
    if have >= wanted:
        return
    rng = random.Random(7)
    for city, lat, lon, count in POINT_CITIES:
        for number in range(count):
            api.call("POST", "/api/v1/assembly-points", {
                "name": f"Load {city} point {number + 1}", "kind": rng.choice(("school", "shelter", "other")),
                "location": {"lat": round(lat + rng.gauss(0, 0.06), 6), "lon": round(lon + rng.gauss(0, 0.06), 6)},
                "capacity": POINT_CAPACITY, "country": JURISDICTION}, expect=(201,))
    print(f"assembly points: {wanted} created around {', '.join(c for c, *_ in POINT_CITIES)}")


def close_leftover_crises(api: Api, url: str) -> None:
    """Crises an interrupted run left active would be re-run by the worker's refresh during this one."""
    with psycopg.connect(url) as conn:
        leftover = [str(r[0]) for r in conn.execute("SELECT id FROM crises WHERE status = 'active' AND name LIKE 'load %'")]
    for crisis_id in leftover:
        api.call("PATCH", f"/api/v1/crises/{crisis_id}", {"status": "closed"})
    if leftover:
        print(f"closed {len(leftover)} active crises left by an earlier run")


def registration_body(row: list[str]) -> dict:
    """An API registration from a demo row (``registry.imports.rows.COLUMNS`` order); the passport is the
    locustfile's."""
    from registry.imports.rows import COLUMNS
    r = dict(zip(COLUMNS, row))

    def split(value: str) -> list[str]:
        return [v for v in value.split(";") if v]

    body = {"family_name": r["family_name"], "given_names": r["given_names"], "sex": r["sex"],
            "date_of_birth": r["date_of_birth"], "nationality": r["nationality"], "phones": split(r["phones"]),
            "languages": split(r["languages"]), "vulnerabilities": split(r["vulnerabilities"]),
            "consent": {"given": True, "method": "departure desk form"},
            "deployment": {k: r[k] for k in ("host_country", "city", "address", "employer", "occupation_isco", "sector",
                                             "contract_start", "contract_end", "legal_status", "recruitment_agency")
                           if r[k]}}
    for field in ("native_name", "national_id_number", "email"):
        if r[field]:
            body[field] = r[field]
    if r["next_of_kin_name"] or r["next_of_kin_phone"]:
        body["next_of_kin"] = {"name": r["next_of_kin_name"] or None, "relation": r["next_of_kin_relation"] or None,
                               "phone": r["next_of_kin_phone"] or None}
    if r["lat"]:
        body["location"] = {"lat": float(r["lat"]), "lon": float(r["lon"]), "precision_m": 20, "source": "gps"}
    return body


def plan(app, url: str, tag: str, tokens: dict, crisis_id: str, roster_id: str) -> dict:
    """What the locustfile needs: ids, names and passports in the embassy's jurisdiction, the roster's points
    small enough to be exported at once, and registration bodies."""
    from registry.crypto import keyring
    from registry.demo import generate_rows
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(0.42)")
        sample = conn.execute(
            "SELECT id, family_name, given_names, passport_ciphertext FROM nationals WHERE jurisdiction_country = %s "
            "AND source = 'bulk_import' AND created_by IS NULL AND erased_at IS NULL ORDER BY random() LIMIT %s",
            (JURISDICTION, SAMPLE_IDS)).fetchall()
        points = [str(r[0]) for r in conn.execute(
            "SELECT assembly_point_id FROM roster_entries WHERE roster_id = %s AND assembly_point_id IS NOT NULL "
            "GROUP BY 1 HAVING count(*) <= %s", (roster_id, app.config["REGISTRY_EXPORT_INLINE_ROWS"]))]
    if not sample or not points:
        raise SystemExit(f"nothing to load: {len(sample)} nationals in {JURISDICTION}, {len(points)} points to export")
    with app.app_context():
        ring = keyring()
        passports = [ring.decrypt("passport", r[0], r[3]) for r in sample[:SAMPLE_PASSPORTS]]
    return {"run_tag": tag, "tokens": tokens, "crisis_id": crisis_id, "roster_id": roster_id,
            "assembly_point_ids": points, "national_ids": [str(r[0]) for r in sample],
            "names": [f"{r[2]} {r[1]}" for r in sample[:SAMPLE_PASSPORTS]], "passports": passports,
            "registrations": [registration_body(row) for row in generate_rows(REGISTRATION_BODIES, seed=hash(tag) % 10 ** 6)]}


# --------------------------------------------------------------------------- processes


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (from /proc)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += _own_cpu_s(current) or 0.0
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack += [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            continue
    return total


def _own_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process (from /proc), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def start_worker(concurrency: int, log_path: Path) -> subprocess.Popen:
    """``registry worker`` (Celery + its beat, the schedule in the data folder) in its own session."""
    log = open(log_path, "ab")
    worker = subprocess.Popen([sys.executable, "-m", "registry.cli", "worker", "--concurrency", str(concurrency)],
                              cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return worker


def stop_process(proc: subprocess.Popen | None, sig=signal.SIGTERM, grace_s: float = 30) -> None:
    """Stop a process this script started (and, if it will not go, its own session)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class BackendCpu:
    """CPU seconds of this database's PostgreSQL backends (the pools of gunicorn and the worker, parallel
    workers), polled: a backend seen at the start counts from then, a later one from its birth; one that
    lives less than a poll's interval is missed."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)
        self.baseline: dict[int, float] = {}
        self.latest: dict[int, float] = {}
        for pid, cpu in self._read():
            self.baseline[pid] = self.latest[pid] = cpu

    def _read(self) -> list[tuple[int, float]]:
        pids = [r[0] for r in self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                                "AND pid <> pg_backend_pid()")]
        return [(pid, cpu) for pid in pids if (cpu := _own_cpu_s(pid)) is not None]

    def poll(self) -> None:
        for pid, cpu in self._read():
            self.baseline.setdefault(pid, 0.0)
            self.latest[pid] = cpu

    def seconds(self) -> float:
        self.conn.close()
        return sum(cpu - self.baseline[pid] for pid, cpu in self.latest.items())


class LoadSampler:
    """The machine's 1-minute load average every 15 s while the load runs."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(15):
            with open("/proc/loadavg") as handle:
                self.samples.append(float(handle.read().split()[0]))

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return self.samples


# --------------------------------------------------------------------------- report


def print_summary(result: dict, seconds: float) -> tuple[int, int]:
    """The table of locust's final figures per request type and in all; (requests, failures)."""
    def ms(value) -> str:
        return "-" if value is None else f"{value:.0f}"

    print(f"\n{'request':<44} {'count':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'errors':>6}")
    print("-" * 98)
    total = failures = 0
    for row in result["requests"]:
        name = row["name"]
        if name == "Aggregated":
            print("-" * 98)
            name = "all requests"
            total, failures = row["requests"], row["failures"]
        print(f"{name:<44} {row['requests']:>8} {row['requests'] / seconds:>7.1f} {ms(row['p50']):>7} "
              f"{ms(row['p95']):>7} {ms(row['p99']):>7} {ms(row['max']):>7} {row['failures']:>6}")
    return total, failures


def failed_jobs(url: str, since: float) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT kind, error FROM jobs WHERE status = 'failed' AND created_at >= to_timestamp(%s)",
                            (since,)).fetchall()


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nationals", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--users", type=int, default=16, help="locust users (officers working at once)")
    parser.add_argument("--spawn-rate", type=float, default=2, help="users started per second")
    parser.add_argument("--wait-s", type=float, default=0,
                        help="a random wait of up to this many seconds between a user's tasks (0: none)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=None, help="threads per gunicorn worker (conf default)")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--accounts", type=int, default=100, help="users per role (tokens the load rotates over)")
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--data-dir", default="~/.local/share/sagip-bench-load",
                        help="REGISTRY_DATA_DIR: the keys the seed is encrypted with, export files, beat schedule")
    parser.add_argument("--out", default=None, help="folder for the plan, locust's CSV and the logs "
                                                    "(default bench/out/load-TAG)")
    parser.add_argument("--floor-seconds", type=float, default=10, help="the bare SQL read floor (0: skip it)")
    args = parser.parse_args()

    url = libpq_url(args.database_url)
    os.environ["REGISTRY_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    tag = "".join(random.choices(string.ascii_uppercase + string.digits, k=5))
    out = Path(args.out) if args.out else ROOT / "bench" / "out" / f"load-{tag}"
    out.mkdir(parents=True, exist_ok=True)

    app = migrated_app(url, args.redis_url)  # refuses a database without "bench" in its name
    check_disk(url, args.nationals)
    seed_registry(app, url, args.nationals)
    tokens, user_ids = accounts(app, args.accounts)
    coordinator = tokens["coordinator"][0]
    print(f"run {tag}: {sum(map(len, tokens.values()))} accounts ({args.accounts} per role), output in {out}")

    server = worker = locust = None
    crisis_id = None
    status = 1
    started_wall = time.time()
    try:
        worker = start_worker(args.worker_concurrency, out / "worker.log")
        server = Server(url, args.port, args.web_workers, args.threads)
        server.start()
        print(f"gunicorn ({server.label}) on 127.0.0.1:{args.port}, log {server.log_path}; worker pid {worker.pid} "
              f"(concurrency {args.worker_concurrency}, with beat), log {out / 'worker.log'}", flush=True)
        api = Api(args.port, coordinator)
        close_leftover_crises(api, url)
        ensure_points(api, url)
        crisis = api.call("POST", "/api/v1/crises", {"name": f"load {tag}", "kind": "flood", "severity": "high",
                                                      "area": CRISIS_AREA, "zones_km": CRISIS_ZONES_KM}, expect=(202,))
        crisis_id = str(crisis["id"])
        job = api.wait_job(crisis["latest_run"]["job_id"], "exposure run (declare -> succeeded)")
        print(f"  exposed: {job['result']['counts']}")
        roster = api.call("POST", f"/api/v1/crises/{crisis_id}/rosters", {"vehicle_capacity": 40, "max_distance_km": 100},
                          expect=(202,))
        job = api.wait_job(roster["job_id"], "roster (request -> succeeded)")
        print(f"  roster: {job['result']['counts']}", flush=True)

        plan_path = out / "plan.json"
        plan_path.write_text(json.dumps(plan(app, url, tag, tokens, crisis_id, str(roster["id"]))))
        seconds = round(args.minutes * 60)
        command = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
                   "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{seconds}s",
                   "--host", f"http://127.0.0.1:{args.port}", "--csv", str(out / "locust"), "--only-summary",
                   "--loglevel", "WARNING"]
        print("$ SAGIP_LOAD_PLAN=" + str(plan_path) + " " + " ".join(command[2:]), flush=True)
        load_before = os.getloadavg()
        machine_started, cpu_started = _machine_cpu(), (server.cpu_seconds(), tree_cpu_s(worker.pid))
        sampler, database = LoadSampler(), BackendCpu(url)
        locust_started = time.monotonic()
        locust = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, SAGIP_LOAD_PLAN=str(plan_path),
                                                              SAGIP_LOAD_RESULT=str(out / "result.json"),
                                                              SAGIP_LOAD_WAIT_S=str(args.wait_s)),
                                  start_new_session=True)
        locust_cpu = 0.0
        while locust.poll() is None:
            locust_cpu = max(locust_cpu, tree_cpu_s(locust.pid))  # read while it lives
            database.poll()
            time.sleep(1)
        elapsed, returncode = time.monotonic() - locust_started, locust.returncode
        machine, cpu_ended = _machine_cpu(), (server.cpu_seconds(), tree_cpu_s(worker.pid))
        loads = sampler.stop()
        locust = None

        result_path = out / "result.json"
        if not result_path.exists():
            raise SystemExit(f"locust wrote no result ({result_path}); exit code {returncode}")
        result = json.loads(result_path.read_text())
        total, failures = print_summary(result, seconds)
        print(f"\n{args.users} users (desk 3 : embassy 6 : coordinator 2), no wait between tasks"
              if not args.wait_s else f"\n{args.users} users, waits of 0-{args.wait_s:g} s between tasks", end="")
        print(f", {seconds} s after a ramp-up of {args.users / args.spawn_rate:.0f} s; {args.nationals:,} nationals; "
              f"gunicorn {server.label}, worker concurrency {args.worker_concurrency}")
        print(f"throughput: {total:,} requests in {seconds} s = {total / seconds:.1f} req/s; failures: {failures}")
        cores = os.cpu_count() or 1
        busy = ((machine[1] - machine_started[1]) / (machine[0] - machine_started[0]) * cores
                if machine and machine_started and machine[0] > machine_started[0] else float("nan"))
        web, work = ((cpu_ended[i] - cpu_started[i]) / elapsed for i in (0, 1))
        client, postgres = locust_cpu / elapsed, database.seconds() / elapsed
        print(f"machine: {cores} CPUs; busy {busy:.2f} cores: gunicorn {web:.2f}, worker {work:.2f}, locust "
              f"{client:.2f}, PostgreSQL for this database {postgres:.2f}, the rest (other databases and "
              f"processes) {busy - web - work - client - postgres:.2f}")
        print(f"load average: {load_before[0]:.2f} before; during (1-min, every 15 s) min {min(loads, default=0):.2f}, "
              f"median {sorted(loads)[len(loads) // 2] if loads else 0:.2f}, max {max(loads, default=0):.2f}")

        for error in result["errors"]:
            print(f"  ! {error['occurrences']} x {error['name']}: {error['error'][:300]}")
        problems = []
        if failures or returncode:
            problems.append(f"{failures} failed requests (locust's exit code {returncode})")
        missing = sorted(set(REQUEST_TYPES) - {r["name"] for r in result["requests"] if r["requests"]})
        if missing:
            problems.append(f"no requests of: {', '.join(missing)}")
        jobs = failed_jobs(url, started_wall)
        if jobs:
            problems.append(f"{len(jobs)} failed jobs: {jobs[:3]}")
        api.call("PATCH", f"/api/v1/crises/{crisis_id}", {"status": "closed"})
        crisis_id = None
        server.stop()
        log_errors = server.errors_in_log()
        if log_errors:
            problems.append(f"gunicorn's log has {len(log_errors)} error lines, kept: {server.log_path}")
        else:
            server.remove_log()
        server = None
        stop_process(worker)
        worker = None

        if args.floor_seconds > 0:
            floor_args = SimpleNamespace(processes=2, clients=8, max_requests=10 ** 8, port=args.port, dsn=url,
                                         seconds=args.floor_seconds, warmup=1.0)
            ids = json.loads(plan_path.read_text())["national_ids"]
            floor = run_scenario("sql", floor_args, ids, "", tag)
            reads = next((r for r in result["requests"] if r["name"] == "GET /nationals/{id}"), None)
            print(f"floor: bare SQL read of one national (bench/api.py's statement, 8 clients, {args.floor_seconds:g} s, "
                  f"gunicorn and the worker stopped): {floor['per_s']:,.0f} reads/s, p50 {floor['p50']:.2f} ms, "
                  f"p99 {floor['p99']:.2f} ms")
            if reads:
                print(f"  GET /nationals/{{id}} under the mixed load: {reads['requests'] / seconds:.1f}/s "
                      f"({reads['requests'] / seconds / floor['per_s']:.3f} x the floor; all requests "
                      f"{total / seconds / floor['per_s']:.3f} x)")
        print("\nRESULT: " + ("0 errors" if not problems else "FAILED: " + "; ".join(problems)))
        status = 1 if problems else 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        stop_process(locust, signal.SIGINT, 15)
        if crisis_id and server is not None and server.proc is not None:
            try:
                Api(args.port, coordinator).call("PATCH", f"/api/v1/crises/{crisis_id}", {"status": "closed"})
            except (SystemExit, OSError) as exc:
                print(f"could not close the crisis {crisis_id}: {exc}", file=sys.stderr)
        if server is not None:
            server.stop()
            print(f"gunicorn log kept: {server.log_path}", file=sys.stderr)
        stop_process(worker)
        delete_registrations(url, user_ids["desk"])
        revoke(app, [i for role in ROLES for i in user_ids[role]])
    return status


if __name__ == "__main__":
    sys.exit(main())
