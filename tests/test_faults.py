"""Faults with real processes (SPEC §12): the database refusing connections under a running gunicorn, a job's
connection killed under it, Redis killed (-9) with a job queued. The full campaign is bench/faults.py."""
from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager

import psycopg
from sqlalchemy import text

from tests.conftest import TEST_DATABASE_URL, _admin_url, make_app, owner_connection
from tests.console_helpers import make_console_user, sign_in
from tests.test_crises import CRISES, DUBAI, circle, register
from tests.test_exposure_faults import wait_for
from tests.test_imports import csv_bytes, row, wait_for_job


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def database_refusing_connections():
    """The test database refuses every new connection and its open ones are ended, as while it restarts."""
    admin, name = _admin_url(TEST_DATABASE_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (name,))
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


class Redis:
    """A redis-server of the test's own on a free port, without persistence: a kill -9 loses its queues."""

    def __init__(self):
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="sagip-test-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([shutil.which("redis-server"), "--port", str(self.port), "--bind",
                                         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.folder],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 30, "redis-server to answer")

    def _answers(self) -> bool:
        import redis
        try:
            return redis.Redis(port=self.port, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def http_get(port: int, path: str, headers=None) -> tuple[int | None, dict, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    except OSError:
        return None, {}, ""
    finally:
        connection.close()


def test_the_api_answers_503_with_retry_after_while_the_database_is_away_and_recovers_by_itself(
        db, make_user, tmp_path):
    _, desk = make_user("desk")
    console_user, username = make_console_user(db, "desk")
    console = make_app().test_client()
    assert sign_in(console, username).status_code == 303
    port = free_port()
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REGISTRY_WEB_WORKERS": "1",
           "REGISTRY_WEB_THREADS": "4"}
    server = subprocess.Popen([sys.executable, "-m", "registry.cli", "serve", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60, "gunicorn to answer")
        assert http_get(port, "/api/v1/nationals", desk)[0] == 200  # its pool holds connections now
        db.session.remove()
        with database_refusing_connections():
            for _ in range(3):  # pooled connections that died, then new ones refused: the same answer
                status, headers, body = http_get(port, "/api/v1/nationals", desk)
                assert status == 503 and headers["Content-Type"] == "application/problem+json", (status, body)
                assert headers["Retry-After"] == "5" and json.loads(body)["code"] == "service-unavailable"
            page = console.get("/console/nationals")
            assert page.status_code == 503 and page.headers["Retry-After"] == "5"
            assert page.mimetype == "text/html" and "Traceback" not in page.get_data(as_text=True)
            status, _, body = http_get(port, "/healthz")
            assert status == 200 and json.loads(body)["down"] == ["database"]
            status, headers, body = http_get(port, "/readyz")
            assert status == 503 and headers["Retry-After"] == "5" and json.loads(body)["down"] == ["database"]
        # The same processes, nothing restarted: the next requests are served.
        assert server.poll() is None
        status, _, body = http_get(port, "/api/v1/nationals", desk)
        assert status == 200, body
        assert http_get(port, "/readyz")[0] == 200
        assert console.get("/console/nationals").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_job_whose_database_connection_dies_under_it_runs_again_and_finishes_once(db, make_user, client,
                                                                                   celery_worker):
    _, desk = make_user("desk")
    _, coordinator = make_user("coordinator")
    inside = {register(client, desk, *DUBAI, passport_number=f"P470000{i}A") for i in range(3)}
    blocker = owner_connection()
    blocker.autocommit = False
    blocker.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")  # the run waits here, mid-way
    try:
        crisis = client.post(CRISES, headers=coordinator, json={
            "name": "Quake", "kind": "earthquake", "severity": "high", "area": circle(*DUBAI, 20)}).get_json()
        job_id = crisis["latest_run"]["job_id"]
        with owner_connection() as watcher:  # autocommit: pg_stat_activity seen afresh each time
            waiting = wait_for(lambda: watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() "
                "AND pid <> %s", (blocker.info.backend_pid,)).fetchall(), 60, "the run to wait for the lock")
            # Who holds the job: the claim's connection names the job's kind and the worker's process.
            holder = watcher.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                     "WHERE l.locktype = 'advisory' AND l.objsubid = 1").fetchall()
            assert holder == [(f"sagip job exposure pid {os.getpid()}",)]
            watcher.execute("SELECT pg_terminate_backend(%s)", (waiting[0][0],))  # as a database restart would
    finally:
        blocker.rollback()
        blocker.close()
    done = wait_for_job(client, coordinator, job_id)
    assert done["status"] == "succeeded" and done["result"]["counts"]["total"] == 3
    db.session.rollback()
    assert db.session.execute(text("SELECT attempts FROM jobs WHERE id = :id"), {"id": job_id}).scalar() == 1
    stored = db.session.execute(text("SELECT national_id::text FROM exposures")).scalars().all()
    assert sorted(stored) == sorted(inside)  # once each


def test_work_queued_when_redis_is_killed_is_sent_again_when_it_is_back_and_runs_once(db, make_user, tmp_path):
    redis_server = Redis()
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": redis_server.url,
           "REGISTRY_OUTBOX_RELAY_SECONDS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo",
                               "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip",
                               "--beat", "--schedule", str(tmp_path / "beat-schedule")],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "wb"),
                              start_new_session=True)
    fault_app = make_app(REDIS_URL=redis_server.url)
    client = fault_app.test_client()
    _, desk = make_user("desk")
    _, coordinator = make_user("coordinator")
    national = register(client, desk, *DUBAI, passport_number="P4800001A")
    blocker = owner_connection()
    blocker.autocommit = False
    try:
        blocker.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")  # the worker's first job waits here
        crisis = client.post(CRISES, headers=coordinator, json={
            "name": "Flood", "kind": "flood", "severity": "high", "area": circle(*DUBAI, 20)}).get_json()
        run_job = crisis["latest_run"]["job_id"]
        wait_for(lambda: client.get(f"/api/v1/jobs/{run_job}", headers=coordinator).get_json()["status"]
                 == "running", 90, "the run to start")
        answer = client.post("/api/v1/imports", headers=desk, content_type="multipart/form-data",
                             data={"file": (io.BytesIO(csv_bytes([row(passport_number="P4800002A")])), "w.csv")})
        assert answer.status_code == 202
        import_job = answer.get_json()["job_id"]
        dispatched = db.session.execute(text("SELECT dispatched_at FROM outbox WHERE job_id = :id"),
                                        {"id": import_job}).scalar()
        assert dispatched is not None  # in Redis's queue, behind the blocked run

        redis_server.kill()  # the queued import and the run's unacknowledged message are gone with it
        redis_server.start()
        assert redis_server._answers()
        blocker.rollback()  # the run goes on and finishes on the worker that had it
        imported = wait_for_job(client, desk, import_job, timeout_s=120)
        assert imported["status"] == "succeeded" and imported["result"]["created"] == 1, imported
        assert wait_for_job(client, coordinator, run_job)["status"] == "succeeded"
    finally:
        blocker.close()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        redis_server.stop()
    db.session.rollback()
    attempts = dict(db.session.execute(text("SELECT id::text, attempts FROM jobs WHERE id IN (:a, :b)"),
                                       {"a": run_job, "b": import_job}).all())
    assert attempts == {run_job: 1, import_job: 1}
    exposed = db.session.execute(text("SELECT national_id::text FROM exposures")).scalars().all()
    assert exposed == [national]
    assert db.session.execute(text("SELECT count(*) FROM nationals")).scalar() == 2


def test_a_running_job_whose_process_died_is_sent_again_and_one_still_held_is_not(app, db, make_user):
    from registry.jobs.claims import job_key
    from registry.jobs.services import broker_restarted, enqueue, recover_orphaned, rescue
    broker_restarted()  # the relay has seen this Redis before: a restart's rule does not apply
    user_id, _ = make_user("desk")
    held, orphan = (enqueue("import", "imports.run_import", created_by=user_id) for _ in range(2))
    db.session.info.pop("sagip_outbox_pending", None)  # not sent now: as if sent a minute ago
    db.session.execute(text("UPDATE jobs SET status = 'running', started_at = now() - interval '1 minute'"))
    db.session.execute(text("UPDATE outbox SET dispatched_at = now() - interval '1 minute'"))
    db.session.commit()
    assert rescue() == 0
    with owner_connection() as holder:  # the process running ``held`` is alive: it holds the job's claim
        holder.execute("SELECT pg_advisory_lock(%s)", (job_key(held.id),))
        assert recover_orphaned() == 1
    db.session.rollback()
    sent_again = db.session.execute(text("SELECT job_id FROM outbox WHERE dispatched_at > now() - interval '30 s'")
                                    ).scalars().all()
    assert sent_again == [orphan.id]
