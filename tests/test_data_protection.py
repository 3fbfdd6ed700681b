"""Encryption at rest, field sets, mass assignment, tokens, rate limits and retention (SPEC §6b)."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import TEST_DATABASE_URL, make_app, national_body, owner_connection
from tests.test_audit import events, register


# --------------------------------------------------------------------- encryption at rest

def test_a_database_dump_holds_no_plaintext_passport_or_national_id(client, desk, db):
    passports = [f"P{n:07d}E" for n in range(4100001, 4100006)]
    for passport in passports:  # with an Idempotency-Key too: the key's stored answer must not hold them
        response = client.post("/api/v1/nationals", headers={**desk, "Idempotency-Key": passport[::-1]},
                               json=national_body(passport_number=passport, national_id_number=f"NID-{passport}"))
        assert response.status_code == 201
    dump = subprocess.run(["pg_dump", "--data-only", TEST_DATABASE_URL], capture_output=True, timeout=120)
    assert dump.returncode == 0, dump.stderr
    assert b"Dela Cruz" in dump.stdout  # the dump does hold the records
    for passport in passports:
        assert passport.encode() not in dump.stdout and passport.lower().encode() not in dump.stdout
    # Exact lookup still works through the blind index.
    found = client.post("/api/v1/nationals/search", json={"passport_number": passports[2], "purpose": "check"},
                        headers=desk).get_json()
    assert [(n["passport_number"], n["national_id_number"]) for n in found["items"]] == [
        (passports[2], f"NID-{passports[2]}")]


def test_a_ciphertext_moved_to_another_record_does_not_decrypt(client, desk, db):
    first = register(client, desk)
    second = register(client, desk, passport_number="P7654321B")
    with owner_connection() as owner:
        owner.execute("UPDATE nationals SET passport_ciphertext = (SELECT passport_ciphertext FROM nationals "
                      "WHERE id = %s) WHERE id = %s", (first["id"], second["id"]))
    from registry.crypto import DecryptionError, keyring
    stored = db.session.execute(text("SELECT passport_ciphertext FROM nationals WHERE id = :id"),
                                {"id": second["id"]}).scalar()
    with pytest.raises(DecryptionError):
        keyring().decrypt("passport", uuid.UUID(second["id"]), stored)


def test_key_rotation_re_encrypts_every_record_and_lookups_keep_working(client, desk, db, app):
    national = register(client, desk, national_id_number="NID-1")
    register(client, desk, passport_number=None, national_id_number=None)
    old_keys = app.config["REGISTRY_ENCRYPTION_KEYS"]
    with owner_connection() as owner:
        changed_before = owner.execute("SELECT id::text, updated_at FROM nationals ORDER BY id").fetchall()
    rotated = make_app(REGISTRY_ENCRYPTION_KEYS="2:" + "5a" * 32 + "," + old_keys)
    with rotated.app_context():  # the commands run in the current app context: this one, not the fixture's
        result = rotated.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "1 record(s) re-encrypted under key version 2" in result.output
    with owner_connection() as owner:
        versions = owner.execute("SELECT get_byte(passport_ciphertext, 0), get_byte(national_id_ciphertext, 0) "
                                 "FROM nationals WHERE passport_ciphertext IS NOT NULL").fetchall()
    assert versions == [(2, 2)]
    with owner_connection() as owner:  # a new ciphertext is no change of the person: no crisis re-runs for it
        assert owner.execute("SELECT id::text, updated_at FROM nationals ORDER BY id").fetchall() == changed_before
    reader = rotated.test_client()
    found = reader.post("/api/v1/nationals/search", json={"passport_number": "P1234567A", "purpose": "check"},
                        headers=desk).get_json()
    assert [(n["id"], n["passport_number"], n["national_id_number"]) for n in found["items"]] == [
        (national["id"], "P1234567A", "NID-1")]
    with rotated.app_context():
        assert rotated.test_cli_runner().invoke(args=["keys", "rotate"]).output.startswith("0 record(s)")


# --------------------------------------------------------------------- field sets and mass assignment

def test_coordinators_receive_no_legal_status_national_id_consent_birth_date_or_vulnerabilities(client, make_user,
                                                                                              desk):
    national = register(client, desk, national_id_number="NID-77",
                        consent={"given": True, "method": "signed form"})
    _, coordinator = make_user("coordinator")
    seen = client.get(f"/api/v1/nationals/{national['id']}", headers=coordinator).get_json()
    assert {"national_id_number", "consent", "date_of_birth", "vulnerabilities"}.isdisjoint(seen)
    assert {"legal_status", "recruitment_agency"}.isdisjoint(seen["deployment"])
    assert seen["passport_number"] == "P1234567A" and seen["phones"] == ["+971501234567"]
    # Nor may they ask by it: a filter would tell.
    refused = client.get("/api/v1/nationals", query_string={"vulnerability": "pregnant"}, headers=coordinator)
    assert refused.status_code == 403 and "vulnerability" in refused.get_json()["errors"]
    full = client.get(f"/api/v1/nationals/{national['id']}", headers=desk).get_json()
    assert full["national_id_number"] == "NID-77" and full["deployment"]["legal_status"] == "documented"


@pytest.mark.parametrize("field, value", [
    ("jurisdiction_country", "QA"), ("created_by", str(uuid.uuid4())), ("id", str(uuid.uuid4())),
    ("erased_at", "2025-01-01T00:00:00Z"), ("returned_at", "2025-01-01T00:00:00Z"), ("created_at", "2020-01-01"),
    ("passport_index", "00"), ("location_source", "gps"), ("search_name", "x"),
])
def test_clients_cannot_set_server_owned_fields(client, desk, db, field, value):
    response = client.post("/api/v1/nationals", json=national_body(**{field: value}), headers=desk)
    assert response.status_code == 422 and field in response.get_json()["errors"]
    national = register(client, desk)
    patched = client.patch(f"/api/v1/nationals/{national['id']}", json={field: value}, headers=desk)
    assert patched.status_code == 422 and field in patched.get_json()["errors"]
    assert db.session.execute(text("SELECT count(*) FROM nationals")).scalar() == 1


def test_a_field_the_role_may_not_write_is_a_403_naming_it(client, make_user, desk, admin, db):
    refused = client.post("/api/v1/nationals", json=national_body(source="self_registration"), headers=desk)
    assert refused.status_code == 403 and "source" in refused.get_json()["errors"]
    assert db.session.execute(text("SELECT count(*) FROM nationals")).scalar() == 0
    national = register(client, admin, source="self_registration")
    assert national["source"] == "self_registration"
    _, embassy = make_user("embassy", ["AE"])
    patched = client.patch(f"/api/v1/nationals/{national['id']}", json={"source": "embassy"}, headers=embassy)
    assert patched.status_code == 403 and "source" in patched.get_json()["errors"]


# --------------------------------------------------------------------- tokens

def cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_users_list_disable_and_rotate(app, client, make_user, db):
    user_id, headers = make_user("desk")
    _, second = make_user("desk")
    assert str(user_id) in cli(app, "users", "list")

    output = cli(app, "users", "rotate", str(user_id))
    new_token = output.strip().splitlines()[-1]
    assert client.get("/api/v1/nationals", headers=headers).status_code == 401  # the old token is dead
    fresh = {"Authorization": f"Bearer {new_token}"}
    assert client.get("/api/v1/nationals", headers=fresh).status_code == 200

    assert "1 token(s) revoked" in cli(app, "users", "disable", str(user_id))
    assert client.get("/api/v1/nationals", headers=fresh).status_code == 401
    assert client.get("/api/v1/nationals", headers=second).status_code == 200
    listed = [line for line in cli(app, "users", "list").splitlines() if str(user_id) in line]
    assert listed and " no " in listed[0]
    assert {e["action"] for e in events(db)} >= {"users.rotate", "users.disable", "users.list"}
    failed = app.test_cli_runner().invoke(args=["users", "disable", str(uuid.uuid4())])
    assert failed.exit_code != 0 and "No such user" in failed.output


# --------------------------------------------------------------------- rate limits

def test_repeated_failed_authentication_is_429_with_retry_after(db):
    limited = make_app(REGISTRY_AUTH_FAILURES_PER_MINUTE=3)
    client = limited.test_client()
    address = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{time.time_ns() % 250}.7"}
    bad = {"Authorization": "Bearer sgp_wrong"}
    statuses = [client.get("/api/v1/nationals", headers=bad, environ_base=address).status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
    refused = client.get("/api/v1/nationals", headers=bad, environ_base=address)
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    counted = db.session.execute(text("SELECT status, calls FROM audit_refused_calls WHERE client = :client"),
                                 {"client": address["REMOTE_ADDR"]}).all()
    assert sorted(counted) == [(401, 3), (429, 3)]  # counted per address and minute, not an event per call


def test_a_valid_token_is_not_blocked_by_failures_from_its_address(db, make_user):
    limited = make_app(REGISTRY_AUTH_FAILURES_PER_MINUTE=1)
    client = limited.test_client()
    address = {"REMOTE_ADDR": f"10.200.{time.time_ns() % 250}.9"}
    for _ in range(3):
        client.get("/api/v1/nationals", headers={"Authorization": "Bearer sgp_x"}, environ_base=address)
    _, headers = make_user("desk")
    assert client.get("/api/v1/nationals", headers=headers, environ_base=address).status_code == 200


def test_bulk_reads_beyond_the_limit_are_429_and_single_reads_are_not(client, db, make_user):
    limited = make_app(REGISTRY_BULK_READS_PER_MINUTE=2)
    limited_client = limited.test_client()
    _, headers = make_user("desk")
    national = register(client, headers)
    statuses = [limited_client.get("/api/v1/nationals", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    search = limited_client.post("/api/v1/nationals/search", json={"q": "Dela Cruz"}, headers=headers)
    assert search.status_code == 429 and "Retry-After" in search.headers
    assert limited_client.get(f"/api/v1/nationals/{national['id']}", headers=headers).status_code == 200


# --------------------------------------------------------------------- retention

def test_the_retention_task_purges_returned_nationals_past_the_period_on_the_worker(client, desk, db, celery_worker):
    from tasks.housekeeping import purge_returned_task
    old = register(client, desk)
    recent = register(client, desk, passport_number="P2222222B")
    abroad = register(client, desk, passport_number="P3333333C")
    for national in (old, recent):
        response = client.patch(f"/api/v1/nationals/{national['id']}", json={"status": "returned"}, headers=desk)
        assert response.status_code == 200
    with owner_connection() as owner:
        owner.execute("UPDATE nationals SET returned_at = now() - interval '400 days' WHERE id = %s", (old["id"],))

    purge_returned_task.delay()  # REGISTRY_RETENTION_RETURNED_DAYS defaults to 365
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        db.session.rollback()
        if db.session.execute(text("SELECT erased_at FROM nationals WHERE id = :id"), {"id": old["id"]}).scalar():
            break
        time.sleep(0.1)
    rows = dict(db.session.execute(text("SELECT id::text, family_name FROM nationals")).all())
    assert rows == {old["id"]: None, recent["id"]: "Dela Cruz", abroad["id"]: "Dela Cruz"}
    purged = events(db, action="retention.purge_returned")
    assert [e["object_ids"] for e in purged] == [[uuid.UUID(old["id"])]]
    assert client.get(f"/api/v1/nationals/{old['id']}", headers=desk).status_code == 404


def test_returning_and_leaving_again_clears_the_retention_clock(client, desk, db):
    national = register(client, desk)
    client.patch(f"/api/v1/nationals/{national['id']}", json={"status": "returned"}, headers=desk)
    assert db.session.execute(text("SELECT returned_at IS NOT NULL FROM nationals")).scalar()
    client.patch(f"/api/v1/nationals/{national['id']}", json={"status": "abroad"}, headers=desk)
    db.session.rollback()
    assert db.session.execute(text("SELECT returned_at FROM nationals")).scalar() is None


def test_an_upload_waiting_for_its_worker_is_stored_encrypted(db, make_user):
    from registry.auth.models import User
    from registry.imports.services import create_import
    from tests.test_imports import csv_bytes, row
    user_id, _ = make_user("desk")
    job = create_import("agency.csv", csv_bytes([row(passport_number="P6161616F")]), db.session.get(User, user_id))
    stored = db.session.execute(text("SELECT data FROM import_files WHERE job_id = :id"), {"id": job.id}).scalar()
    assert b"P6161616F" not in stored and b"Santos" not in stored
    db.session.rollback()
