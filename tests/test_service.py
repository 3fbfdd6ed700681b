"""Configuration, the CLI, health and the OpenAPI document."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from registry import config
from tests.conftest import LOG_FILE, TEST_DATABASE_URL, TEST_REDIS_URL


@pytest.mark.parametrize("raw, mapped", [
    ("postgresql://u@h:5432/d", "postgresql+psycopg://u@h:5432/d"),
    ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
    ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
])
def test_plain_database_urls_are_mapped_to_psycopg3(raw, mapped):
    assert config.database_url(raw) == mapped


PRODUCTION_KEYS = {"REGISTRY_TOKEN_KEY": "ab" * 32, "REGISTRY_BLIND_INDEX_KEY": "cd" * 32,
                   "REGISTRY_AUDIT_KEY": "ef" * 32, "REGISTRY_ENCRYPTION_KEYS": "2:" + "12" * 32 + ",1:" + "34" * 32,
                   "REGISTRY_AUDIT_SIGNING_KEY": "5b" * 32, "REGISTRY_CHECKIN_KEY": "7c" * 32,
                   "REGISTRY_SMS_HOOK_SECRET": "a-hook-secret-for-the-tests"}


@pytest.mark.parametrize("missing", sorted(PRODUCTION_KEYS))
def test_production_refuses_to_start_without_each_of_its_keys(tmp_path, missing):
    environ = {"REGISTRY_ENV": "production", "REGISTRY_DATA_DIR": str(tmp_path), **PRODUCTION_KEYS}
    del environ[missing]
    with pytest.raises(config.ConfigError, match=missing):
        config.load(environ)
    assert not list(tmp_path.iterdir())  # nothing generated behind the operator's back


def test_production_accepts_keys_from_the_environment(tmp_path):
    loaded = config.load({"REGISTRY_ENV": "production", **PRODUCTION_KEYS})
    assert loaded["REGISTRY_TOKEN_KEY"] == bytes.fromhex("ab" * 32)
    assert loaded["REGISTRY_BLIND_INDEX_KEY"] == bytes.fromhex("cd" * 32)


@pytest.mark.parametrize("keys", ["", "1:abcd", "0:" + "12" * 32, "1:" + "12" * 32 + ",1:" + "34" * 32, "zz"])
def test_malformed_encryption_keys_are_refused(keys):
    with pytest.raises(config.ConfigError, match="REGISTRY_ENCRYPTION_KEYS"):
        config.load({"REGISTRY_ENV": "production", **PRODUCTION_KEYS, "REGISTRY_ENCRYPTION_KEYS": keys})


def test_the_same_key_for_two_purposes_is_refused():
    with pytest.raises(config.ConfigError, match="must differ"):
        config.load({**PRODUCTION_KEYS, "REGISTRY_ENV": "production", "REGISTRY_AUDIT_KEY": "ab" * 32})


def test_development_generates_one_key_shared_by_every_process(tmp_path):
    first = config.load({"REGISTRY_DATA_DIR": str(tmp_path)})["REGISTRY_TOKEN_KEY"]
    second = config.load({"REGISTRY_DATA_DIR": str(tmp_path)})["REGISTRY_TOKEN_KEY"]
    assert first == second and len(first) == 32
    assert oct((tmp_path / "token.key").stat().st_mode)[-3:] == "600"


def test_a_short_key_or_an_unknown_environment_is_refused():
    with pytest.raises(config.ConfigError):
        config.load({"REGISTRY_TOKEN_KEY": "abcd"})
    with pytest.raises(config.ConfigError):
        config.load({"REGISTRY_ENV": "staging"})


def run_cli(*args, cwd="/", env=None):
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "registry.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    with open(LOG_FILE, "a") as log:  # the command's log joins the session's, scanned at the end
        log.write(result.stderr)
    return result


def test_cli_creates_a_user_whose_token_works_from_any_directory(client, tmp_path):
    result = run_cli("users", "create", "--name", "Ana Reyes", "--role", "embassy", "--jurisdiction", "AE,qa",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert client.get("/api/v1/nationals", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_cli_refuses_an_embassy_user_without_jurisdiction(db):
    result = run_cli("users", "create", "--name", "X", "--role", "embassy")
    assert result.returncode != 0 and "jurisdiction" in result.stderr


def test_cli_imports_a_file(db, tmp_path):
    from tests.test_imports import csv_bytes, row
    path = tmp_path / "agency.csv"
    path.write_bytes(csv_bytes([row(), row(passport_number="P5550002A", phones="bad")]))
    result = run_cli("import", str(path))
    assert result.returncode == 0, result.stderr
    assert "created 1, duplicates 0, rejected 1" in result.stdout
    assert "row 3: phones" in result.stderr


def test_readyz_checks_database_postgis_and_broker(client):
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["checks"]["postgis"].startswith("3")


def test_readyz_reports_an_unreachable_broker():
    from tests.conftest import make_app
    offline = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = offline.test_client().get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["broker"] != "ok"


def test_every_api_endpoint_is_documented_and_has_a_permission(app, client):
    from registry.web.openapi import PUBLIC_ENDPOINTS
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, operations in spec["paths"].items() for method in operations
                  if method != "parameters"}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        if getattr(view, "public_enter", None):  # a gateway's hook: its own door (registry.web.public), no role
            assert getattr(view, "door", False), f"{rule.rule} does not pass the boundary"
            continue
        assert getattr(view, "permission", None), f"{rule.rule} has no @requires"
        assert getattr(view, "door", False), f"{rule.rule} does not pass the boundary"
        path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {path} is not in the OpenAPI document"
            assert spec["paths"][path][method.lower()]["x-permission"] == view.permission
    for path in ("/api/v1/nationals", "/api/v1/nationals/search", "/api/v1/nationals/{national_id}",
                 "/api/v1/nationals/{national_id}/locations", "/api/v1/imports", "/api/v1/jobs/{job_id}",
                 "/api/v1/imports/template.csv"):
        assert path in spec["paths"], path
    create = spec["paths"]["/api/v1/nationals"]["post"]
    schema_name = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "deployment" in spec["components"]["schemas"][schema_name]["required"]


def test_security_headers_are_set(client):
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unreachable_database_is_a_503_problem_not_a_500():
    from tests.conftest import make_app
    offline = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/sagip")
    response = offline.test_client().get("/api/v1/nationals", headers={"Authorization": "Bearer sgp_" + "x" * 43})
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] and response.get_json()["code"] == "service-unavailable"
    assert offline.test_client().get("/readyz").status_code == 503


def test_the_log_scan_finds_a_passport_or_a_phone(tmp_path):
    from tests.conftest import scan_for_personal_data
    log = tmp_path / "planted.log"
    log.write_text("INFO ok: job 5 done\nERROR duplicate P1234567A\nINFO sms to +971501234567 failed\n"
                   "INFO 3 rows, 1234567 bytes\n")
    assert scan_for_personal_data(str(log)) == ["ERROR duplicate P1234567A", "INFO sms to +971501234567 failed"]


def test_database_errors_are_logged_without_their_values(client, desk, caplog):
    """A constraint error's DETAIL quotes the row; the log keeps the error's type and frames only."""
    import logging
    caplog.set_level(logging.INFO)
    body = {"family_name": "Dela Cruz", "given_names": "Maria", "sex": "F", "date_of_birth": "1990-04-12",
            "nationality": "PH", "passport_number": "P5555555L", "phones": ["+971509999999"],
            "deployment": {"host_country": "AE"}}
    assert client.post("/api/v1/nationals", json=body, headers=desk).status_code == 201
    assert client.post("/api/v1/nationals", json=body, headers=desk).status_code == 409
    assert "P5555555L" not in caplog.text and "+971509999999" not in caplog.text


def test_the_readme_lists_every_environment_variable():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in config.ENVIRONMENT if f"`{name}`" not in readme]
    assert missing == []


def test_the_demo_loads_nationals_users_a_crisis_and_its_roster(db):
    # No broker for these runs: the demo computes its crisis and roster in its own process, and no
    # message reaches a test worker while the tables are emptied after the test.
    offline = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    result = run_cli("demo", "--nationals", "300", env=offline)
    assert result.returncode == 0, result.stderr
    assert "created 300" in result.stdout and "Declared the demo crisis" in result.stdout
    assert "Built its roster" in result.stdout and "succeeded" in result.stdout
    again = run_cli("demo", "--nationals", "300", env=offline)
    assert "already loaded" in again.stdout and "Declared" not in again.stdout
    db.session.rollback()
    from sqlalchemy import text
    assert db.session.execute(text("SELECT count(*) FROM crises")).scalar() == 1
    # The 300 imported, and one who registered herself during the demo crisis (the verification queue's).
    assert db.session.execute(text("SELECT count(*) FROM nationals")).scalar() == 301
    assert db.session.execute(text("SELECT count(*) FROM nationals WHERE status = 'unverified'")).scalar() == 1
    assert db.session.execute(text("SELECT count(*) FROM sms_replies")).scalar() == 4
    assert db.session.execute(text("SELECT count(*) FROM assembly_points")).scalar() == 7
    statuses = db.session.execute(text("SELECT kind, status FROM jobs WHERE kind IN ('exposure', 'roster')")).all()
    assert sorted(statuses) == [("exposure", "succeeded"), ("roster", "succeeded")]
    exposed = db.session.execute(text("SELECT count(*) FROM exposures")).scalar()
    assert exposed > 0 and db.session.execute(text("SELECT count(*) FROM roster_entries")).scalar() == exposed
    # The console: each demo user signs in with the password the latest run printed.
    listed = again.stdout[again.stdout.index("Console sign-in"):].splitlines()[1:7]
    credentials = dict(line.split() for line in listed)
    assert set(credentials) == {"desk", "embassy", "coordinator", "admin", "auditor", "analyst"}
    from registry.auth import passwords
    for username, password in credentials.items():
        stored = db.session.execute(text("SELECT password_hash FROM users WHERE username = :u"), {"u": username})
        assert passwords.verify(stored.scalar(), password)
