"""A fault campaign on the real stack (SPEC §12): jobs finish once, nothing lost or doubled; 503 while the
database is away.

    python bench/faults.py [--kills 50] [--redis-kills 5] [--pg-restarts 3] [--nationals 100000] [--quick] \
        [--folder /work/scratch-faults] [--pg-port 55432] [--redis-port 16379] [--port 16390] \
        [--port-base 16340] [--max-minutes 40]

Everything runs on its own: a PostgreSQL cluster made here with ``initdb`` (as the ``postgres`` OS user,
in ``--folder``/pg, on ``--pg-port``), a redis-server without persistence (``--redis-port``: a kill -9
loses its queues), Kannel + fakesmsc (``registry.gateways.local``, ``--port-base`` .. +5), gunicorn
(``--port``; it also takes Kannel's delivery reports), two Celery workers (prefork, one pool process each,
each in its own process group) and a beat. The machine's shared PostgreSQL and Redis are never touched.

1. Seeds (once; kept in the cluster between runs) ``--nationals`` nationals by COPY around bench/exposure.py's
   cities, one distinct phone each, and 300 assembly points; empties the work of an earlier run.
2. Keeps a stream of jobs going through the API (at most 3 unfinished at once), kinds in turn: imports of
   400-row CSVs (``POST /api/v1/imports``, people in Singapore, where no crisis is declared), exposure runs
   (``POST /api/v1/crises`` around Gulf cities, then reruns by ``PATCH`` with a new radius), rosters
   (``POST /crises/{id}/rosters``), worker-built exports (``GET /rosters/{id}/export``, CSV and XLSX, over
   ``REGISTRY_EXPORT_INLINE_ROWS``=200) and SMS campaigns through Kannel (``POST /crises/{id}/messages``,
   each text tagged with its campaign's number).
3. Meanwhile injects: ``--kills`` SIGKILLs of a worker's whole process group (main and pool process),
   spread evenly over the five kinds, each while a job of that kind is running on it (seen in
   ``pg_stat_activity``: the runner names its claim connection ``sagip job <kind> pid <pid>``), the worker
   restarted at once; a job is killed at most once. ``--redis-kills`` times: a burst of jobs queued, Redis
   killed -9 with jobs in its queue, jobs submitted while it is down, Redis restarted 2 s later (empty).
   ``--pg-restarts`` times, while a job runs: ``pg_ctl restart -m immediate``, the API probed every 0.1 s
   (``GET /api/v1/nationals?limit=1``) until its first 2xx after the restart: statuses and ``Retry-After``
   answered, time to recover.
4. Waits for every submitted job to end, then checks the data, not only the jobs' statuses: each import's
   people counted by their phones (none twice, none missing); each exposure run's rows beside a recount by
   bench/exposure.py's hand-written statement of the same area (same set of people, no extra row); each
   roster's entries (one per person of its run); each export's file downloaded and its rows counted (all
   of the roster, none twice); each campaign's messages as fakesmsc received them (a number twice is
   doubled, a recipient never reached is lost).
5. Prints per kind: submitted, finished, lost, doubled, kills injected; the outage answers and recovery
   times. Exits 1 if anything was lost or doubled.

Settings of the service for the run (printed): REGISTRY_VISIBILITY_TIMEOUT_S=60,
REGISTRY_OUTBOX_RELAY_SECONDS=2, REGISTRY_CAMPAIGN_SENDERS=4, REGISTRY_SMS_RATE=150 (at 400 messages/s
their delivery reports, ~90 ms each on a loaded 2-core machine, kept gunicorn's 2 x 4 threads busy: a probe
then waited over 10 s, whatever the database did).
``--quick``: 20,000 nationals, 5 kills, 1 Redis kill, 1 PostgreSQL restart.
"""
from __future__ import annotations

import argparse
import collections
import csv
import http.client
import io
import json
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ leads sys.path, and bench/statistics.py would shadow the standard library's.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.exposure import CITIES, FLOOR_SETUP, FLOOR_SQL, random_place  # noqa: E402
from bench.roster import SEED_TAG, seed_points  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "sagip_bench_faults"
KINDS = ("import", "exposure", "roster", "roster_export", "campaign")
IN_FLIGHT = 3
PROBE_TIMEOUT_S = 30  # a probe without an answer by then is counted as None
IMPORT_ROWS = 400
PHONE_PREFIX = "+63917"        # seeded nationals: +63917 and 7 digits
IMPORT_PHONE = "+659{:03d}{:04d}"  # imported people: import number, row
# Crisis sites: small ones (campaigns reach everyone exposed there) and large ones (longer runs and rosters).
SMALL_SITES = [("Muscat", 23.5880, 58.3829), ("Manama", 26.2285, 50.5860), ("Kuwait City", 29.3759, 47.9774),
               ("Doha", 25.2854, 51.5310)]
LARGE_SITES = [("Dubai", 25.2048, 55.2708), ("Riyadh", 24.7136, 46.6753), ("Jeddah", 21.4858, 39.1925)]
TEMPLATE = "Sagip F{n}: {{given_name}}, are you safe? Reply 1 SAFE or 2 HELP."
TAG = re.compile(r"^Sagip F(\d+):")
SERVICE_ENV = {"REGISTRY_VISIBILITY_TIMEOUT_S": "60",
               "REGISTRY_OUTBOX_RELAY_SECONDS": "2", "REGISTRY_CAMPAIGN_SENDERS": "4", "REGISTRY_SMS_RATE": "150",
               "REGISTRY_EXPORT_INLINE_ROWS": "200", "REGISTRY_EXPOSURE_REFRESH_SECONDS": "86400",
               "REGISTRY_BULK_READS_PER_MINUTE": "100000", "REGISTRY_WEB_WORKERS": "2", "REGISTRY_WEB_THREADS": "4",
               "REGISTRY_LOG_LEVEL": "WARNING"}


def now() -> float:
    return time.monotonic()


# ------------------------------------------------------------------------------------------- own services
def as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Cluster:
    """A PostgreSQL cluster of this bench's own (initdb), on its own port and socket folder."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.data, self.sockets, self.log = folder / "pg", folder / "pg-sockets", folder / "pg.log"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        self._own(self.sockets)
        if not (self.data / "PG_VERSION").exists():
            self._own(self.data)
            subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                                        "postgres", "-E", "UTF8", "--no-instructions"]),
                           check=True, stdout=subprocess.DEVNULL)
            with open(self.data / "postgresql.auto.conf", "a") as conf:
                conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                           f"unix_socket_directories = '{self.sockets}'\nmax_connections = 200\n"
                           "shared_buffers = '256MB'\nlog_min_messages = 'warning'\n")
        if not self.log.exists():
            self.log.touch()
            self._own_file(self.log)
        if subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]),
                          stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                                        "start"]), check=True, stdout=subprocess.DEVNULL)

    def _own_file(self, path: Path) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def restart_immediate(self) -> None:
        """Stop without a checkpoint (clients cut off, crash recovery at start) and start again."""
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m",
                                    "immediate", "-w", "restart"]), check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class RedisServer:
    """A redis-server of this bench's own, without persistence: a kill -9 loses every queue."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port, self.process = folder, port, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        import redis
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save",
                                         "", "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = now() + 30
        while now() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def queued(self) -> int:
        import redis
        try:
            return redis.Redis(port=self.port, socket_timeout=1).llen("celery")
        except redis.RedisError:
            return 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


class Process:
    """A service process in its own process group (SIGKILL takes the group: a worker's main and pool
    processes), its output appended to a log file in the bench's folder."""

    def __init__(self, name: str, argv: list[str], env: dict, folder: Path):
        self.name, self.argv, self.env, self.folder = name, argv, env, folder
        self.proc = None
        self.start()

    def start(self) -> None:
        with open(self.folder / f"{self.name}.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


# ------------------------------------------------------------------------------------------- database
def prepare_database(cluster: Cluster, nationals: int, folder: Path) -> None:
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    from registry import config, create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(cluster.url)})
    import flask_migrate
    with app.app_context():
        flask_migrate.upgrade()
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("TRUNCATE jobs, outbox, import_files, crises, campaigns, campaign_recipients, rosters, "
                     "checkin_links, sms_replies CASCADE")
        conn.execute("DELETE FROM nationals WHERE search_name <> %s", (SEED_TAG,))
        have = conn.execute("SELECT count(*) FROM nationals").fetchone()[0]
        if have != nationals:
            print(f"seed: {have:,} nationals there, {nationals:,} wanted: seeding again", flush=True)
            conn.execute("TRUNCATE nationals, assembly_points CASCADE")
            seed(cluster.url, nationals)
    seed_points(cluster.url, 300)


def seed(url: str, count: int) -> None:
    with psycopg.connect(url) as conn:
        label_points = {code: (f"SRID=4326;POINT({x} {y})", float(p)) for code, x, y, p in conn.execute(
            "SELECT alpha2, ST_X(label_point), ST_Y(label_point), precision_m FROM countries")}
        started = now()
        rng = random.Random(11)
        weights = [c[4] for c in CITIES]
        given = ["Maria Luisa", "Jose", "Juan Carlos", "Ana", "Rosario", "Mark Anthony", "Liza", "Noel"]
        stamp = datetime.now(timezone.utc)
        with conn.cursor().copy(
                "COPY nationals (id, family_name, given_names, sex, date_of_birth, nationality, household_id, "
                "status, source, search_name, jurisdiction_country, location, location_source, "
                "location_precision_m, location_reported_at, phones, languages) FROM STDIN") as copy:
            for i in range(count):
                country, point, source, precision = random_place(rng, weights, label_points)
                copy.write_row((uuid.uuid4(), "Bench", given[i % len(given)], "F" if i % 2 else "M",
                                date(1970, 1, 1) + timedelta(days=i % 15000), "PH", uuid.uuid4(), "abroad",
                                "bulk_import", SEED_TAG, country, point, source, precision,
                                stamp - timedelta(days=i % 60), [f"{PHONE_PREFIX}{i:07d}"], ["en"]))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE nationals")
    print(f"seed: {count:,} nationals by COPY in {now() - started:.0f} s", flush=True)


def tokens(cluster: Cluster, folder: Path) -> dict[str, str]:
    from registry import config, create_app
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(cluster.url)})
    made = {}
    with app.app_context():
        for role in ("desk", "coordinator"):
            user = create_user(f"bench-faults-{role}-{uuid.uuid4().hex[:6]}", role)
            made[role] = issue_token(user, ttl_days=1)
        db.session.commit()
        db.engine.dispose()
    return made


class Watcher:
    """An autocommit connection to the cluster that reconnects after a restart (None while it is down)."""

    def __init__(self, url: str):
        self.url, self.conn = url, None

    def rows(self, sql: str, params=None) -> list | None:
        for _ in range(2):
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
                return self.conn.execute(sql, params).fetchall()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self.conn = None
        return None


# ------------------------------------------------------------------------------------------- the API
class Api:
    def __init__(self, port: int, tokens: dict[str, str]):
        self.port, self.tokens = port, tokens

    def call(self, method: str, path: str, role: str = "coordinator", body=None, *, form: bytes | None = None,
             boundary: str | None = None, timeout: float = 60) -> tuple[int | None, dict, bytes]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        data = None
        if form is not None:
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
            data = form
        elif body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        except OSError:
            return None, {}, b""
        finally:
            conn.close()

    def json(self, method: str, path: str, role: str = "coordinator", body=None) -> tuple[int | None, dict]:
        status, _, data = self.call(method, path, role, body)
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, {}


def import_file(n: int) -> bytes:
    rng = random.Random(n)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["family_name", "given_names", "sex", "date_of_birth", "nationality", "passport_number",
                     "phones", "host_country", "city", "occupation_isco", "legal_status", "lat", "lon"])
    for i in range(IMPORT_ROWS):
        writer.writerow(["Reyes", rng.choice(["Ana", "Jose", "Liza", "Noel"]), rng.choice("FM"),
                         f"19{rng.randint(60, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", "PH",
                         f"P{n:03d}{i:04d}F", IMPORT_PHONE.format(n, i), "SG", "Singapore", "5131", "documented",
                         f"{1.35 + rng.uniform(-0.02, 0.02):.5f}", f"{103.82 + rng.uniform(-0.04, 0.04):.5f}"])
    return out.getvalue().encode()


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, boundary


class Stream:
    """The jobs submitted through the API, one kind after another, and what each one is about."""

    def __init__(self, api: Api, rng: random.Random):
        self.api, self.rng = api, rng
        self.jobs: dict[str, dict] = {}     # job id -> {kind, ...}
        self.crises: list[dict] = []        # {id, site, small, radius}
        self.rosters: list[dict] = []       # {id, job_id, crisis}
        self.turn = 0
        self.imports = self.campaigns = 0
        self.refused = collections.Counter()  # (kind, status) of submissions not accepted

    def submit(self, kind: str | None = None, among: list[str] | None = None) -> str | None:
        """Submit a job of ``kind``, or of the next kind in turn (``among`` these) that can be submitted now;
        its id, or None (refused now, or nothing to do yet)."""
        turns = [KINDS[(self.turn + k) % len(KINDS)] for k in range(len(KINDS))]
        kinds = [kind] if kind else [k for k in turns if among is None or k in among]
        for candidate in kinds:
            made = getattr(self, "_" + candidate)()
            if made is not None:
                if not kind:
                    self.turn = KINDS.index(candidate) + 1
                return made
        if not kind:
            self.turn += 1
        return None

    def _accepted(self, kind: str, status, answer: dict, job_id_key="job_id", **about) -> str | None:
        if status not in (200, 202) or not answer.get(job_id_key):
            self.refused[(kind, status)] += 1  # 200 without a job: a small export answered at once
            return None
        job_id = answer[job_id_key]
        self.jobs[job_id] = {"kind": kind, **about}
        return job_id

    def _import(self) -> str | None:
        n = self.imports + 1
        form, boundary = multipart(f"faults-{n}.csv", import_file(n))
        status, _, data = self.api.call("POST", "/api/v1/imports", "desk", form=form, boundary=boundary)
        answer = json.loads(data) if status in (200, 202) else {}
        made = self._accepted("import", status, answer, number=n)
        if made:
            self.imports = n
        return made

    def _exposure(self) -> str | None:
        if len(self.crises) < 7 and (not self.crises or self.rng.random() < 0.5):
            small = len(self.crises) % 2 == 0
            site = (SMALL_SITES if small else LARGE_SITES)[len(self.crises) // 2 % (4 if small else 3)]
            radius = self.rng.choice((8, 12, 16)) if small else self.rng.choice((10, 15, 20))
            status, answer = self.api.json("POST", "/api/v1/crises", body={
                "name": f"Faults {site[0]} {len(self.crises) + 1}", "kind": "flood", "severity": "high",
                "area": {"type": "circle", "center": {"lat": site[1], "lon": site[2]}, "radius_km": radius}})
            if status != 202:
                self.refused[("exposure", status)] += 1
                return None
            crisis = {"id": answer["id"], "site": site, "small": small}
            self.crises.append(crisis)
            return self._accepted("exposure", status, answer.get("latest_run") or {}, crisis=crisis["id"])
        crisis = self.rng.choice(self.crises)
        site = crisis["site"]
        radius = self.rng.choice((8, 10, 12, 14, 16, 18, 20))
        status, answer = self.api.json("PATCH", f"/api/v1/crises/{crisis['id']}", body={
            "area": {"type": "circle", "center": {"lat": site[1], "lon": site[2]}, "radius_km": radius}})
        return self._accepted("exposure", status, answer.get("latest_run") or {}, crisis=crisis["id"])

    def _ready_crises(self) -> list[dict]:
        ready = []
        for crisis in self.crises:
            status, answer = self.api.json("GET", f"/api/v1/crises/{crisis['id']}")
            run = (answer or {}).get("latest_run") or {}
            if status == 200 and run.get("status") == "succeeded":
                ready.append(crisis)
        return ready

    def _roster(self) -> str | None:
        ready = self._ready_crises()
        if not ready:
            return None
        crisis = self.rng.choice([c for c in ready if not c["small"]] or ready)  # large: longer to build
        status, answer = self.api.json("POST", f"/api/v1/crises/{crisis['id']}/rosters",
                                       body={"vehicle_capacity": 40, "max_distance_km": 100})
        made = self._accepted("roster", status, answer, roster=answer.get("id"), crisis=crisis["id"])
        if made:
            self.rosters.append({"id": answer["id"], "job_id": made, "small": crisis["small"]})
        return made

    def _roster_export(self) -> str | None:
        built = [r for r in self.rosters if self.jobs[r["job_id"]].get("done") == "succeeded"]
        if not built:
            return None
        roster = self.rng.choice([r for r in built if not r["small"]] or built)
        fmt = self.rng.choice(("csv", "xlsx"))
        status, answer = self.api.json("GET", f"/api/v1/rosters/{roster['id']}/export?format={fmt}"
                                              f"&purpose=fault+campaign")
        return self._accepted("roster_export", status, answer, roster=roster["id"], format=fmt)

    def _campaign(self) -> str | None:
        ready = [c for c in self._ready_crises() if c["small"]]
        if not ready:
            return None
        crisis = self.rng.choice(ready)
        n = self.campaigns + 1
        status, answer = self.api.json("POST", f"/api/v1/crises/{crisis['id']}/messages?purpose=fault+campaign",
                                       body={"channels": ["sms"], "template": TEMPLATE.format(n=n),
                                             "audience": {}, "dry_run": False})
        made = self._accepted("campaign", status, answer, campaign=answer.get("id"), number=n, crisis=crisis["id"])
        if made:
            self.campaigns = n
        return made


# ------------------------------------------------------------------------------------------- the campaign
class Faults:
    def __init__(self, args, folder: Path):
        self.args, self.folder = args, folder
        self.cluster = Cluster(folder, args.pg_port)
        self.redis = RedisServer(folder, args.redis_port)
        self.kills = collections.Counter()          # kind -> kills injected
        self.killed_jobs: set[str] = set()
        # Seconds each kind's jobs took, as they finish: a kill lands within the first half of a typical job.
        self.durations: dict[str, collections.deque] = {kind: collections.deque(maxlen=20) for kind in KINDS}
        self.redis_kills: list[dict] = []
        self.pg_restarts: list[dict] = []
        self.workers: list[Process] = []
        self.others: list[Process] = []
        self.stack = None
        self.rng = random.Random(5)

    # --- the stack
    def start(self) -> None:
        from registry.gateways.local import GatewayStack
        self.cluster.start()
        self.redis.start()
        prepare_database(self.cluster, self.args.nationals, self.folder)
        self.stack = GatewayStack(self.args.port_base, hook_base=f"http://127.0.0.1:{self.args.port}",
                                  workdir=str(self.folder / "gateways"), smtp=False).start()
        base = f"http://127.0.0.1:{self.args.port}"
        self.env = {**os.environ, **self.stack.environment(), **SERVICE_ENV, "DATABASE_URL": self.cluster.url,
                    "REDIS_URL": self.redis.url, "REGISTRY_DATA_DIR": str(self.folder / "keys"),
                    "REGISTRY_PUBLIC_URL": base, "REGISTRY_SMS_CALLBACK_URL": base,
                    "REGISTRY_BIND": f"127.0.0.1:{self.args.port}", "REGISTRY_HOTLINE": "(02) 8834-4000"}
        self.env.pop("REGISTRY_SMTP_URL", None)
        python = sys.executable
        self.others.append(Process("gunicorn", [python, "-m", "gunicorn", "-c", str(ROOT / "registry/gunicorn_conf.py"),
                                                "registry.wsgi:app"], self.env, self.folder))
        self.others.append(Process("beat", [python, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "WARNING",
                                            "--schedule", str(self.folder / "beat-schedule")], self.env, self.folder))
        for k in (1, 2):
            self.workers.append(Process(f"worker{k}", [
                python, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork", "--concurrency", "1", "-n",
                f"faults{k}@%h", "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle",
                "--without-gossip"], self.env, self.folder))
        deadline = now() + 90
        while self.probe()[0] != 200:
            if now() > deadline:
                raise SystemExit(f"gunicorn did not answer (see {self.folder / 'gunicorn.log'})")
            time.sleep(0.3)

    def stop(self) -> None:
        for process in self.workers + self.others:
            process.stop()
        if self.stack is not None:
            self.stack.stop()
        self.redis.stop()
        self.cluster.stop()

    def probe(self) -> tuple[int | None, str | None]:
        """GET /healthz, or with a token the API's probe: (status, Retry-After)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=PROBE_TIMEOUT_S)
        try:
            headers = {"Authorization": f"Bearer {self.api.tokens['desk']}"} if hasattr(self, "api") else {}
            conn.request("GET", "/api/v1/nationals?limit=1" if headers else "/healthz", headers=headers)
            answer = conn.getresponse()
            answer.read()
            return answer.status, answer.getheader("Retry-After")
        except OSError:
            return None, None
        finally:
            conn.close()

    def typical(self, kind: str) -> float:
        """The median seconds of this kind's last finished jobs (0.4 before any finished)."""
        done = sorted(self.durations[kind])
        return done[len(done) // 2] if done else 0.4

    # --- faults
    def running(self, watcher: Watcher) -> list[tuple[str, str, int]]:
        """(job id prefix, kind, pid) of every job a process holds now."""
        rows = watcher.rows("SELECT l.classid::bigint, l.objid::bigint, a.application_name FROM pg_locks l "
                            "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.objsubid = 1 "
                            "AND a.application_name LIKE 'sagip job %'") or []
        found = []
        for classid, objid, name in rows:
            _, _, kind, _, pid = name.split(" ")
            found.append((f"{classid:08x}{objid:08x}", kind, int(pid)))
        return found

    def kill_worker_of(self, pid: int) -> bool:
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return False
        for worker in self.workers:
            if worker.proc.pid == group and worker.proc.poll() is None:
                worker.kill()
                worker.start()
                return True
        return False

    def kill_redis(self, stream: Stream) -> None:
        for k in range(4):  # a burst: more than two workers take at once, so some wait in Redis's queue
            stream.submit("import" if k % 2 else "exposure")
        deadline = now() + 10
        while self.redis.queued() == 0 and now() < deadline:
            stream.submit("import")
            time.sleep(0.2)
        queued = self.redis.queued()
        started = now()
        self.redis.kill()
        during = collections.Counter()
        for kind in ("import", "exposure"):
            before = len(stream.jobs)
            stream.submit(kind)
            during["202" if len(stream.jobs) > before else "refused"] += 1
        time.sleep(max(0.0, 2.0 - (now() - started)))
        self.redis.start()
        self.redis_kills.append({"queued": queued, "down_s": now() - started, "submitted_while_down": dict(during)})
        print(f"  redis kill -9 with {queued} tasks queued; down {now() - started:.1f} s; submissions while down: "
              f"{dict(during)}", flush=True)

    def restart_postgres(self) -> None:
        answers, retry_after, first_ok = collections.Counter(), collections.Counter(), []
        stop = threading.Event()
        started = now()

        def probe():
            while not stop.is_set():
                status, retry = self.probe()
                at = now() - started
                answers[status] += 1
                if retry:
                    retry_after[retry] += 1
                if status is not None and 200 <= status < 300 and restarted[0] is not None:
                    first_ok.append(at)
                    return
                time.sleep(0.1)

        restarted = [None]
        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        self.cluster.restart_immediate()
        restarted[0] = now() - started
        thread.join(timeout=120)
        stop.set()
        record = {"answers": {str(k): v for k, v in answers.items()}, "retry_after": dict(retry_after),
                  "back_s": restarted[0], "first_2xx_s": first_ok[0] if first_ok else None}
        self.pg_restarts.append(record)
        print(f"  pg_ctl restart -m immediate: accepting again after {restarted[0]:.1f} s; API answers "
              f"{record['answers']}, Retry-After {record['retry_after']}, first 2xx at "
              f"{record['first_2xx_s'] if record['first_2xx_s'] is not None else 'never'} s", flush=True)

    # --- the run
    def run(self) -> int:
        args = self.args
        self.start()
        self.api = Api(args.port, tokens(self.cluster, self.folder))
        stream = Stream(self.api, random.Random(3))
        watcher = Watcher(self.cluster.url)
        per_kind = {kind: args.kills // len(KINDS) + (1 if i < args.kills % len(KINDS) else 0)
                    for i, kind in enumerate(KINDS)}
        plan = [("redis", (i + 1) * max(args.kills, 1) / (args.redis_kills + 1)) for i in range(args.redis_kills)]
        plan += [("pg", (i + 0.5) * max(args.kills, 1) / (args.pg_restarts + 0.5)) for i in range(args.pg_restarts)]
        plan.sort(key=lambda e: e[1])
        print(f"faults: {args.kills} worker kills ({per_kind}), {args.redis_kills} Redis kills, "
              f"{args.pg_restarts} PostgreSQL restarts; service settings {SERVICE_ENV}", flush=True)
        started = now()
        seen: dict[str, float] = {}
        last_fault = now()
        last_kill = 0.0

        def kill_one(holders) -> bool:
            """SIGKILL the worker of one running job of a kind that still needs kills, some way into it."""
            nonlocal last_kill, last_fault
            for prefix, kind, pid in holders:
                job_id = next((j for j in stream.jobs if j.replace("-", "").startswith(prefix)), None)
                if job_id is None or job_id in self.killed_jobs or self.kills[kind] >= per_kind.get(kind, 0):
                    continue
                # Some way into the task: up to 0.2 s, or half of what this kind's jobs take when that is less.
                first = seen.setdefault(job_id, now() + self.rng.uniform(0, min(0.2, self.typical(kind) / 2)))
                if now() < first or now() - last_kill < 1.0:  # one kill at a time
                    continue
                if self.kill_worker_of(pid):
                    self.kills[kind] += 1
                    self.killed_jobs.add(job_id)
                    last_kill = last_fault = now()
                    print(f"  SIGKILL {sum(self.kills.values())}: {kind} job {job_id[:8]} (pid {pid}) at "
                          f"{now() - started:.0f} s", flush=True)
                    return True
            return False

        while now() - started < args.max_minutes * 60:
            self.refresh(stream, watcher)
            unfinished = [j for j, about in stream.jobs.items() if "done" not in about]
            kills_done = sum(self.kills.values())
            if kills_done >= args.kills and not plan:
                break
            if plan and (kills_done >= plan[0][1] or now() - last_fault > 120):
                what = plan.pop(0)[0]
                if what == "redis":
                    self.kill_redis(stream)
                else:
                    while not self.running(watcher) and now() - last_fault < 180:
                        if len(unfinished) < IN_FLIGHT:
                            stream.submit()
                        time.sleep(0.1)
                    self.restart_postgres()
                last_fault = now()
                continue
            made = None
            if len(unfinished) < IN_FLIGHT:
                # In turn, the kinds that still need kills (a rotation of all gave imports and reruns most slots:
                # rosters, exports and campaigns wait for a run, then a roster, to succeed).
                made = stream.submit(among=[k for k in KINDS if self.kills[k] < per_kind[k]] or None)
            # A job of a quick kind is watched closely from its submission (every 5 ms until it has run, 2 s at
            # most): a roster of the large sites takes 0.1 s since 4 December, and polling every 0.05 s between
            # submissions found one running once in hundreds.
            watch = made if made and self.typical(stream.jobs[made]["kind"]) < 0.5 else None
            watch_until, watched_running = now() + 2.0, False
            while True:
                holders = self.running(watcher)
                if kill_one(holders):
                    break
                if watch is None or now() > watch_until:
                    break
                here = any(watch.replace("-", "").startswith(prefix) for prefix, _, _ in holders)
                if watched_running and not here:
                    break  # it ran and ended between two looks
                watched_running = watched_running or here
                time.sleep(0.005)
            time.sleep(0.05)
        stream_s = now() - started
        print(f"stream: {len(stream.jobs)} jobs submitted in {stream_s:.0f} s; waiting for them to end", flush=True)
        deadline = now() + args.settle_minutes * 60
        while now() < deadline:
            self.refresh(stream, watcher)
            if all("done" in about for about in stream.jobs.values()):
                break
            time.sleep(1)
        time.sleep(3)  # the last delivery reports
        return self.report(stream, watcher, stream_s)

    def refresh(self, stream: Stream, watcher: Watcher) -> None:
        open_ids = [j for j, about in stream.jobs.items() if "done" not in about]
        if not open_ids:
            return
        rows = watcher.rows("SELECT id::text, status, extract(epoch FROM finished_at - started_at)::float8 FROM jobs "
                            "WHERE id = ANY(%s::uuid[]) AND status IN ('succeeded', 'failed')", (open_ids,)) or []
        for job_id, status, seconds in rows:
            stream.jobs[job_id]["done"] = status
            if seconds is not None and job_id not in self.killed_jobs:
                self.durations[stream.jobs[job_id]["kind"]].append(seconds)

    # --- checking the data
    def report(self, stream: Stream, watcher: Watcher, stream_s: float) -> int:
        table = {kind: collections.Counter() for kind in KINDS}
        notes = []
        for job_id, about in stream.jobs.items():
            table[about["kind"]]["submitted"] += 1
            if about.get("done") == "succeeded":
                table[about["kind"]]["finished"] += 1
        with psycopg.connect(self.cluster.url, autocommit=True) as conn:
            for job_id, about in stream.jobs.items():
                kind = about["kind"]
                job = conn.execute("SELECT status, attempts, result, error FROM jobs WHERE id = %s",
                                   (job_id,)).fetchone()
                lost, doubled, note = getattr(self, "check_" + kind)(conn, job_id, about, job)
                if job[0] != "succeeded":
                    lost = max(lost, 1)
                    note = note or f"job {job[0]}: {job[3]}"
                table[kind]["lost"] += lost
                table[kind]["doubled"] += doubled
                table[kind]["attempts>1"] += job[1] > 1
                if note:
                    notes.append(f"{kind} {job_id[:8]}: {note}")
        print(f"\n{self.args.nationals:,} nationals; {len(stream.jobs)} jobs in {stream_s:.0f} s of stream; "
              f"refused submissions {dict(stream.refused) or 'none'}")
        print(f"{'kind':<15} {'submitted':>9} {'finished':>9} {'lost':>5} {'doubled':>8} {'kills':>6} "
              f"{'rerun':>6}")
        for kind in KINDS:
            row = table[kind]
            print(f"{kind:<15} {row['submitted']:>9} {row['finished']:>9} {row['lost']:>5} {row['doubled']:>8} "
                  f"{self.kills[kind]:>6} {row['attempts>1']:>6}")
        total = {k: sum(table[kind][k] for kind in KINDS) for k in ("submitted", "finished", "lost", "doubled")}
        print(f"{'all':<15} {total['submitted']:>9} {total['finished']:>9} {total['lost']:>5} {total['doubled']:>8} "
              f"{sum(self.kills.values()):>6}")
        print("(rerun: jobs started more than once, after a kill; doubled counts data: people, rows, entries, "
              "file rows, messages received twice)")
        for i, kill in enumerate(self.redis_kills, 1):
            print(f"redis kill {i}: {kill['queued']} tasks in its queue, down {kill['down_s']:.1f} s, "
                  f"submissions while down {kill['submitted_while_down']}")
        answers, retry = collections.Counter(), collections.Counter()
        for i, restart in enumerate(self.pg_restarts, 1):
            answers.update(restart["answers"])
            retry.update(restart["retry_after"])
            first, back = restart["first_2xx_s"], restart["back_s"]
            recovered = "never" if first is None else f"{first:.1f} s ({first - back:.2f} s after it was back)"
            print(f"pg restart {i}: accepting again after {back:.1f} s, first 2xx at {recovered}; answers "
                  f"{restart['answers']}, Retry-After {restart['retry_after']}")
        if self.pg_restarts:
            print(f"outage answers in all: {dict(answers)}; Retry-After seen: {dict(retry)}")
        for note in notes[:30]:
            print("  " + note)
        bad = total["lost"] + total["doubled"]
        print("nothing lost, nothing doubled" if not bad else f"LOST {total['lost']}, DOUBLED {total['doubled']}")
        return 1 if bad else 0

    def check_import(self, conn, job_id, about, job) -> tuple[int, int, str]:
        prefix = IMPORT_PHONE.format(about["number"], 0)[:-4]
        people = conn.execute("SELECT count(*), count(DISTINCT phones[1]) FROM nationals WHERE phones[1] LIKE %s",
                              (prefix + "%",)).fetchone()
        result = job[2] or {}
        doubled = max(0, people[0] - IMPORT_ROWS) + (people[0] - people[1]) + (result.get("duplicates") or 0)
        lost = max(0, IMPORT_ROWS - people[1])
        note = f"{people[0]} people stored of {IMPORT_ROWS}, result {result.get('created')}" if lost or doubled else ""
        return lost, doubled, note

    def check_exposure(self, conn, job_id, about, job) -> tuple[int, int, str]:
        from registry.crises.exposure import degrees
        run = conn.execute("SELECT r.id, ST_AsBinary(v.geom), v.zones_km FROM exposure_runs r JOIN crisis_versions v "
                           "ON v.crisis_id = r.crisis_id AND v.version = r.version WHERE r.job_id = %s",
                           (job_id,)).fetchone()
        if run is None:
            return 1, 0, "no run"
        run_id, wkb, zones = run
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT national_id) FROM exposures WHERE run_id = %s",
                                      (run_id,)).fetchone()
        reach = (max(zones) if zones else 0) * 1000.0
        params = {"wkb": bytes(wkb), "reach": reach, "reach_deg": degrees(reach), "precision_deg": degrees(30_000),
                  "zones": list(zones), "max_zone": max(zones) if zones else 0}
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE bench_floor (LIKE exposures INCLUDING DEFAULTS) ON COMMIT DROP")
            for statement in FLOOR_SETUP:
                conn.execute(statement, params)
            conn.execute(FLOOR_SQL, params)
            extra, missing = conn.execute(
                "SELECT count(*) FILTER (WHERE f.national_id IS NULL), count(*) FILTER (WHERE e.national_id IS NULL) "
                "FROM (SELECT national_id FROM exposures WHERE run_id = %s) e "
                "FULL JOIN bench_floor f USING (national_id)", (run_id,)).fetchone()
            # A declared circle is measured from its centre (registry/crises/exposure.py), the recount against
            # its inscribed 256-gon: a national within metres inside the circle's edge is the run's alone.
            edge = conn.execute(
                "SELECT count(*) FROM exposures e JOIN exposure_runs r ON r.id = e.run_id JOIN crisis_versions v "
                "ON v.crisis_id = r.crisis_id AND v.version = r.version LEFT JOIN bench_floor f USING (national_id) "
                "WHERE e.run_id = %s AND f.national_id IS NULL AND v.source->>'type' = 'circle' AND abs(ST_Distance("
                "e.location::geography, ST_SetSRID(ST_MakePoint((v.source->'center'->>'lon')::float8, "
                "(v.source->'center'->>'lat')::float8), 4326)::geography) - (v.source->>'radius_km')::float8 * 1000) "
                "< 0.001 * (v.source->>'radius_km')::float8 * 1000", (run_id,)).fetchone()[0]
        total = ((job[2] or {}).get("counts") or {}).get("total")
        doubled = (rows - distinct) + (extra - edge) + (max(0, rows - total) if total is not None else 0)
        note = (f"{rows} rows, recount differs: {extra} extra ({edge} on the circle's edge, outside its inscribed "
                f"polygon), {missing} missing") if extra or missing else ""
        return missing, doubled, note

    def check_roster(self, conn, job_id, about, job) -> tuple[int, int, str]:
        entries, distinct, expected = conn.execute(
            "SELECT (SELECT count(*) FROM roster_entries WHERE roster_id = r.id), "
            "(SELECT count(DISTINCT national_id) FROM roster_entries WHERE roster_id = r.id), "
            "(SELECT count(*) FROM exposures WHERE run_id = r.run_id) FROM rosters r WHERE r.id = %s",
            (about["roster"],)).fetchone()
        doubled = (entries - distinct) + max(0, entries - expected)
        lost = max(0, expected - distinct)
        return lost, doubled, f"{entries} entries for {expected} exposed" if lost or doubled else ""

    def check_roster_export(self, conn, job_id, about, job) -> tuple[int, int, str]:
        expected = conn.execute("SELECT count(*) FROM roster_entries WHERE roster_id = %s",
                                (about["roster"],)).fetchone()[0]
        if job[0] != "succeeded":
            return 1, 0, ""
        status, _, data = self.api.call("GET", f"/api/v1/jobs/{job_id}/download", timeout=300)
        if status != 200:
            return 1, 0, f"download answered {status}"
        ids = export_ids(data, about["format"])
        doubled = len(ids) - len(set(ids)) + max(0, len(ids) - expected)
        lost = max(0, expected - len(set(ids)))
        return lost, doubled, f"{len(ids)} rows in the file for {expected} entries" if lost or doubled else ""

    def check_campaign(self, conn, job_id, about, job) -> tuple[int, int, str]:
        if not hasattr(self, "_received"):
            self._received = collections.defaultdict(collections.Counter)
            for sms in self.stack.received_sms(timeout=3):
                found = TAG.match(sms.text)
                if found:
                    self._received[int(found.group(1))][sms.receiver] += 1
        received = self._received[about["number"]]
        expected = {row[0] for row in conn.execute(
            "SELECT n.phones[r.phone_index + 1] FROM campaign_recipients r JOIN nationals n ON n.id = r.national_id "
            "WHERE r.campaign_id = %s", (about["campaign"],))}
        flagged = conn.execute("SELECT count(*) FILTER (WHERE possible_duplicate) FROM campaign_recipients "
                               "WHERE campaign_id = %s", (about["campaign"],)).fetchone()[0]
        twice = sum(1 for count in received.values() if count > 1)
        never = len(expected - set(received))
        note = (f"{len(expected)} recipients: {never} never received, {twice} received twice "
                f"({flagged} flagged possible duplicates)") if never or twice else ""
        return never, twice, note


def export_ids(data: bytes, fmt: str) -> list[str]:
    """The national ids of an export's rows (a CSV; an XLSX has a sheet per assembly point, each with its
    header)."""
    if fmt == "csv":
        sheets = [list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))]
    else:
        from openpyxl import load_workbook
        book = load_workbook(io.BytesIO(data), read_only=True)
        sheets = [[["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
                  for sheet in book.worksheets]
    ids = []
    for rows in sheets:
        if not rows or "national_id" not in rows[0]:
            continue
        column = rows[0].index("national_id")
        ids += [row[column] for row in rows[1:] if len(row) > column and row[column]]
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--redis-kills", type=int, default=5)
    parser.add_argument("--pg-restarts", type=int, default=3)
    parser.add_argument("--nationals", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true",
                        help="20,000 nationals, 5 kills, 1 Redis kill, 1 restart, at most 8 minutes of stream")
    parser.add_argument("--folder", default="/work/scratch-faults")
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=16379)
    parser.add_argument("--port", type=int, default=16390, help="gunicorn")
    parser.add_argument("--port-base", type=int, default=16340, help="the gateway stack (6 ports from here)")
    parser.add_argument("--max-minutes", type=float, default=40, help="longest stream of jobs and faults")
    parser.add_argument("--settle-minutes", type=float, default=15, help="longest wait for the jobs to end")
    args = parser.parse_args()
    if args.quick:
        args.nationals, args.kills, args.redis_kills, args.pg_restarts = 20_000, 5, 1, 1
        args.max_minutes = min(args.max_minutes, 8)
    if shutil.which("redis-server") is None or not (PG_BIN / "initdb").exists():
        raise SystemExit("needs redis-server and PostgreSQL 15's initdb")
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    # The service's keys for every process of the run, this one included (read from the environment).
    os.environ.update(REGISTRY_DATA_DIR=str(folder / "keys"),
                      DATABASE_URL=f"postgresql://postgres@127.0.0.1:{args.pg_port}/{DATABASE}",
                      REDIS_URL=f"redis://127.0.0.1:{args.redis_port}/0")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs); "
          f"logs in {folder}", flush=True)
    faults = Faults(args, folder)
    try:
        return faults.run()
    finally:
        faults.stop()


if __name__ == "__main__":
    sys.exit(main())
