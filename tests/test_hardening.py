"""What an attacker's and a fuzzer's try of the service found (the hardening issue), each held by a test.

The bounded reading of import files is tests/test_import_files.py, the contract tests/test_contract.py,
the antimeridian tests/test_antimeridian.py, the kept audit head tests/test_audit_checkpoint.py, the
index key rotation tests/test_index_rotation.py, the audit flood tests/test_audit.py.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text

from registry.pagination import encode_cursor
from tests.conftest import TEST_DATABASE_URL, count, make_app, national_body, owner_connection
from tests.test_crises import CRISES, DUBAI, circle, declare, register
from tests.test_exposure_faults import FAULT_REDIS_URL, VISIBILITY_TIMEOUT_S, wait_for
from tests.test_imports import csv_bytes, row, upload, wait_for_job


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


# --------------------------------------------------------------------- 1. a job that kills its worker

def start_worker(pool: str = "solo", **env) -> subprocess.Popen:
    """A real `celery worker` process on the fault-test broker."""
    environ = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": FAULT_REDIS_URL,
               "REGISTRY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S), **env}
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", pool,
                             "--concurrency", "1", "--loglevel", "WARNING", "--without-heartbeat",
                             "--without-mingle", "--without-gossip"],
                            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def job_row(job_id) -> dict:
    with owner_connection() as conn:
        found = conn.execute("SELECT status, attempts, error FROM jobs WHERE id = %s", (job_id,)).fetchone()
    return {"status": found[0], "attempts": found[1], "error": found[2]}


def test_a_job_whose_worker_dies_each_time_is_stopped_after_its_attempts(db, make_user):
    """The worker is SIGKILLed while the job runs (what the kernel's OOM killer does to a poison file),
    three times; the fourth delivery fails the job with the reason instead of running it again, deletes
    its upload, and the next job runs."""
    fault_app = make_app(REDIS_URL=FAULT_REDIS_URL)
    fault_app.extensions["celery"].control.purge()
    client = fault_app.test_client()
    _, desk = make_user("desk")
    poison = upload(client, desk, csv_bytes([row()])).get_json()["job_id"]
    blocker = owner_connection()
    blocker.autocommit = False
    blocker.execute("LOCK TABLE import_files IN ACCESS EXCLUSIVE MODE")  # each attempt hangs reading its file
    try:
        for attempt in (1, 2, 3):
            worker = start_worker()
            try:
                wait_for(lambda: job_row(poison)["attempts"] == attempt, 90, f"attempt {attempt} to start")
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=30)
            finally:
                if worker.poll() is None:
                    worker.kill()
    finally:
        blocker.rollback()
        blocker.close()
    assert job_row(poison)["status"] == "running"
    worker = start_worker()
    try:
        stopped = wait_for(lambda: (lambda j: j if j["status"] == "failed" else None)(job_row(poison)), 90,
                           "the poison job to be stopped")
        healthy = upload(client, desk, csv_bytes([row(passport_number="P5550002A")])).get_json()["job_id"]
        done = wait_for(lambda: (lambda j: j if j["status"] != "queued" and j["status"] != "running" else None)(
            job_row(healthy)), 90, "the next job")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert stopped["attempts"] == 3 and stopped["error"]["code"] == "too-many-attempts"
    assert "interrupted 3 times" in stopped["error"]["message"]
    assert done["status"] == "succeeded"
    assert count(db, "import_files") == 0  # the poison file (personal data) went with its failure


def _child_pid(parent: int) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                return int(entry)
    return None


def test_worker_children_run_under_a_memory_ceiling(db):
    worker = start_worker(pool="prefork", REGISTRY_WORKER_MAX_MEMORY_MB="3000")
    try:
        child = wait_for(lambda: _child_pid(worker.pid), 60, "the worker's child process")

        def data_limit():
            with open(f"/proc/{child}/limits") as limits:
                line = next(l for l in limits if l.startswith("Max data size"))
            return line.split()[3] if line.split()[3] != "unlimited" else None

        assert wait_for(data_limit, 30, "the child's limit") == str(3000 * 1024 * 1024)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


RUN_UNDER_A_CEILING = """
import resource, sys, uuid
from tests.conftest import make_app
app = make_app()
from registry.extensions import db
from registry.jobs import services as jobs
from registry.jobs.runner import run_job
from registry.auth import scope
with app.app_context():
    scope.use_everything()
    job = jobs.enqueue("test", "none")
    db.session.info.pop("sagip_outbox_pending", None)
    db.session.commit()
    with open("/proc/self/status") as status:
        used = next(int(l.split()[1]) for l in status if l.startswith("VmData")) * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (used + 64 * 2 ** 20, used + 64 * 2 ** 20))
    run_job(str(job.id), lambda job: bytearray(512 * 2 ** 20))  # far more than the ceiling allows
    print(job.id)
"""


def test_a_job_that_needs_more_memory_than_the_ceiling_fails_with_the_reason(db):
    result = subprocess.run([sys.executable, "-c", RUN_UNDER_A_CEILING], capture_output=True, text=True,
                            timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr[-2000:]
    failed = job_row(result.stdout.split()[-1])
    assert failed["status"] == "failed" and failed["error"]["code"] == "out-of-memory"


# --------------------------------------------------------------------- 2. uploads are not kept

def test_uploads_older_than_a_day_are_purged_and_their_job_then_fails_saying_so(client, desk, db):
    offline = make_app(REDIS_URL="redis://127.0.0.1:1/0")  # no broker: the job stays queued
    job_id = upload(offline.test_client(), desk, csv_bytes([row()])).get_json()["job_id"]
    assert count(db, "import_files") == 1
    from registry.retention import purge_stale_uploads
    assert purge_stale_uploads(hours=1) == 0  # a fresh upload stays
    with owner_connection() as conn:
        conn.execute("UPDATE import_files SET created_at = now() - interval '25 hours'")
    db.session.rollback()
    assert purge_stale_uploads() == 1 and count(db, "import_files") == 0
    from registry.imports.services import run_import
    from registry.jobs.runner import run_job
    run_job(job_id, run_import)
    failed = job_row(job_id)
    assert failed["status"] == "failed" and "no longer available" in failed["error"]["message"]


# --------------------------------------------------------------------- 4. generated vertices are counted

CAP_CIRCLE = "<area><areaDesc>x</areaDesc><circle>25.2,55.3 5</circle></area>"


def cap(areas: str) -> str:
    return ('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>t</identifier><info>'
            f"<severity>Severe</severity>{areas}</info></alert>")


def test_thousands_of_cap_circles_are_refused_before_any_is_built(client, coordinator, db):
    """Refused from the raw body: before parsing, before any circle's 256 vertices are computed (4,000 of
    them took 11.6 s and were accepted before)."""
    response = client.post(CRISES, headers=coordinator, json={
        "name": "Circles", "kind": "flood", "area": {"type": "cap", "xml": cap(CAP_CIRCLE * 4000)}})
    assert response.status_code == 422
    assert "a circle or point counts as the 256 it becomes" in response.get_json()["detail"]
    assert count(db, "crises") == 0


def test_points_whose_circles_would_pass_the_cap_are_refused_by_their_count(client, coordinator, db):
    """790 USGS-style points pass the rough estimate but not the exact count: 790 × 256 > 200,000."""
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [55.0 + i / 1000, 25.0]},
                 "properties": {}} for i in range(790)]
    response = client.post(CRISES, headers=coordinator, json={
        "name": "Quakes", "kind": "earthquake", "severity": "high",
        "area": {"type": "feature", "feature": {"type": "FeatureCollection", "features": features}, "radius_km": 5}})
    assert response.status_code == 422
    assert "790 circles or points" in response.get_json()["detail"]
    assert count(db, "crises") == 0


# --------------------------------------------------------------------- 5. no 500 for any input

@pytest.mark.parametrize("body, code", [
    ("[" * 50_000, "malformed-json"),                                  # RecursionError in the parser before
    ("[" * 100 + "]" * 100, "malformed-json"),                          # deeper than the service reads
    ('{"family_name": "a\\u0000b"}', "malformed-json"),                # PostgreSQL stores no NUL
    ('{"family_name": "\\ud800"}', "malformed-json"),                   # a lone surrogate is not text
    ('{"date_of_birth": NaN}', "malformed-json"),
    ('{"lat": 1e400}', "malformed-json"),                               # a float out of range
    (b"\xff\xfe{}", "malformed-json"),                                  # not UTF-8
])
def test_bodies_that_broke_the_parser_are_400(client, desk, db, body, code):
    response = client.post("/api/v1/nationals", headers={**desk, "Content-Type": "application/json"},
                           data=body)
    assert response.status_code == 400 and response.get_json()["code"] == code
    assert count(db, "nationals") == 0


@pytest.mark.parametrize("path, query", [
    ("/api/v1/nationals", {"cursor": encode_cursor("2026-01-01T00:00:00+00:00", "not-a-uuid")}),
    ("/api/v1/audit", {"cursor": encode_cursor(10 ** 30)}),             # beyond bigint: a DataError before
    ("/api/v1/audit", {"cursor": encode_cursor("1e400")}),
])
def test_cursors_out_of_range_are_400(client, make_user, db, path, query):
    _, admin = make_user("admin")
    response = client.get(path, headers=admin, query_string=query)
    assert response.status_code == 400 and "cursor" in response.get_json()["errors"]


def test_a_search_cursor_beyond_bigint_is_400(client, desk, db):
    response = client.post("/api/v1/nationals/search", headers=desk,
                           json={"q": "maria", "cursor": encode_cursor(10 ** 30)})
    assert response.status_code == 400 and "cursor" in response.get_json()["errors"]


def test_a_version_beyond_the_database_integer_is_422_naming_it(client, desk, coordinator, db, celery_worker):
    crisis = declare(client, coordinator, circle(*DUBAI, 5))
    response = client.get(f"{CRISES}/{crisis['id']}/exposure/diff", headers=coordinator,
                          query_string={"from": 10101393659, "to": 1, "purpose": "fuzz"})
    assert response.status_code == 422 and "from" in response.get_json()["errors"]


@pytest.mark.parametrize("query", [{"purpose": "ab\x00cd"}, {"host_country": "A\x01E"}, {"city": "x" * 5000}])
def test_query_strings_with_control_characters_or_too_long_are_400(client, desk, db, query):
    response = client.get("/api/v1/nationals", headers=desk, query_string=query)
    assert response.status_code == 400


def test_the_server_refuses_oversized_request_heads_and_stays_up(db, tmp_path):
    """Under gunicorn (registry serve): a request line (414), a header or too many headers (431) beyond its
    limits are refused by the server itself, never a 500, and the next request is answered."""
    import http.client
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REGISTRY_WEB_WORKERS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "registry.cli", "serve", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(path, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", path, headers=headers or {})
            return connection.getresponse().status
        except (ConnectionError, OSError):
            return None
        finally:
            connection.close()

    try:
        wait_for(lambda: get("/healthz") == 200, 60, "gunicorn to answer")
        assert get("/api/v1/nationals?" + "a" * 10_000) == 414                 # request line: URI too long
        assert get("/api/v1/nationals", {"Authorization": "Bearer " + "x" * 20_000}) == 431  # one header
        assert get("/api/v1/nationals", {f"X-H{i}": "1" for i in range(150)}) == 431        # too many
        assert get("/api/v1/nationals") == 401 and get("/healthz") == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


# --------------------------------------------------------------------- 7. purpose

def test_a_passport_search_takes_its_purpose_as_a_query_parameter(client, desk, db):
    register(client, desk, *DUBAI, passport_number="P3000001A")
    found = client.post("/api/v1/nationals/search", headers=desk, json={"passport_number": "P3000001A"},
                        query_string={"purpose": "walk-in at the embassy"})
    assert found.status_code == 200 and found.get_json()["total"] == 1
    missing = client.post("/api/v1/nationals/search", headers=desk, json={"passport_number": "P3000001A"})
    assert missing.status_code == 400 and "purpose" in missing.get_json()["errors"]
    events = db.session.execute(text("SELECT purpose FROM audit_events WHERE action = 'nationals.search_nationals' "
                                     "AND outcome = 'ok'")).scalars().all()
    assert events == ["walk-in at the embassy"]


def test_roster_entry_lists_need_a_purpose(client, coordinator, db):
    response = client.get(f"/api/v1/rosters/{uuid.uuid4()}/entries", headers=coordinator)
    assert response.status_code == 400 and "purpose" in response.get_json()["errors"]


# --------------------------------------------------------------------- 8. personal data out of logs

def test_a_failing_job_logs_neither_its_exceptions_message_nor_sql_parameters(app, db, caplog):
    from registry.jobs import services as jobs
    from registry.jobs.runner import run_job
    job = jobs.enqueue("test", "none")
    db.session.info.pop("sagip_outbox_pending", None)
    db.session.commit()

    personal = {"passport": "P7654321Z +971501234567"}

    def work(job):
        # A database error whose statement carries personal data, as a bug might produce.
        db.session.execute(text("SELECT CAST(:passport AS integer)"), personal)

    with caplog.at_level(logging.INFO):
        run_job(str(job.id), work)
    assert "P7654321Z" not in caplog.text and "+971501234567" not in caplog.text
    assert "DataError" in caplog.text  # the type is logged, to be found
    failed = job_row(job.id)
    assert failed["error"] == {"code": "internal-error", "message": "The job failed unexpectedly; it has been logged."}


def test_database_errors_never_list_the_statements_parameters(app, db):
    """The engine hides parameters; the server's own message may still quote a value, which is why no
    exception message is ever logged (the test above)."""
    from sqlalchemy.exc import DataError
    with pytest.raises(DataError) as caught:
        db.session.execute(text("SELECT CAST(:passport AS integer), :phone"),
                           {"passport": "P7654321Z", "phone": "+971501234567"})
    db.session.rollback()
    assert "+971501234567" not in str(caught.value) and "parameters hidden" in str(caught.value)


# --------------------------------------------------------------------- 9. large answers streamed, lists light

def test_crisis_lists_give_a_bounding_box_not_the_area(client, coordinator, db, celery_worker):
    across = {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[178.0, -17.0], [-178.0, -17.0], [-178.0, -16.0], [178.0, -16.0], [178.0, -17.0]]]}}
    crisis = declare(client, coordinator, across)
    listed = client.get(CRISES, headers=coordinator).get_json()["items"]
    assert [c["id"] for c in listed] == [crisis["id"]] and "area" not in listed[0]
    assert listed[0]["bbox"] == pytest.approx([178.0, -17.0, -178.0, -16.0])  # west > east: across ±180°
    assert listed[0]["vertices"] == crisis["vertices"] > 4
    assert crisis["area"]["type"] == "MultiPolygon"  # the single crisis has it


def test_exposure_csv_is_streamed_and_the_diff_is_capped_with_its_counts(client, desk, coordinator, db,
                                                                        celery_worker):
    people = [register(client, desk, *DUBAI, passport_number=f"P31000{i:02d}A") for i in range(3)]
    crisis = declare(client, coordinator, circle(*DUBAI, 10))
    response = client.get(f"{CRISES}/{crisis['id']}/exposure", headers=coordinator,
                          query_string={"purpose": "buses", "format": "csv"})
    assert response.is_streamed and response.status_code == 200
    assert sorted(line.split(",")[0] for line in response.get_data(as_text=True).splitlines()[1:]) == sorted(people)
    changed = client.patch(f"{CRISES}/{crisis['id']}", headers=coordinator, json={"zones_km": [50]}).get_json()
    assert wait_for_job(client, coordinator, changed["latest_run"]["job_id"])["status"] == "succeeded"
    from registry.crises import listing
    from registry.crises.models import ExposureRun
    runs = {r.version: r.id for r in db.session.query(ExposureRun).all()}
    admin = type("Caller", (), {"role": "admin", "jurisdiction": ()})()
    assert listing.diff(admin, runs[1], runs[2])["counts"] == {"added": 0, "removed": 0, "changed": 0}
    db.session.execute(text("DELETE FROM exposures WHERE run_id = :run"), {"run": runs[2]})
    capped = listing.diff(admin, runs[1], runs[2], cap=2)  # one statement; each list capped, counted whole
    assert capped["counts"]["removed"] == 3 and len(capped["removed"]) == 2 and capped["truncated"]
    assert [r["distance_km"] for r in capped["removed"]] == sorted(r["distance_km"] for r in capped["removed"])
    db.session.rollback()


def test_the_streamed_csv_binds_its_filters_and_never_starts_a_formula(client, desk, make_user, db, celery_worker,
                                                                      coordinator):
    formula = register(client, desk, *DUBAI, passport_number="P3200001A", family_name="=HYPERLINK(1)",
                       vulnerabilities=["pregnant"], deployment={"city": "Dubai"})
    register(client, desk, *DUBAI, passport_number="P3200002A", vulnerabilities=[], deployment={"city": "Dubai"})
    crisis = declare(client, coordinator, circle(*DUBAI, 10))
    _, embassy = make_user("embassy", ["AE"])
    url = f"{CRISES}/{crisis['id']}/exposure"
    body = client.get(url, headers=embassy, query_string={"purpose": "consular", "format": "csv",
                                                          "vulnerability": "pregnant", "city": "dubai"})
    lines = body.get_data(as_text=True).splitlines()
    assert len(lines) == 2 and lines[1].startswith(formula) and ",'=HYPERLINK(1)," in lines[1]
    quoted = client.get(url, headers=embassy, query_string={"purpose": "consular", "format": "csv",
                                                            "city": "x') OR ('1'='1"})
    assert quoted.status_code == 200 and len(quoted.get_data(as_text=True).splitlines()) == 1  # the header only


# --------------------------------------------------------------------- 10. passport probes

def test_a_passport_outside_ones_reach_is_a_409_that_is_rate_limited_and_names_the_record_met(
        app, client, desk, make_user, db):
    qa = register(client, desk, 25.2854, 51.531, host="QA", passport_number="P4400001A")
    officer_id, embassy = make_user("embassy", ["AE"])
    probe = client.post("/api/v1/nationals", headers=embassy, json=national_body(passport_number="P4400001A"))
    assert probe.status_code == 409 and "existing_id" not in probe.get_json()  # existence, not whose
    event = db.session.execute(text("SELECT object_ids, details FROM audit_events WHERE actor_id = :a AND "
                                    "action = 'nationals.create_national'"), {"a": officer_id}).one()
    assert [str(i) for i in event.object_ids] == [qa] and event.details["passport_match"] is True
    limit = app.config["REGISTRY_PASSPORT_LOOKUPS_PER_MINUTE"]
    statuses = []  # until refused (the windows are the clock's minutes: a slow run may cross into the next)
    while len(statuses) <= 2 * limit and (not statuses or statuses[-1] != 429):
        statuses.append(client.post("/api/v1/nationals", headers=embassy,
                                    json=national_body(passport_number="P4400001A")).status_code)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {409}
    # Searching by passport counts toward the same limit.
    search = client.post("/api/v1/nationals/search", headers=embassy, json={"passport_number": "P4400001A"},
                         query_string={"purpose": "walk-in"})
    assert search.status_code == 429
    assert json.dumps(probe.get_json()).count("P4400001A") == 0
