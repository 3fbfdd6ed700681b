#!/usr/bin/env python
"""Upload an XLSX zip bomb to a real API and worker, and measure what it costs them.

    python bench/zipbomb.py [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_zipbomb]
                            [--redis-url redis://127.0.0.1:6379/13] [--port 8766] [--strings-mib 360]
                            [--keep FILE]

Steps: build the bomb (an XLSX of about 1 MB whose xl/sharedStrings.xml inflates to
``--strings-mib`` MiB, written into the zip as a stream at the highest compression);
create the scratch database if missing and migrate it; create a desk officer and a
coordinator with tokens; start a real ``celery -A tasks worker`` (prefork,
``--concurrency 1``) and gunicorn with one worker process (``registry/gunicorn_conf.py``),
both with their own data folder (keys) and the given Redis database; then

  1. POST /api/v1/imports with the bomb, and poll /api/v1/jobs/{id} until the job ends;
  2. POST /api/v1/assembly-points/import with the bomb, likewise (a job too: the API
     never parses a file).

Printed for each: the job's status and reason, the time from the upload to the refusal,
and the peak resident memory above idle of the Celery pool child (which reads the file)
and of the gunicorn worker (which only stores it): VmHWM from /proc after resetting it
(clear_refs), and VmRSS sampled every 20 ms over each process and its children. The
processes started here are stopped at the end (also on error or Ctrl-C).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def build_bomb(path: Path, strings_mib: int) -> tuple[int, int]:
    """Write the bomb to ``path``; (its size, the declared size of its shared strings)."""
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                               '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                               'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                               f'<Override PartName="/xl/workbook.xml" ContentType="{CONTENT}.sheet.main+xml"/>'
                               f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CONTENT}.worksheet+xml"/>'
                               f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CONTENT}.sharedStrings+xml"/>'
                               "</Types>",
        "_rels/.rels": f'<Relationships xmlns="{PACKAGE_REL}"><Relationship Id="rId1" '
                       f'Type="{OFFICE_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{MAIN}" xmlns:r="{OFFICE_REL}"><sheets>'
                           '<sheet name="People" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PACKAGE_REL}">'
                                      f'<Relationship Id="rId1" Type="{OFFICE_REL}/worksheet" '
                                      'Target="worksheets/sheet1.xml"/>'
                                      f'<Relationship Id="rId2" Type="{OFFICE_REL}/sharedStrings" '
                                      'Target="sharedStrings.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">'
                                    + "".join(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate("ABCDEF"))
                                    + "</row></sheetData></worksheet>",
    }
    one = b"<si><t>" + b"A" * 48 + b"</t></si>"
    chunk = one * (MIB // len(one))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        with archive.open("xl/sharedStrings.xml", "w") as member:  # streamed: never whole in memory
            member.write(f'<sst xmlns="{MAIN}">'.encode())
            for _ in range(strings_mib):
                member.write(chunk)
            member.write(b"</sst>")
        declared = archive.getinfo("xl/sharedStrings.xml").file_size
    return path.stat().st_size, declared


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name or name == "sagip":
        raise SystemExit("--database-url must name a scratch database (not 'sagip')")
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def prepare(url: str, redis_url: str) -> dict[str, str]:
    """Migrate; a desk officer and a coordinator for this run; their tokens by role."""
    import flask_migrate

    from registry import config, create_app
    from registry.auth.services import create_user, issue_token
    from registry.extensions import db
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(url), "REDIS_URL": redis_url})
    tokens = {}
    with app.app_context():
        flask_migrate.upgrade()
        tag = uuid.uuid4().hex[:6]
        for role in ("desk", "coordinator"):
            user = create_user(f"bench-zipbomb-{role}-{tag}", role)
            tokens[role] = issue_token(user, ttl_days=1)
        db.session.commit()
        db.engine.dispose()
    return tokens


# --- processes and their memory ------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    pids = [pid]
    for child in children(pid):
        pids += tree(child)
    return pids


def status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> int:
    return sum(status_kib(p, "VmRSS") for p in tree(pid))


def reset_peaks(pid: int) -> None:
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current RSS
        except OSError:
            pass


class PeakSampler:
    """VmRSS of a process tree sampled every 20 ms; with VmHWM (reset at start) read at the end."""

    def __init__(self, pid: int):
        self.pid, self.peak_kib, self._stop = pid, 0, threading.Event()
        self.idle_kib = tree_rss_kib(pid)
        reset_peaks(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            time.sleep(0.02)

    def stop(self) -> tuple[int, int, int]:
        """(idle, sampled peak, VmHWM sum) in KiB."""
        self._stop.set()
        self._thread.join()
        return self.idle_kib, self.peak_kib, sum(status_kib(p, "VmHWM") for p in tree(self.pid))


class Started:
    """A subprocess in its own session, its output in a log file, stopped by its process group."""

    def __init__(self, name: str, argv: list[str], env: dict):
        fd, self.log_path = tempfile.mkstemp(prefix=f"sagip-zipbomb-{name}-", suffix=".log")
        self.name = name
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def wait_for(self, ready, what: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no {what} within {timeout_s:.0f} s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        os.unlink(self.log_path)


# --- HTTP ----------------------------------------------------------------------------------------------

def call(port: int, method: str, path: str, token: str, body: bytes | None = None,
         content_type: str | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else {})


def upload(port: int, path: str, token: str, data: bytes) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.xlsx\"\r\n"
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return call(port, "POST", path, token, body, f"multipart/form-data; boundary={boundary}")


def port_open(port: int) -> bool:
    import socket
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


def report(label: str, measured: tuple[int, int, int], seconds: float, outcome: str) -> None:
    idle, sampled, hwm = measured
    print(f"{label}:\n  {outcome}\n  {seconds:.2f} s from the upload to the answer\n"
          f"  peak RSS above idle: {mib(max(sampled, hwm) - idle)} (idle {mib(idle)}; sampled peak "
          f"{mib(sampled)}, VmHWM {mib(hwm)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_zipbomb")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--strings-mib", type=int, default=360, help="size of sharedStrings.xml unzipped")
    parser.add_argument("--keep", metavar="FILE", help="also keep the bomb in FILE")
    args = parser.parse_args()
    if port_open(args.port):
        raise SystemExit(f"something already listens on 127.0.0.1:{args.port}; choose another --port")

    scratch = Path(tempfile.mkdtemp(prefix="sagip-zipbomb-"))
    bomb_path = Path(args.keep) if args.keep else scratch / "bomb.xlsx"
    started = time.perf_counter()
    size, declared = build_bomb(bomb_path, args.strings_mib)
    print(f"bomb: {size / MIB:.2f} MiB XLSX; xl/sharedStrings.xml declares {declared / MIB:,.0f} MiB "
          f"(built in {time.perf_counter() - started:.1f} s)")
    bomb = bomb_path.read_bytes()

    # The keys of this run: generated into a data folder of its own, shared by the three processes.
    os.environ["REGISTRY_DATA_DIR"] = str(scratch / "data")
    ensure_database(args.database_url)
    tokens = prepare(args.database_url, args.redis_url)
    env = dict(os.environ, DATABASE_URL=args.database_url, REDIS_URL=args.redis_url,
               REGISTRY_BIND=f"127.0.0.1:{args.port}", REGISTRY_WEB_WORKERS="1", REGISTRY_WEB_THREADS="4")
    processes: list[Started] = []
    try:
        worker = Started("worker", [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
                                    "--concurrency", "1", "--loglevel", "INFO", "--without-mingle",
                                    "--without-gossip"], env)
        processes.append(worker)
        api = Started("gunicorn", [sys.executable, "-m", "gunicorn", "-c",
                                   str(ROOT / "registry" / "gunicorn_conf.py"), "registry.wsgi:app"], env)
        processes.append(api)
        worker.wait_for(lambda: " ready." in worker.log() and children(worker.proc.pid), "ready worker")

        def healthy() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                conn.request("GET", "/healthz")
                ok = conn.getresponse().status == 200
                conn.close()
                return ok and bool(children(api.proc.pid))
            except OSError:
                return False

        api.wait_for(healthy, "answer on /healthz")
        time.sleep(2)  # let both settle at idle
        pool_child, = children(worker.proc.pid)
        web_worker, = children(api.proc.pid)

        for label, path, token in (("registrations", "/api/v1/imports", tokens["desk"]),
                                   ("assembly points", "/api/v1/assembly-points/import", tokens["coordinator"])):
            samplers = PeakSampler(pool_child), PeakSampler(web_worker)
            started = time.perf_counter()
            status, body = upload(args.port, path, token, bomb)
            if status != 202:
                raise RuntimeError(f"POST {path} answered {status}: {body}")
            while True:
                _, job = call(args.port, "GET", f"/api/v1/jobs/{body['job_id']}", token)
                if job["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            worker_peak, api_peak = (sampler.stop() for sampler in samplers)
            outcome = f"job {job['status']}: {json.dumps(job.get('error') or job.get('result'))}"
            report(f"POST {path} ({label}): the Celery pool child (prefork, concurrency 1), which reads it",
                   worker_peak, elapsed, outcome)
            report(f"POST {path} ({label}): the gunicorn worker, which only stores it", api_peak, elapsed, outcome)
            if children(worker.proc.pid) != [pool_child]:
                print("  the pool child was replaced: it died while reading")
            if children(api.proc.pid) != [web_worker]:
                print("  the gunicorn worker was replaced")
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(scratch, ignore_errors=True)  # the bomb (unless --keep) and the run's keys
    return 0


if __name__ == "__main__":
    sys.exit(main())
