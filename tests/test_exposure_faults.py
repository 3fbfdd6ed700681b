"""Faults during an exposure run: a worker killed mid-run (SIGKILL), a broker outage after the declaration."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from tests.conftest import TEST_DATABASE_URL, make_app, owner_connection
from tests.test_crises import CRISES, DUBAI, circle, register
from tests.test_imports import wait_for_job

# Not the session worker's Redis database: only the worker processes started here consume it.
FAULT_REDIS_URL = os.environ.get("SAGIP_TEST_FAULT_REDIS_URL", "redis://127.0.0.1:6379/13")
VISIBILITY_TIMEOUT_S = 3


def start_worker() -> subprocess.Popen:
    """A real `celery worker` process (solo pool) on the fault-test broker."""
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": FAULT_REDIS_URL,
           "REGISTRY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S)}
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo",
                             "--concurrency", "1", "--loglevel", "WARNING", "--without-heartbeat",
                             "--without-mingle", "--without-gossip"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_run_leaves_nothing_and_the_run_completes_once_on_restart(db, make_user):
    fault_app = make_app(REDIS_URL=FAULT_REDIS_URL)
    fault_app.extensions["celery"].control.purge()
    client = fault_app.test_client()
    _, desk = make_user("desk")
    _, coordinator = make_user("coordinator")
    inside = {register(client, desk, *DUBAI, passport_number=f"P420000{i}A") for i in range(3)}
    outside = register(client, desk, 25.2854, 51.531, host="QA", passport_number="P4200009A")

    blocker = owner_connection()
    blocker.autocommit = False
    blocker.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")  # the run will wait here, mid-way
    first = start_worker()
    try:
        crisis = client.post(CRISES, headers=coordinator, json={
            "name": "Flash flood", "kind": "flood", "severity": "high", "area": circle(*DUBAI, 20)}).get_json()
        job_id = crisis["latest_run"]["job_id"]

        def job():
            return client.get(f"/api/v1/jobs/{job_id}", headers=coordinator).get_json()

        wait_for(lambda: job()["status"] == "running", 60, "the run to start")
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()
        if first.poll() is None:
            first.kill()
    assert job()["status"] == "running"
    assert db.session.execute(text("SELECT count(*) FROM exposures")).scalar() == 0  # nothing half-written

    second = start_worker()
    try:
        done = wait_for_job(client, coordinator, job_id, timeout_s=90)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert done["status"] == "succeeded", done
    db.session.rollback()
    stored = db.session.execute(text("SELECT national_id::text, zone FROM exposures")).all()
    assert sorted(stored) == sorted((n, "inside") for n in inside) and outside not in {n for n, _ in stored}
    attempts = db.session.execute(text("SELECT attempts FROM jobs WHERE id = :id"), {"id": job_id}).scalar()
    assert attempts == 2  # the killed attempt, and the one that finished
    assert done["result"]["counts"]["total"] == 3


def test_a_declaration_made_while_the_broker_is_down_runs_once_it_is_back(app, client, db, make_user,
                                                                          celery_worker):
    offline = make_app(REDIS_URL="redis://127.0.0.1:1/0")  # the broker answers nothing
    app.extensions["celery"].set_default()
    _, desk = make_user("desk")
    _, coordinator = make_user("coordinator")
    national = register(client, desk, *DUBAI, passport_number="P4300001A")
    response = offline.test_client().post(CRISES, headers=coordinator, json={
        "name": "Quake", "kind": "earthquake", "severity": "high", "area": circle(*DUBAI, 10)})
    assert response.status_code == 202  # committed, though it could not be sent
    job_id = response.get_json()["latest_run"]["job_id"]
    assert client.get(f"/api/v1/jobs/{job_id}", headers=coordinator).get_json()["status"] == "queued"

    from registry.jobs.services import relay_outbox
    assert relay_outbox(min_age_seconds=0) == 1  # what the worker's beat does once Redis is back
    assert wait_for_job(client, coordinator, job_id)["status"] == "succeeded"
    rows = client.get(f"{CRISES}/{response.get_json()['id']}/exposure", headers=coordinator,
                      query_string={"purpose": "check"}).get_json()["items"]
    assert [r["national_id"] for r in rows] == [national]
