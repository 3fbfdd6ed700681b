"""Work is committed before it is sent, survives a broker outage and runs once."""
from __future__ import annotations

import io

from sqlalchemy import text

from tests.conftest import count, make_app
from tests.test_imports import csv_bytes, row, wait_for_job


def test_work_queued_while_the_broker_is_unreachable_runs_once_it_is_back(app, client, desk, db, celery_worker):
    # A second app whose broker address answers nothing: a real failed connection.
    offline = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    app.extensions["celery"].set_default()
    offline_client = offline.test_client()
    response = offline_client.post("/api/v1/imports", headers=desk, content_type="multipart/form-data",
                                   data={"file": (io.BytesIO(csv_bytes([row()])), "w.csv")})
    assert response.status_code == 202  # the request commits its work even though sending failed
    job_id = response.get_json()["job_id"]
    pending = db.session.execute(text("SELECT dispatched_at, attempts FROM outbox")).one()
    assert pending.dispatched_at is None and pending.attempts == 1
    assert client.get(f"/api/v1/jobs/{job_id}", headers=desk).get_json()["status"] == "queued"

    from registry.jobs.services import relay_outbox
    assert relay_outbox(min_age_seconds=0) == 1
    job = wait_for_job(client, desk, job_id)
    assert job["status"] == "succeeded" and job["result"]["created"] == 1
    assert db.session.execute(text("SELECT dispatched_at FROM outbox")).scalar() is not None
    assert relay_outbox(min_age_seconds=0) == 0


def test_a_message_delivered_twice_does_the_work_once(client, desk, db, celery_worker):
    job_id = client.post("/api/v1/imports", headers=desk, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(csv_bytes([row(), row(passport_number="P5550002A")])), "w.csv")}
                         ).get_json()["job_id"]
    first = wait_for_job(client, desk, job_id)
    # The relay (or a broker redelivery after a lost worker) sends the same job again.
    from registry.jobs.services import send
    message_id = db.session.execute(text("SELECT id FROM outbox")).scalar()
    assert send(message_id, "imports.run_import", job_id)
    import time
    time.sleep(1.0)
    assert wait_for_job(client, desk, job_id) == first
    assert count(db, "nationals") == 2
