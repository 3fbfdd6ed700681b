#!/usr/bin/env python
"""Load-test the nationals API under gunicorn against a scratch database.

    python bench/api.py [--nationals 1000000] [--seconds 15] [--clients 8] [--processes 2] [--port 8765]
                        [--database-url …] [--web 4x4,2x8] [--scenarios read,search,create,sql,search-sql]
                        [--max-requests 200000] [--warmup 2] [--wsgi-app registry.wsgi:app] [--profile N]

Steps: the registry of ``--nationals`` nationals from bench/seed.py (its shared database: sagip_bench_1m up to
1M, sagip_bench_10m above; seeded by COPY when missing); a sample of their ids; a desk user and token;
gunicorn (``registry/gunicorn_conf.py``) on 127.0.0.1:PORT; the scenarios one after another, each for
``--seconds``:

  read        GET /api/v1/nationals/{id}, random seeded ids
  search      POST /api/v1/nationals/search, a "given family" name from the seed's lists, 20 best
  create      POST /api/v1/nationals, unique passports, host AE, a GPS point in Dubai
  sql         the floor of read: the same single-national read as one bare SQL statement
              (psycopg, autocommit, prepared) from the same client processes
  search-sql  the floor of search: the same trigram search (``%>``, best 20 by word_similarity, the names
              0.9 similar first as the service reads them) in bare SQL

``--clients`` closed-loop clients (one keep-alive connection each) run as threads spread
over ``--processes`` load-generator processes. Each scenario is bounded by time and by
``--max-requests``. At the end gunicorn is stopped (also on error or Ctrl-C) and the
rows the run created (creates, the bench user) are deleted; the seeded nationals stay.

``--web WxT[,WxT...]`` repeats the HTTP scenarios per gunicorn setting
(REGISTRY_WEB_WORKERS x REGISTRY_WEB_THREADS); without it, gunicorn_conf.py's defaults.
``--profile N`` instead profiles N reads in-process (Flask test client + cProfile).

Besides req/s and latency percentiles the table shows the CPU milliseconds per request
of gunicorn (from /proc) and of the load clients, and below it how busy the machine was:
on a shared machine "the rest" tells how much CPU other processes took.

Only 127.0.0.1 is ever sent HTTP requests. The client shares the machine with the
server and PostgreSQL, so on a small machine it takes CPU from them: figures are a
lower bound for a separate load generator.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_READS_PER_S = 400
TARGET_P99_MS = 50.0
SEED_EMAIL_DOMAIN = "@seed.bench.invalid"  # bench/seed.py's nationals are found by this
SAMPLE_IDS = 100_000  # the reads' targets, sampled from the seeded nationals
DUBAI = (25.2048, 55.2708)  # lat, lon
AE_CITIES = [("Dubai", 25.2048, 55.2708), ("Abu Dhabi", 24.4539, 54.3773), ("Sharjah", 25.3463, 55.4209),
             ("Ajman", 25.4052, 55.5136), ("Al Ain", 24.2075, 55.7447)]
FAMILY = ["Dela Cruz", "Santos", "Reyes", "García", "Mendoza", "Bautista", "Ocampo", "Aquino", "Ramos",
          "Villanueva", "Castillo", "Navarro", "Domingo", "Manalo", "Pascual", "Macaraeg", "Dimaculangan"]
GIVEN = ["Maria Luisa", "José", "Juan Carlos", "Ana", "Rosario", "Mark Anthony", "Jennifer", "Ramón", "Liza",
         "Angelica", "Noel", "Cristina", "Jun-jun", "Ma. Teresa"]
ISCO = ["9111", "5322", "7115", "8322", "5120", "3221"]
EMPLOYERS = ["Al Futtaim Services", "Emirates Hospitality LLC", "Gulf Care Homes", None]

# A name search as typed at a desk ("given family"), and the floor: the same trigram search in bare SQL (the
# read's columns, the best SEARCH_LIMIT by word similarity, and the number of matches), as the service does it
# since migration 0030: the names at least 0.9 similar first, all matches (0.6) only when those do not fill the
# page and one more.
SEARCH_LIMIT = 20
SEARCH_SQL = """
SELECT n.id, n.family_name, n.given_names, n.native_name, n.sex, n.date_of_birth, n.nationality,
       n.passport_ciphertext, n.phones, n.status, n.jurisdiction_country, n.created_at, count(*) OVER ()
FROM nationals n
WHERE n.search_name %%> %(key)s AND n.erased_at IS NULL
ORDER BY word_similarity(%(key)s, n.search_name) DESC, n.id
LIMIT 21
"""
SEARCH_SCORES = ("0.9", "0.6")


def _search_words(rng: random.Random) -> str:
    from bench.seed import FAMILY as SEED_FAMILY, GIVEN as SEED_GIVEN
    return f"{rng.choice(SEED_GIVEN)} {rng.choice(SEED_FAMILY)}"


READ_SQL = """
SELECT n.id, n.family_name, n.given_names, n.native_name, n.sex, n.date_of_birth, n.nationality,
       n.passport_ciphertext, n.national_id_ciphertext, n.phones, n.email, n.languages, n.vulnerabilities,
       n.household_id, n.status, n.source, n.consent, n.created_at, n.updated_at,
       n.location_source, n.location_precision_m, n.location_reported_at,
       ST_X(n.location) AS lon, ST_Y(n.location) AS lat,
       d.host_country, d.city, d.address, d.employer, d.occupation_isco, d.sector, d.contract_start,
       d.contract_end, d.legal_status, d.recruitment_agency,
       k.name, k.relation, k.phone
FROM nationals n
JOIN deployments d ON d.national_id = n.id AND d.is_current
LEFT JOIN next_of_kin k ON k.national_id = n.id
WHERE n.id = %s AND n.erased_at IS NULL
"""


# --------------------------------------------------------------------------- database


def plain_url(url: str) -> str:
    """A libpq URL (drops a SQLAlchemy ``+driver``)."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise SystemExit("--database-url must name a database")
    admin = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def make_app(url: str):
    from registry import config, create_app
    return create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(url)})


def migrate(app) -> None:
    import flask_migrate
    with app.app_context():
        flask_migrate.upgrade()


def seeded_ids(url: str, count: int) -> list[str]:
    """Up to ``count`` ids of seeded nationals, a random sample from all over the table."""
    import psycopg
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'nationals'").fetchone()[0]
        share = min(100.0, max(0.01, 100.0 * 2 * count / max(total, 1)))
        rows = conn.execute(f"SELECT id FROM nationals TABLESAMPLE SYSTEM ({share:.4f}) WHERE erased_at IS NULL "
                            "AND email LIKE %s LIMIT %s", ("%" + SEED_EMAIL_DOMAIN, count)).fetchall()
    return [str(r[0]) for r in rows]


def create_token(app, run_tag: str) -> tuple[str, str]:
    """A desk user and its token for this run; returns (user id, token)."""
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db
    with app.app_context():
        user = create_user(f"bench-desk-{run_tag}", "desk")
        token = issue_token(user, ttl_days=1)
        db.session.commit()
        user_id = str(user.id)
        db.engine.dispose()
    return user_id, token


def cleanup(url: str, user_id: str | None) -> None:
    """Delete what the run created: nationals registered by the bench user, then the user."""
    if user_id is None:
        return
    import psycopg
    with psycopg.connect(url) as conn:
        deleted = conn.execute("DELETE FROM nationals WHERE created_by = %s", (user_id,)).rowcount
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))  # its tokens go with it (cascade)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE nationals")
    print(f"cleanup: deleted {deleted} nationals created by the run and the bench user")


# --------------------------------------------------------------------------- gunicorn


class Server:
    """gunicorn as a subprocess in its own session, stopped by its pid/process group."""

    def __init__(self, url: str, port: int, workers: int | None, threads: int | None,
                 wsgi_app: str = "registry.wsgi:app"):
        self.url, self.port, self.workers, self.threads = url, port, workers, threads
        self.wsgi_app = wsgi_app
        self.proc: subprocess.Popen | None = None
        fd, self.log_path = tempfile.mkstemp(prefix="sagip-bench-gunicorn-", suffix=".log")
        os.close(fd)

    @property
    def label(self) -> str:
        if self.workers is None and self.threads is None:
            return "conf defaults"
        return f"{self.workers or 'def'}w x {self.threads or 'def'}t"

    def start(self) -> None:
        if _port_open(self.port):
            raise SystemExit(f"something already listens on 127.0.0.1:{self.port}; choose another --port")
        env = dict(os.environ, DATABASE_URL=self.url, REGISTRY_BIND=f"127.0.0.1:{self.port}")
        if self.workers is not None:
            env["REGISTRY_WEB_WORKERS"] = str(self.workers)
        if self.threads is not None:
            env["REGISTRY_WEB_THREADS"] = str(self.threads)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "registry" / "gunicorn_conf.py"), self.wsgi_app],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within 45 s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown (workers get SIGQUIT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own session: the master and its workers
            proc.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """User + system CPU of gunicorn's master and its live workers (from /proc; Linux only)."""
        if self.proc is None:
            return float("nan")
        pids = [self.proc.pid]
        try:
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{task}/children") as handle:
                    pids += [int(p) for p in handle.read().split()]
        except OSError:
            return float("nan")
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
            except (OSError, IndexError, ValueError):
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(line for line in text[-lines:])

    def errors_in_log(self) -> list[str]:
        try:
            text = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in text if "[ERROR]" in line or "Traceback" in line or "[CRITICAL]" in line]

    def remove_log(self) -> None:
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------- load generator


class HttpClient:
    """One keep-alive connection to 127.0.0.1; reconnects (and retries once) if the server closed it."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = self.headers if body is None else {**self.headers, "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _create_body(rng: random.Random, passport: str) -> bytes:
    born = date(1970, 1, 1) + timedelta(days=rng.randrange(12000))
    start = date(2025, 1, 1) + timedelta(days=rng.randrange(300))
    return json.dumps({
        "family_name": rng.choice(FAMILY), "given_names": rng.choice(GIVEN), "sex": rng.choice("FM"),
        "date_of_birth": born.isoformat(), "nationality": "PH", "passport_number": passport,
        "phones": [f"+97155{rng.randrange(10 ** 7):07d}"], "languages": ["fil", "en"],
        "consent": {"given": True, "method": "departure desk form"},
        "next_of_kin": {"name": "Elena Santos", "relation": "mother", "phone": f"+63917{rng.randrange(10 ** 7):07d}"},
        "deployment": {"host_country": "AE", "city": "Dubai", "employer": "Emirates Hospitality LLC",
                       "occupation_isco": rng.choice(ISCO), "legal_status": "documented",
                       "contract_start": start.isoformat(), "contract_end": (start + timedelta(days=730)).isoformat()},
        "location": {"lat": round(DUBAI[0] + rng.uniform(-0.08, 0.08), 6),
                     "lon": round(DUBAI[1] + rng.uniform(-0.08, 0.08), 6), "precision_m": 20, "source": "gps"},
    }).encode()


class Tally:
    def __init__(self):
        self.latencies: list[float] = []  # seconds, 2xx only
        self.requests = 0
        self.errors: Counter = Counter()
        self.samples: dict[str, str] = {}
        self.failure: str | None = None

    def error(self, key: str, sample: str) -> None:
        self.errors[key] += 1
        self.samples.setdefault(key, sample[:300])


def _client_thread(spec: dict, thread_index: int, ready: threading.Barrier, go: threading.Event,
                   tally: Tally) -> None:
    scenario, ids = spec["scenario"], spec["ids"]
    rng = random.Random(f"{spec['run_tag']}-{spec['round']}-{spec['process_index']}-{thread_index}")
    # Unique per run, scenario round, process, thread and request: Q + 5 + 2 + 2 + 2 + 6 = 18 characters.
    passports = (f"Q{spec['run_tag']}{spec['round']:02d}{spec['process_index']:02d}{thread_index:02d}{n:06d}"
                 for n in range(10 ** 6))
    try:
        if scenario == "sql":
            import psycopg
            conn = psycopg.connect(spec["dsn"], autocommit=True)

            def one() -> tuple[int, bytes]:
                row = conn.execute(READ_SQL, (rng.choice(ids),), prepare=True).fetchone()
                return (200, b"") if row is not None else (404, b"no row")
        elif scenario == "search-sql":
            import psycopg

            from registry.validation import search_key
            conn = psycopg.connect(spec["dsn"], autocommit=True)
            # What a PostgreSQL hand would set for this query, as migration 0027 sets on the service's function
            # (an exact bitmap for a common name's matches at 10M; no JIT).
            conn.execute("SET work_mem = '64MB'")
            conn.execute("SET jit = off")

            def one() -> tuple[int, bytes]:
                key = search_key(_search_words(rng))
                for score in SEARCH_SCORES:
                    conn.execute(f"SET pg_trgm.word_similarity_threshold = {score}")
                    rows = conn.execute(SEARCH_SQL, {"key": key}, prepare=True).fetchall()
                    if len(rows) > SEARCH_LIMIT:
                        break
                return (200, b"") if rows else (404, b"no match")
        elif scenario == "search":
            client = HttpClient(spec["port"], spec["token"])

            def one() -> tuple[int, bytes]:
                return client.call("POST", "/api/v1/nationals/search",
                                   json.dumps({"q": _search_words(rng), "limit": SEARCH_LIMIT}).encode())
        else:
            client = HttpClient(spec["port"], spec["token"])
            if scenario in READ_PATHS:
                path = READ_PATHS[scenario]

                def one() -> tuple[int, bytes]:
                    return client.call("GET", path.format(rng.choice(ids)))
            else:
                def one() -> tuple[int, bytes]:
                    return client.call("POST", "/api/v1/nationals", _create_body(rng, next(passports)))
        warm_until = time.monotonic() + spec["warmup"]
        while True:  # warm-up: connections, worker caches, prepared statements (not counted)
            status, body = one()
            if not 200 <= status < 300:
                tally.error(f"warm-up {status}", body.decode(errors="replace"))
            if time.monotonic() >= warm_until:
                break
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        tally.failure = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        ready.abort()
        return
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        return
    go.wait()
    deadline = spec["go_at"][0] + spec["seconds"]
    limit = spec["max_per_thread"]
    timer = time.perf_counter
    while tally.requests < limit and time.monotonic() < deadline:
        tally.requests += 1
        started = timer()
        try:
            status, body = one()
        except Exception as exc:  # noqa: BLE001 - a connection or database failure is an error, not a crash
            tally.error(type(exc).__name__, str(exc))
            continue
        elapsed = timer() - started
        if 200 <= status < 300:
            tally.latencies.append(elapsed)
        else:
            tally.error(str(status), body.decode(errors="replace"))


def client_process(spec: dict, start_barrier, results) -> None:
    """One load-generator process: ``spec['threads']`` clients, started together with the other processes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    threads = spec["threads"]
    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    spec["go_at"] = [0.0]
    tallies = [Tally() for _ in range(threads)]
    workers = [threading.Thread(target=_client_thread, args=(spec, i, ready, go, tallies[i]), daemon=True)
               for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=spec["warmup"] + 120)
        start_barrier.wait(timeout=spec["warmup"] + 180)
    except (threading.BrokenBarrierError, Exception):  # noqa: BLE001
        try:
            start_barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        failures = [t.failure for t in tallies if t.failure] or ["start barrier broken (another client failed)"]
        results.put({"process": spec["process_index"], "failure": failures[0]})
        return
    spec["go_at"][0] = time.monotonic()
    cpu_started = time.process_time()
    go.set()
    for worker in workers:
        worker.join()
    ended = time.monotonic()
    cpu_used = time.process_time() - cpu_started
    errors, samples = Counter(), {}
    for tally in tallies:
        errors.update(tally.errors)
        for key, sample in tally.samples.items():
            samples.setdefault(key, sample)
    results.put({"process": spec["process_index"], "failure": None, "ended": ended, "cpu": cpu_used,
                 "requests": sum(t.requests for t in tallies),
                 "latencies": [x for t in tallies for x in t.latencies],
                 "errors": dict(errors), "samples": samples})


ACTIVE_PROCESSES: list = []
ROUNDS = iter(range(100))


def run_scenario(scenario: str, args, ids: list[str], token: str, run_tag: str, cpu=None) -> dict:
    """Run one scenario; ``cpu()`` (server CPU seconds) is sampled at the start and end of the measured window."""
    ctx = mp.get_context("spawn")  # clean children: no inherited engine, sockets or app
    results = ctx.Queue()
    processes = max(1, min(args.processes, args.clients))
    start_barrier = ctx.Barrier(processes + 1)
    per_process = [args.clients // processes + (1 if i < args.clients % processes else 0) for i in range(processes)]
    max_per_thread = max(1, -(-args.max_requests // args.clients))
    round_ = next(ROUNDS)
    children = []
    for index, threads in enumerate(per_process):
        spec = {"scenario": scenario, "process_index": index, "threads": threads, "ids": ids, "token": token,
                "port": args.port, "dsn": args.dsn, "seconds": args.seconds, "warmup": args.warmup,
                "max_per_thread": max_per_thread, "run_tag": run_tag, "round": round_}
        child = ctx.Process(target=client_process, args=(spec, start_barrier, results), daemon=True)
        child.start()
        children.append(child)
        ACTIVE_PROCESSES.append(child)
    try:
        try:
            start_barrier.wait(timeout=args.warmup + 240)
            started = time.monotonic()
            cpu_started = cpu() if cpu else float("nan")
            machine_started = _machine_cpu()
        except threading.BrokenBarrierError:
            started, cpu_started, machine_started = None, float("nan"), None
        collected = []
        while len(collected) < processes:
            try:
                collected.append(results.get(timeout=args.seconds + 120))
            except queue.Empty:
                raise RuntimeError(f"{scenario}: a client process did not report") from None
        cpu_used = (cpu() - cpu_started) if cpu else float("nan")
        machine = _machine_cpu()
        for child in children:
            child.join(timeout=10)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
            ACTIVE_PROCESSES.remove(child)
    failures = [c["failure"] for c in collected if c["failure"]]
    if failures or started is None:
        raise RuntimeError(f"{scenario}: a client failed before the start:\n{failures[0] if failures else ''}")
    latencies = sorted(x for c in collected for x in c["latencies"])
    errors, samples = Counter(), {}
    for c in collected:
        errors.update(c["errors"])
        for key, sample in c["samples"].items():
            samples.setdefault(key, sample)
    duration = max(c["ended"] for c in collected) - started
    requests = sum(c["requests"] for c in collected)
    client_cpu = sum(c["cpu"] for c in collected)
    busy = machine_started and machine[0] > machine_started[0] and \
        (machine[1] - machine_started[1]) / (machine[0] - machine_started[0]) * (os.cpu_count() or 1)
    return {"requests": requests, "ok": len(latencies),
            "per_s": len(latencies) / duration if duration > 0 else 0.0, "duration": duration,
            "p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95), "p99": _percentile(latencies, 99),
            "errors": errors, "samples": samples,
            "server_cpu_ms": cpu_used * 1000 / max(1, requests), "client_cpu_ms": client_cpu * 1000 / max(1, requests),
            "cores": {"busy": busy or float("nan"), "server": cpu_used / duration, "client": client_cpu / duration}}


def _machine_cpu() -> tuple[int, int] | None:
    """(all jiffies, busy jiffies) of the whole machine, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total, total - idle


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1] * 1000


# --------------------------------------------------------------------------- report

SCENARIO_TITLES = {"read": "read    GET /nationals/{id}", "create": "create  POST /nationals",
                   "read-unprotected": "read without decrypt + audit",
                   "search": "search  POST /nationals/search",
                   "sql": "sql     bare SQL read (floor)",
                   "search-sql": "search-sql  bare SQL (floor)"}
SQL_SCENARIOS = ("sql", "search-sql")
READ_PATHS = {"read": "/api/v1/nationals/{}",
              # served only by --wsgi-app bench.unprotected_read:app (bench/unprotected_read.py)
              "read-unprotected": "/bench/unprotected/nationals/{}"}


def _measured_errors(result: dict) -> int:
    """Errors during the measured window (warm-up errors are listed below the table, not counted)."""
    return sum(n for key, n in result["errors"].items() if not key.startswith("warm-up"))


def _cpu(value) -> str:
    return "-" if value is None or value != value else f"{value:.1f}"


def print_table(rows: list[tuple[str, str, dict]], args) -> None:
    print()
    print(f"{'scenario':<32} {'gunicorn':<14} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'errors':>7} {'srv cpu':>8} {'cli cpu':>8}  target")
    print("-" * 136)
    floor = next((r for s, _, r in rows if s == "sql"), None)
    search_floor = next((r for s, _, r in rows if s == "search-sql"), None)
    for scenario, label, r in rows:
        target = ""
        if scenario == "read":
            ok = r["per_s"] >= TARGET_READS_PER_S and r["p99"] <= TARGET_P99_MS and not _measured_errors(r)
            target = f">= {TARGET_READS_PER_S}/s, p99 <= {TARGET_P99_MS:.0f} ms: {'MET' if ok else 'MISSED'}"
        if scenario == "search" and search_floor and search_floor["per_s"]:
            target = f"{r['per_s'] / search_floor['per_s']:.2f} x the bare SQL search"
        print(f"{SCENARIO_TITLES[scenario]:<32} {label:<14} {r['requests']:>9} {r['per_s']:>8.1f} {r['p50']:>8.2f} "
              f"{r['p95']:>8.2f} {r['p99']:>8.2f} {_measured_errors(r):>7} {_cpu(r.get('server_cpu_ms')):>8} {_cpu(r.get('client_cpu_ms')):>8}  {target}")
    for scenario, label, r in rows:
        for key, count in sorted(r["errors"].items()):
            print(f"  ! {scenario} ({label}): {count} x status {key}: {r['samples'].get(key, '')!r}")
    for scenario, label, r in rows:
        cores = r["cores"]
        server = f"gunicorn {cores['server']:.2f}, " if scenario not in SQL_SCENARIOS else ""
        print(f"  cpu {scenario} ({label}): machine busy {cores['busy']:.2f} of {os.cpu_count()} cores: {server}"
              f"load clients {cores['client']:.2f}, the rest (PostgreSQL and other processes) "
              f"{cores['busy'] - cores['client'] - (cores['server'] if scenario not in SQL_SCENARIOS else 0):.2f}")
    reads = {(s, label): r for s, label, r in rows if s in READ_PATHS}
    for (scenario, label), r in reads.items():
        bare = reads.get(("read-unprotected", label))
        if scenario == "read" and bare and bare["per_s"] and r["per_s"]:
            print(f"encryption + audit ({label}): reads/s {r['per_s']:.0f} with, {bare['per_s']:.0f} without "
                  f"= {r['per_s'] / bare['per_s']:.2f}; p50 {r['p50']:.2f} vs {bare['p50']:.2f} ms; gunicorn CPU "
                  f"{_cpu(r.get('server_cpu_ms'))} vs {_cpu(bare.get('server_cpu_ms'))} ms per read")
    if floor:
        for scenario, label, r in rows:
            if scenario == "read" and floor["per_s"]:
                print(f"API reads/s / SQL reads/s ({label}): {r['per_s']:.0f} / {floor['per_s']:.0f} "
                      f"= {r['per_s'] / floor['per_s']:.2f}")
    print(f"({args.clients} closed-loop clients over {min(args.processes, args.clients)} load processes, "
          f"{args.seconds:g} s per scenario after {args.warmup:g} s warm-up; {os.cpu_count()} CPUs shared by "
          f"client, gunicorn and PostgreSQL; latencies of 2xx answers only;\n srv cpu / cli cpu = CPU ms per request of gunicorn / of the load clients)")


# --------------------------------------------------------------------------- profile


def profile_reads(app, ids: list[str], token: str, count: int) -> None:
    """cProfile ``count`` reads through the Flask test client, and count database work per read."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from registry.extensions import db

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(1)
    counts = Counter()
    statements = Counter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, stmt, params, context, many: (counts.update(["execute"]),
                                                                    statements.update([" ".join(stmt.split())[:90]])))
    event.listen(engine.pool, "checkout", lambda *a: counts.update(["pool checkout (+1 pre-ping SELECT 1)"]))
    event.listen(engine.pool, "reset", lambda *a: counts.update(["pool reset (ROLLBACK)"]))
    event.listen(engine, "begin", lambda conn: counts.update(["BEGIN"]))
    for _ in range(100):
        assert client.get(f"/api/v1/nationals/{rng.choice(ids)}", headers=headers).status_code == 200
    paths = [f"/api/v1/nationals/{rng.choice(ids)}" for _ in range(count)]
    started = time.perf_counter()
    for path in paths:
        client.get(path, headers=headers)
    plain = time.perf_counter() - started
    cpu_started = time.process_time()
    for path in paths:
        client.get(path, headers=headers)
    cpu = time.process_time() - cpu_started
    print(f"\n{count} reads in-process (test client, one thread, not profiled): "
          f"{plain / count * 1000:.2f} ms wall, {cpu / count * 1000:.2f} ms CPU of this process each "
          f"(the rest is waiting for PostgreSQL)")
    counts.clear()
    statements.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for path in paths:
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"profile read: {response.status_code} {response.get_data(as_text=True)[:200]}")
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"\n{count} reads in-process (test client, profiled): {elapsed / count * 1000:.2f} ms each "
          f"(profiler overhead included)")
    print("per read:", ", ".join(f"{k}: {v / count:.2f}" for k, v in counts.items()))
    for stmt, n in statements.most_common():
        print(f"  {n / count:.2f} x  {stmt}")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


# --------------------------------------------------------------------------- main


def parse_web(value: str) -> list[tuple[int | None, int | None]]:
    if not value:
        return [(None, None)]
    configs = []
    for part in value.split(","):
        workers, _, threads = part.strip().lower().partition("x")
        configs.append((int(workers), int(threads) if threads else None))
    return configs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8, help="concurrent closed-loop clients (connections)")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes the clients are spread over")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database-url", default=None,
                        help="default: bench/seed.py's sagip_bench_1m, or sagip_bench_10m above 1M nationals")
    parser.add_argument("--nationals", type=int, default=1_000_000,
                        help="nationals in the registry (bench/seed.py seeds what is missing)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per scenario, all clients together")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured requests per scenario")
    parser.add_argument("--scenarios", default="read,search,create,sql,search-sql")
    parser.add_argument("--web", default="", help="gunicorn settings to compare, WORKERSxTHREADS[,...], e.g. 4x4,2x8")
    parser.add_argument("--wsgi-app", default="registry.wsgi:app",
                        help="gunicorn app to serve, e.g. a patched variant on PYTHONPATH (to try a change)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile N reads in-process (cProfile) instead of the load test")
    parser.add_argument("--allow-any-database", action="store_true",
                        help="run even if the database name does not contain 'bench'")
    args = parser.parse_args()

    from bench import seed as seeding
    url = plain_url(args.database_url or seeding.default_url(args.nationals))
    args.dsn = url
    from psycopg.conninfo import conninfo_to_dict
    if "bench" not in (conninfo_to_dict(url).get("dbname") or "") and not args.allow_any_database:
        raise SystemExit("refusing a database whose name lacks 'bench' (it gets seeded); "
                         "use --allow-any-database to insist")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIO_TITLES)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    os.environ["DATABASE_URL"] = url  # the app built here and gunicorn read the same settings

    seeding.ensure(url, args.nationals)
    app = make_app(url)
    ids = seeded_ids(url, SAMPLE_IDS)
    if not ids:
        raise SystemExit("no seeded nationals")
    run_tag = "".join(random.choices(string.ascii_uppercase + string.digits, k=5))
    user_id, token = create_token(app, run_tag)
    server = None
    rows: list[tuple[str, str, dict]] = []
    keep_log = False
    try:
        if args.profile:
            profile_reads(app, ids, token, args.profile)
            return 0
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {len(ids)} seeded nationals, "
              f"run {run_tag}")
        for workers, threads in parse_web(args.web):
            http_scenarios = [s for s in scenarios if s not in SQL_SCENARIOS]
            if not http_scenarios:
                break
            server = Server(url, args.port, workers, threads, args.wsgi_app)
            server.start()
            print(f"gunicorn ({server.label}) up on 127.0.0.1:{args.port}, log {server.log_path}")
            for scenario in http_scenarios:
                result = run_scenario(scenario, args, ids, token, run_tag, cpu=server.cpu_seconds)
                rows.append((scenario, server.label, result))
                print(f"  {scenario}: {result['per_s']:.1f}/s p99 {result['p99']:.1f} ms "
                      f"errors {_measured_errors(result)}", flush=True)
            server.stop()
            log_errors = server.errors_in_log()
            if log_errors:
                keep_log = True
                print(f"  gunicorn log has {len(log_errors)} error lines, kept: {server.log_path}")
                print("   ", "\n    ".join(log_errors[:10]))
            else:
                server.remove_log()
            server = None
        for scenario in [s for s in scenarios if s in SQL_SCENARIOS]:
            result = run_scenario(scenario, args, ids, token, run_tag)
            rows.append((scenario, "-", result))
            print(f"  {scenario}: {result['per_s']:.1f}/s p99 {result['p99']:.2f} ms", flush=True)
        print_table(rows, args)
        failed = any(r["errors"] for _, _, r in rows)
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BaseException:
        keep_log = True
        raise
    finally:
        for child in list(ACTIVE_PROCESSES):
            if child.is_alive():
                child.terminate()
        if server is not None:
            server.stop()
            if keep_log:
                print(f"gunicorn log kept: {server.log_path}", file=sys.stderr)
            else:
                server.remove_log()
        with app.app_context():
            from registry.extensions import db
            db.session.remove()
            db.engine.dispose()
        cleanup(url, user_id)


if __name__ == "__main__":
    sys.exit(main())
