"""Fixtures: a migrated PostGIS test database, real Redis, a real Celery worker, and (tests/gateway_stack.py)
the app served over HTTP with real Kannel + fakesmsc and SMTP gateways.

Nothing here is mocked. The test database is rebuilt from the migrations at
the start of the session; tables are emptied after each test (the API and the
worker commit, so per-test transactions cannot isolate them).
"""
from __future__ import annotations

import collections
import logging
import os
import re
import sys
import tempfile
import time
import uuid

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.gateway_stack import gateway_stack, live_server  # noqa: F401  (session fixtures)

TEST_DATABASE_URL = os.environ.get("SAGIP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sagip_test")
TEST_REDIS_URL = os.environ.get("SAGIP_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
DATA_DIR = tempfile.mkdtemp(prefix="sagip-test-")
os.environ["REGISTRY_DATA_DIR"] = DATA_DIR  # development keys of the test session only
os.environ.pop("REGISTRY_TOKEN_KEY", None)

# Everything logged during the session, scanned at its end for personal data (pytest_sessionfinish).
LOG_FILE = os.path.join(DATA_DIR, "session.log")
# The tests' passports (P + 7 digits + a letter) and any E.164 phone number.
PERSONAL_DATA = re.compile(r"\bP\d{7}[A-Z]\b|\+\d{8,15}\b", re.IGNORECASE)

APP_TABLES = ("national_status_history", "checkin_links", "sms_opt_outs", "call_claims", "map_cells", "map_cell_changes", "console_sessions", "invitations", "audit_refused_calls", "welfare_events", "welfare_statuses", "roster_entries", "roster_points", "rosters", "assembly_points", "exposures", "exposure_counts", "exposure_runs", "crisis_area_parts", "crisis_versions", "crises", "audit_seals", "audit_events", "idempotency_keys", "import_files", "outbox", "jobs", "location_reports", "next_of_kin", "deployments", "sms_replies", "checkin_answers", "self_registrations", "campaign_recipients", "campaigns",
              "nationals", "api_tokens", "users")


def pytest_configure(config):
    handler = logging.FileHandler(LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # the service's level in production, for every logger


def scan_for_personal_data(path: str) -> list[str]:
    """Lines of the log at ``path`` holding a passport or phone number."""
    with open(path, encoding="utf-8", errors="replace") as log:
        return [line.rstrip() for line in log if PERSONAL_DATA.search(line)]


def pytest_sessionfinish(session, exitstatus):
    if not os.path.exists(LOG_FILE):
        return
    found = scan_for_personal_data(LOG_FILE)
    with open(LOG_FILE, encoding="utf-8", errors="replace") as log:
        lines = sum(1 for _ in log)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(f"log scan: {lines} log lines of the session, {len(found)} with a passport or phone")
        contract = sys.modules.get("tests.test_contract")
        if contract is not None and contract.CALLS:
            operations = {operation for operation, _ in contract.CALLS}
            statuses = collections.Counter()
            for (_, status), calls in contract.CALLS.items():
                statuses[status] += calls
            reporter.write_line(f"contract: {sum(statuses.values())} generated calls over {len(operations)} "
                                f"method+path pairs; statuses {dict(sorted(statuses.items()))}")
    if found:
        for line in found[:20]:
            if reporter:
                reporter.write_line(f"  personal data logged: {line[:200]}")
        session.exitstatus = 1


def _admin_url(url: str) -> tuple[str, str]:
    base, _, name = url.rpartition("/")
    return base + "/postgres", name


def recreate_database(url: str) -> None:
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class IsolatedClient(FlaskClient):
    """Each request in its own app context, as under gunicorn.

    Flask reuses an app context already pushed (the ``db`` fixture's), which
    would share ``g``, the database session and its row-level security scope
    between the test and its requests.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def make_app(**overrides):
    from registry import create_app
    from registry.config import database_url
    config = {"SQLALCHEMY_DATABASE_URI": database_url(TEST_DATABASE_URL), "REDIS_URL": TEST_REDIS_URL,
              "TESTING": True}
    config.update(overrides)
    try:
        application = create_app(config)
    finally:
        if _session_app:
            # A threaded solo-pool worker runs each task through Celery's *default* app (trace_task_ret uses
            # current_app), and every new app makes itself the default and this thread's current app (which
            # shared tasks' .delay() sends through): give both roles back to the session's, also when the app
            # refused to start (a bad setting raises after its Celery was made).
            _session_app[0].extensions["celery"].set_default()
            _session_app[0].extensions["celery"].set_current()
    application.test_client_class = IsolatedClient
    return application


_session_app: list = []


@pytest.fixture(scope="session")
def app():
    recreate_database(TEST_DATABASE_URL)
    application = make_app()
    _session_app.append(application)
    with application.app_context():
        from flask_migrate import upgrade
        upgrade()
    return application


@pytest.fixture(scope="session")
def celery_worker(app):
    """A real Celery worker (threaded, solo pool) consuming from the test Redis."""
    from celery.contrib.testing.worker import start_worker

    import importlib

    from registry.worker import TASK_MODULES
    for module in TASK_MODULES:  # registers the tasks on this app's Celery
        importlib.import_module(module)
    celery = app.extensions["celery"]
    celery.control.purge()
    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


@pytest.fixture
def db(app):
    """The database, seen by the test as the service sees it (application role, every record in scope).

    Tables are emptied afterwards by the owner: the application role may not TRUNCATE.
    """
    from registry.auth import scope
    from registry.extensions import db as database
    with app.app_context():
        scope.use_everything()
        yield database
        database.session.remove()
    truncate_all()


def truncate_all() -> None:
    # A worker's periodic task still finishing (a purge, a relay) can make the TRUNCATE a deadlock's victim:
    # the victim's statement is rolled back whole, so it is tried again.
    for attempt in range(5):
        try:
            with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {', '.join(APP_TABLES)} CASCADE")
            break
        except psycopg.errors.DeadlockDetected:
            if attempt == 4:
                raise
            time.sleep(0.5)
    clear_rate_limits()


def clear_rate_limits() -> None:
    """Forget every rate-limit count: a test that exhausts a limit must not refuse the next test's calls."""
    import redis
    client = redis.Redis.from_url(TEST_REDIS_URL)
    keys = list(client.scan_iter("sagip:ratelimit:*"))
    if keys:
        client.delete(*keys)


def owner_connection() -> psycopg.Connection:
    """A connection as the tables' owner (no role switch, no row-level security): for tampering tests."""
    return psycopg.connect(TEST_DATABASE_URL, autocommit=True)


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def make_user(app, db):
    """``make_user(role, jurisdiction=())`` → (user id, Authorization headers)."""
    from registry.auth.services import create_user, issue_token

    def make(role: str = "desk", jurisdiction=()):
        user = create_user(f"{role}-{uuid.uuid4().hex[:6]}", role, list(jurisdiction))
        token = issue_token(user)
        db.session.commit()
        return user.id, {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def desk(make_user):
    return make_user("desk")[1]


@pytest.fixture
def admin(make_user):
    return make_user("admin")[1]


def national_body(**changes) -> dict:
    """A valid registration (SPEC §4.2 example); keyword arguments replace fields."""
    body = {
        "family_name": "Dela Cruz", "given_names": "Maria Luisa", "native_name": None,
        "sex": "F", "date_of_birth": "1990-04-12", "nationality": "PH",
        "passport_number": "P1234567A", "phones": ["+971501234567"],
        "email": "maria@example.org", "vulnerabilities": ["pregnant"], "household_id": None,
        "next_of_kin": {"name": "Jose Dela Cruz", "relation": "spouse", "phone": "+639171234567"},
        "deployment": {
            "host_country": "AE", "city": "Dubai", "address": "Al Barsha 1",
            "employer": "Emirates Hospitality LLC", "occupation_isco": "5131",
            "contract_start": "2025-01-15", "contract_end": "2027-01-14", "legal_status": "documented",
        },
        "location": {"lat": 25.1124, "lon": 55.1980},
    }
    body.update(changes)
    return body


def count(db, table: str) -> int:
    return db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
