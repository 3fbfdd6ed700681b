"""The service's logs (SPEC §12): one JSON object per line where ``REGISTRY_LOG_FORMAT=json``, from the API, the
worker and the command line, naming routes, request ids and jobs, never the people in them."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid

import pytest

from registry import logs
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, national_body
from tests.test_checkin import declare, form_token, link_for
from tests.test_imports import csv_bytes, row, upload, wait_for_job

# A person whose every field is recognisable, and a second one who comes in by an import.
PERSON = national_body(
    family_name="Kalinawan", given_names="Marisol Teodora", date_of_birth="1987-11-23",
    passport_number="P7654321K", phones=["+971509876543"], email="marisol.kalinawan@example.org",
    next_of_kin={"name": "Ramon Kalinawan", "relation": "spouse", "phone": "+639181234567"},
    deployment={"host_country": "AE", "city": "Dubai", "address": "Villa 12, Al Wasl Road",
                "employer": "Sampaguita Trading LLC", "occupation_isco": "5131", "legal_status": "documented"},
    location={"lat": 25.1124, "lon": 55.1980})
IMPORTED = row(family_name="Bituin", given_names="Dalisay Amihan", passport_number="P7654322K",
               phones="+97450111222", date_of_birth="1979-02-14")
PERSONAL = ["Kalinawan", "Marisol", "Teodora", "1987-11-23", "P7654321K", "971509876543", "marisol.kalinawan",
            "example.org", "Ramon", "639181234567", "Villa 12", "Wasl", "Sampaguita", "Bituin", "Dalisay",
            "Amihan", "P7654322K", "97450111222", "1979-02-14"]


def json_lines(output: str) -> list[dict]:
    """Every line of ``output``, each parsed as one JSON object (a line that is not one fails the test)."""
    entries = []
    for line in output.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    return entries


def personal_values_in(output: str, also=()) -> list[str]:
    return [value for value in [*PERSONAL, *also] if value.lower() in output.lower()]


@pytest.fixture
def json_log():
    """The root logger's records as the service writes them with REGISTRY_LOG_FORMAT=json, in a buffer."""
    buffer = io.StringIO()
    handler = logs.handler("json", buffer)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_requests_and_jobs_log_json_without_personal_data(client, db, desk, admin, celery_worker, json_log):
    """Registration, name and passport searches, a query string with a name, a check-in link and its answer,
    an import read by the worker: every line is JSON, with routes, request ids and jobs, and no one's data."""
    created = client.post("/api/v1/nationals", json=PERSON, headers=desk)
    assert created.status_code == 201, created.get_json()
    national_id = created.get_json()["id"]
    found = client.post("/api/v1/nationals/search", json={"q": "Marisol Kalinawan"}, headers=desk)
    assert found.status_code == 200 and found.get_json()["total"] == 1
    assert client.post("/api/v1/nationals/search", json={"passport_number": "P7654321K"}, headers=desk,
                       query_string={"purpose": "walk-in for Marisol Kalinawan"}).status_code == 200
    client.get("/api/v1/nationals", headers=desk, query_string={"city": "Dubai", "q": "Kalinawan"})
    crisis_id = declare(client, admin)
    path = link_for(db, uuid.UUID(crisis_id), uuid.UUID(national_id))
    page = client.get(path)
    assert page.status_code == 200 and "Marisol" in page.get_data(as_text=True)
    answered = client.post(path, data={"form_token": form_token(page.get_data(as_text=True)),
                                       "date_of_birth": "1987-11-23", "status": "safe", "household_present": "1",
                                       "note": "With Ramon at Villa 12"})
    assert answered.status_code == 200
    imported = upload(client, desk, csv_bytes([IMPORTED]))
    assert imported.status_code == 202
    import_job = imported.get_json()["job_id"]
    assert wait_for_job(client, desk, import_job)["result"]["created"] == 1

    output = json_log.getvalue()
    entries = json_lines(output)
    token = path.rsplit("/", 1)[1]
    assert personal_values_in(output, also=[token]) == []
    requests = [e for e in entries if e["logger"] == "registry.request"]
    search = [e for e in requests if e["route"] == "/api/v1/nationals/search"]
    assert [e["status"] for e in search] == [200, 200]
    assert search[0]["request_id"] == found.headers["X-Request-ID"] and search[0]["duration_ms"] >= 0
    assert {(e["method"], e["status"]) for e in requests if e["route"] == "/checkin/<token>"} == {
        ("GET", 200), ("POST", 200)}
    assert {"/api/v1/nationals", "/api/v1/imports", "/api/v1/jobs/<uuid:job_id>"} <= {e["route"] for e in requests}
    finished = [e for e in entries if e.get("job_id") == import_job and e.get("job_status")]
    assert [(e["job_kind"], e["job_status"]) for e in finished] == [("import", "succeeded")]
    assert any(e.get("job_kind") == "exposure" and e.get("job_status") == "succeeded" for e in entries)


def test_an_exception_is_logged_by_its_type_and_frames_never_its_message():
    """(A logger of its own: the session's log, written in its own format, must not get the message.)"""
    buffer = io.StringIO()
    log = logging.getLogger(f"registry.test.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(logs.handler("json", buffer))
    passport, name = PERSON["passport_number"], PERSON["family_name"]
    try:
        raise ValueError(f"no national {passport} ({name})")
    except ValueError:
        log.exception("a job failed")
    entry = json_lines(buffer.getvalue())[-1]
    assert entry["error"] == "ValueError" and "test_an_exception_is_logged" in entry["traceback"]
    assert entry["message"] == "a job failed" and personal_values_in(json.dumps(entry)) == []
    text = logs.TextFormatter().format(logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                                         (ValueError, ValueError(passport), None)))
    assert "ValueError" in text and passport not in text


def test_the_format_defaults_to_json_in_production_and_text_in_development():
    from registry import config
    assert logs.resolve_format("", "production") == "json"
    assert logs.resolve_format(None, "development") == "text"
    assert logs.resolve_format(" JSON ", "development") == "json"
    with pytest.raises(config.ConfigError, match="REGISTRY_LOG_FORMAT"):
        config.load({"REGISTRY_LOG_FORMAT": "xml"})
    assert config.load({"REGISTRY_LOG_FORMAT": "json"})["REGISTRY_LOG_FORMAT"] == "json"


def _environment(**changes) -> dict:
    return {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL,
            "REGISTRY_LOG_FORMAT": "json", **changes}


def test_the_command_line_logs_json_without_personal_data(db, tmp_path):
    """``registry import``: its log lines (the job's) are JSON on stderr beside the command's own output."""
    path = tmp_path / "agency.csv"
    path.write_bytes(csv_bytes([IMPORTED]))
    result = subprocess.run([sys.executable, "-m", "registry.cli", "import", str(path)], env=_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "created 1" in result.stdout
    records = [line for line in result.stderr.splitlines() if line.startswith("{")]
    others = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert all(line.strip().startswith("importing agency.csv") for line in others), others  # the progress bar
    entries = json_lines("\n".join(records))
    assert [(e["job_kind"], e["job_status"]) for e in entries if e.get("job_status")] == [("import", "succeeded")]
    assert personal_values_in(result.stdout + result.stderr) == []


def test_a_worker_process_logs_json(app, db, tmp_path):
    """``celery -A tasks worker`` (as ``registry worker`` runs it) logs through the service's handler: every
    line of its stderr is JSON, its tasks' lines too. Its queue is its own, so that no other worker takes the
    task sent to it."""
    queue = f"sagip-logs-{uuid.uuid4().hex[:8]}"
    stderr_path = tmp_path / "worker.err"
    with open(stderr_path, "w") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo",
                                   "--queues", queue, "--without-heartbeat", "--without-mingle",
                                   "--without-gossip"], env=_environment(), stdout=subprocess.DEVNULL,
                                  stderr=stderr)
    try:
        wait_for_line(stderr_path, worker, "ready")
        task_id = app.extensions["celery"].send_task("jobs.relay_outbox", queue=queue).id
        wait_for_line(stderr_path, worker, f"{task_id}] succeeded")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    entries = json_lines(stderr_path.read_text())
    assert any(e["logger"] == "celery.app.trace" and task_id in e["message"] for e in entries)


def wait_for_line(path, process, text: str) -> None:
    deadline = time.monotonic() + 120
    while text not in path.read_text():
        assert process.poll() is None, f"the worker stopped: {path.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {text!r} in the worker's log: {path.read_text()[-2000:]}"
        time.sleep(0.2)
