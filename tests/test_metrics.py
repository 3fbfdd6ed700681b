"""``/metrics`` (SPEC §12): requests by route and status, latency histograms, jobs by kind and status, job run
times, queue lengths; an admin's token or public; summed over gunicorn's processes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from registry.metrics.services import JOB_DURATION_BUCKETS_S
from registry.web.observe import LATENCY_BUCKETS_S
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, make_app, national_body, owner_connection
from tests.test_imports import wait_for_job

NATIONAL_ROUTE = "/api/v1/nationals/<uuid:national_id>"


def scrape(client, headers) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one scrape, parsed by prometheus_client's own parser."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return samples(response.get_data(as_text=True))


def samples(exposition: str) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def value(scraped: dict, name: str, **labels) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_and_status_never_by_path(client, desk, admin):
    national_id = client.post("/api/v1/nationals", json=national_body(), headers=desk).get_json()["id"]
    before = scrape(client, admin)
    for _ in range(3):
        assert client.get(f"/api/v1/nationals/{national_id}", headers=desk).status_code == 200
    assert client.get(f"/api/v1/nationals/{uuid.uuid4()}", headers=desk).status_code == 404
    assert client.get("/no/such/page/P1234567A").status_code == 404
    response = client.get("/metrics", headers=admin)
    after = samples(response.get_data(as_text=True))

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("sagip_http_requests_total", method="GET", route=NATIONAL_ROUTE, status="200") == 3
    assert moved("sagip_http_requests_total", method="GET", route=NATIONAL_ROUTE, status="404") == 1
    assert moved("sagip_http_requests_total", method="GET", route="(unmatched)", status="404") == 1
    # the scrape between them was counted too (after its answer was written)
    assert moved("sagip_http_requests_total", method="GET", route="/metrics", status="200") == 1
    assert moved("sagip_http_request_duration_seconds_count", method="GET", route=NATIONAL_ROUTE) == 4
    bounds = [dict(labels)["le"] for (name, labels) in after  # GET: earlier tests may PATCH or DELETE it
              if name == "sagip_http_request_duration_seconds_bucket" and dict(labels)["route"] == NATIONAL_ROUTE
              and dict(labels)["method"] == "GET"]
    assert bounds == [repr(bound) for bound in LATENCY_BUCKETS_S] + ["+Inf"]
    assert moved("sagip_http_request_duration_seconds_bucket", method="GET", route=NATIONAL_ROUTE, le="+Inf") == 4
    body = response.get_data(as_text=True)
    assert national_id not in body and "P1234567A" not in body and "/no/such" not in body


def test_jobs_are_read_from_the_jobs_table_by_kind_and_status(client, db, make_user, admin, celery_worker):
    """Real jobs (an exposure run on the worker), and rows of known run times for the histogram's buckets."""
    _, coordinator = make_user("coordinator")
    crisis = client.post("/api/v1/crises", headers=coordinator, json={
        "name": "Metrics", "kind": "flood", "severity": "high", "zones_km": [25],
        "area": {"type": "circle", "center": {"lat": 25.2, "lon": 55.3}, "radius_km": 30}}).get_json()
    assert wait_for_job(client, coordinator, crisis["latest_run"]["job_id"])["status"] == "succeeded"
    with owner_connection() as conn:
        for seconds, status in ((0.3, "succeeded"), (1, "succeeded"), (2, "succeeded"), (45, "failed"),
                                (2000, "succeeded")):
            conn.execute("INSERT INTO jobs (id, kind, status, created_at, started_at, finished_at) VALUES "
                         "(%s, 'metrics_probe', %s, now(), now() - make_interval(secs => %s), now())",
                         (uuid.uuid4(), status, seconds))
        conn.execute("INSERT INTO jobs (id, kind, status, created_at) VALUES "
                     "(%s, 'metrics_probe', 'queued', now() - interval '90 seconds')", (uuid.uuid4(),))
    scraped = scrape(client, admin)
    exposure_runs = db.session.execute(text("SELECT count(*) FROM jobs WHERE kind = 'exposure' "
                                            "AND status = 'succeeded'")).scalar()
    assert exposure_runs >= 1
    assert value(scraped, "sagip_jobs", kind="exposure", status="succeeded") == exposure_runs
    assert value(scraped, "sagip_job_duration_seconds_count", kind="exposure", status="succeeded") == exposure_runs
    assert value(scraped, "sagip_jobs", kind="metrics_probe", status="succeeded") == 4
    assert value(scraped, "sagip_jobs", kind="metrics_probe", status="queued") == 1
    assert value(scraped, "sagip_job_oldest_queued_seconds", kind="metrics_probe") >= 90

    def bucket(le, status="succeeded"):
        return value(scraped, "sagip_job_duration_seconds_bucket", kind="metrics_probe", status=status, le=le)

    assert [bucket(repr(b)) for b in JOB_DURATION_BUCKETS_S] == [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 4]  # 1 s is "le 1.0"
    assert bucket("+Inf") == 4 and bucket("30.0", "failed") == 0 and bucket("60.0", "failed") == 1
    assert value(scraped, "sagip_job_duration_seconds_sum", kind="metrics_probe",
                 status="succeeded") == pytest.approx(2003.3, abs=0.01)
    assert ("sagip_job_duration_seconds_count", (("kind", "metrics_probe"), ("status", "queued"))) not in scraped


def test_the_queue_length_is_the_broker_s_list_length(db, make_user):
    """Tasks sent to a queue nobody consumes (its own name) are counted where they wait, in Redis."""
    queue = f"sagip-metrics-{uuid.uuid4().hex[:8]}"
    app = make_app()
    app.extensions["celery"].conf.task_default_queue = queue
    _, admin = make_user("admin")
    try:
        for _ in range(3):
            app.extensions["celery"].send_task("jobs.relay_outbox")
        scraped = scrape(app.test_client(), admin)
        assert value(scraped, "sagip_queue_length", queue=queue) == 3
        assert value(scraped, "sagip_scrape_source_up", source="broker") == 1
        assert redis.Redis.from_url(TEST_REDIS_URL).llen(queue) == 3
    finally:
        redis.Redis.from_url(TEST_REDIS_URL).delete(queue)


def test_an_unreachable_broker_is_said_and_the_rest_still_answered(db, make_user):
    offline = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    _, admin = make_user("admin")
    scraped = scrape(offline.test_client(), admin)
    assert value(scraped, "sagip_scrape_source_up", source="broker") == 0
    assert value(scraped, "sagip_scrape_source_up", source="database") == 1
    assert not any(name == "sagip_queue_length" for name, _ in scraped)


@pytest.mark.parametrize("role", ["desk", "embassy", "coordinator", "auditor", "analyst"])
def test_metrics_need_an_admin(client, db, make_user, role):
    user_id, headers = make_user(role, ["AE"] if role == "embassy" else [])
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 403 and response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "forbidden"
    denied = db.session.execute(text("SELECT count(*) FROM audit_events WHERE action = 'metrics.metrics' "
                                     "AND outcome = 'denied' AND actor_id = :user"), {"user": user_id}).scalar()
    assert denied == 1


def test_metrics_without_a_token_are_a_401_and_an_admin_s_scrape_is_audited(client, db, make_user):
    for headers in ({}, {"Authorization": "Bearer sgp_" + "x" * 43}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    admin_id, admin = make_user("admin")
    assert client.get("/metrics", headers=admin, query_string={"purpose": "monitoring"}).status_code == 200
    events = db.session.execute(text("SELECT outcome, purpose FROM audit_events WHERE action = 'metrics.metrics' "
                                     "AND actor_id = :user"), {"user": admin_id}).all()
    assert [tuple(event) for event in events] == [("ok", "monitoring")]
    assert client.get("/metrics", headers=admin, query_string={"purpose": "x"}).status_code == 400


def test_public_metrics_answer_anyone_and_record_nothing(app, client, db):
    app.config["REGISTRY_METRICS_PUBLIC"] = True
    try:
        response = client.get("/metrics")
        assert response.status_code == 200 and "sagip_jobs" in response.get_data(as_text=True)
        assert client.get("/metrics", query_string={"q": "a\x01b"}).status_code == 400
    finally:
        app.config["REGISTRY_METRICS_PUBLIC"] = False
    assert db.session.execute(text("SELECT count(*) FROM audit_events WHERE action = 'metrics.metrics'")).scalar() == 0
    assert client.get("/metrics").status_code == 401


def test_metrics_settings_are_checked():
    from registry import config
    with pytest.raises(config.ConfigError, match="REGISTRY_METRICS_PUBLIC"):
        config.load({"REGISTRY_METRICS_PUBLIC": "yes"})
    assert config.load({"REGISTRY_METRICS_PUBLIC": "1"})["REGISTRY_METRICS_PUBLIC"] is True
    assert config.load({})["REGISTRY_METRICS_PUBLIC"] is False


def test_the_document_names_the_route_and_its_permission(client):
    operation = client.get("/api/v1/openapi.json").get_json()["paths"]["/metrics"]["get"]
    assert operation["x-permission"] == "metrics:read"
    assert {"200", "401", "403"} <= set(operation["responses"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()
    except OSError:
        return 0, ""


def test_gunicorn_s_processes_add_up_in_one_scrape(db, tmp_path):
    """``registry serve`` with two processes: each scrape, whichever process answers it, counts every
    process's requests (prometheus_client's multiprocess mode, its folder emptied at start)."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")  # a previous run's: removed when the server starts
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL,
           "REGISTRY_WEB_WORKERS": "2", "REGISTRY_WEB_THREADS": "1", "REGISTRY_METRICS_PUBLIC": "1",
           "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    server = subprocess.Popen([sys.executable, "-m", "registry.cli", "serve", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _get(port, "/healthz")[0] != 200:
            assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not answer"
            time.sleep(0.2)
        status, body = _get(port, "/metrics")
        before = value(samples(body), "sagip_http_requests_total", method="GET", route="/healthz", status="200")
        for _ in range(40):
            assert _get(port, "/healthz")[0] == 200
        counts = set()
        for _ in range(6):
            status, body = _get(port, "/metrics")
            assert status == 200
            counts.add(value(samples(body), "sagip_http_requests_total", method="GET", route="/healthz",
                             status="200"))
        workers = {path.name for path in Path(folder).glob("counter_*.db")}
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert before >= 1 and counts == {before + 40}
    assert workers and "counter_1.db" not in workers, workers  # the processes' counters, in the folder
