"""The audit trail: what is recorded, who may read it, and that tampering is detected."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import national_body, owner_connection
from tests.test_service import run_cli


def events(db, **where) -> list[dict]:
    db.session.rollback()  # see what the requests committed
    rows = db.session.execute(text("SELECT * FROM audit_events ORDER BY id")).mappings().all()
    return [dict(r) for r in rows if all(r[k] == v for k, v in where.items())]


def register(client, headers, **changes) -> dict:
    response = client.post("/api/v1/nationals", json=national_body(**changes), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_reads_lists_searches_and_changes_are_recorded_with_actor_ids_and_purpose(client, make_user, db):
    desk_id, desk = make_user("desk")
    national = register(client, desk)
    client.get(f"/api/v1/nationals/{national['id']}?purpose=welfare%20check", headers=desk)
    client.get("/api/v1/nationals?host_country=AE", headers=desk)
    client.post("/api/v1/nationals/search", json={"passport_number": "P1234567A", "purpose": "walk-in at embassy"},
                headers=desk)
    client.patch(f"/api/v1/nationals/{national['id']}", json={"email": "new@example.org"}, headers=desk)
    client.delete(f"/api/v1/nationals/{national['id']}", headers=desk)

    recorded = {e["action"]: e for e in events(db, actor_id=desk_id)}
    assert set(recorded) >= {"nationals.create_national", "nationals.get_national", "nationals.list_nationals",
                             "nationals.search_nationals", "nationals.update_national", "nationals.erase_national"}
    for event in recorded.values():
        assert event["actor_role"] == "desk" and event["outcome"] == "ok" and event["at"].tzinfo is not None
    assert recorded["nationals.get_national"]["object_ids"] == [national_id(national)]
    assert recorded["nationals.get_national"]["purpose"] == "welfare check"
    assert recorded["nationals.list_nationals"]["result_count"] == 1
    assert recorded["nationals.list_nationals"]["details"]["filters"] == ["host_country"]
    assert recorded["nationals.search_nationals"]["purpose"] == "walk-in at embassy"
    assert recorded["nationals.search_nationals"]["object_ids"] == [national_id(national)]
    assert recorded["nationals.update_national"]["details"]["fields"] == ["email"]


def national_id(national: dict):
    import uuid
    return uuid.UUID(national["id"])


def test_refusals_are_recorded(client, make_user, desk, db):
    national = register(client, desk)
    other = register(client, desk, passport_number="P7000001Q",
                     deployment={**national_body()["deployment"], "host_country": "QA", "city": "Doha"},
                     location={"lat": 25.2854, "lon": 51.531})
    coordinator_id, coordinator = make_user("coordinator")
    embassy_id, embassy = make_user("embassy", ["AE"])
    assert client.post("/api/v1/nationals", json=national_body(passport_number="P1"), headers=coordinator) \
        .status_code == 403
    assert client.get(f"/api/v1/nationals/{other['id']}", headers=embassy).status_code == 404
    assert client.get(f"/api/v1/nationals/{national['id']}", headers={"Authorization": "Bearer sgp_nope"}) \
        .status_code == 401

    assert [e["outcome"] for e in events(db, actor_id=coordinator_id)] == ["denied"]
    refused = events(db, actor_id=embassy_id)
    assert [(e["outcome"], e["object_ids"]) for e in refused] == [("not_found", [national_id(other)])]
    # A refusal before anyone is known is counted per address and minute, not recorded call by call.
    assert events(db, actor_id=None, action="nationals.get_national") == []
    assert refused_calls(db) == [(401, 1)]
    fold(db)
    [folded] = events(db, action="refused_calls")
    assert (folded["outcome"], folded["result_count"], folded["details"]["status"]) == ("unauthenticated", 1, 401)
    assert refused_calls(db) == []


def refused_calls(db) -> list[tuple[int, int]]:
    db.session.rollback()
    return [tuple(r) for r in db.session.execute(text(
        "SELECT status, calls FROM audit_refused_calls ORDER BY status")).all()]


def fold(db) -> int:
    """Fold every counted minute, the current one included (the sealing task folds finished minutes)."""
    from datetime import datetime, timedelta, timezone

    from registry.audit.services import fold_refused_calls
    folded = fold_refused_calls(until=datetime.now(timezone.utc) + timedelta(minutes=1))
    db.session.commit()
    return folded


def test_a_flood_of_bogus_tokens_adds_a_row_per_address_and_minute_not_per_call(client, db, app):
    before = db.session.execute(text("SELECT count(*) FROM audit_events")).scalar()
    limit = app.config["REGISTRY_AUTH_FAILURES_PER_MINUTE"]
    statuses = [client.get("/api/v1/nationals", headers={"Authorization": f"Bearer sgp_bogus{i}"}).status_code
                for i in range(limit + 40)]
    assert set(statuses) == {401, 429}  # past the limit of failed authentications per address, 429s
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*) FROM audit_events")).scalar() == before
    counted = refused_calls(db)
    assert len(counted) <= 4  # a row per status and minute (the calls may straddle a minute)
    assert {status: sum(n for s, n in counted if s == status) for status in (401, 429)} == \
        {status: statuses.count(status) for status in (401, 429)}
    assert fold(db) == len(counted)  # one event per address, status and minute, each with its count
    assert sum(e["result_count"] for e in events(db, action="refused_calls")) == len(statuses)


def test_events_never_hold_the_personal_data(client, desk, db):
    national = register(client, desk)
    client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    client.post("/api/v1/nationals/search", json={"q": "Dela Cruz Maria"}, headers=desk)
    client.post("/api/v1/nationals/search", json={"passport_number": "P1234567A", "purpose": "check"}, headers=desk)
    trail = json.dumps(events(db), default=str)
    for personal in ("Dela Cruz", "Maria", "P1234567A", "+971501234567", "maria@example.org", "1990-04-12"):
        assert personal not in trail


def test_auditors_read_the_trail_with_filters_and_others_may_not(client, make_user, db):
    desk_id, desk = make_user("desk")
    national = register(client, desk)
    client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    _, auditor = make_user("auditor")

    page = client.get(f"/api/v1/audit?object_id={national['id']}", headers=auditor).get_json()
    assert [e["action"] for e in page["items"]] == ["nationals.get_national", "nationals.create_national"]
    assert page["total"] == 2
    by_actor = client.get(f"/api/v1/audit?actor={desk_id}&action=nationals.get_national", headers=auditor).get_json()
    assert by_actor["total"] == 1 and by_actor["items"][0]["actor_id"] == str(desk_id)
    assert client.get("/api/v1/audit?since=2999-01-01T00:00:00Z", headers=auditor).get_json()["total"] == 0
    assert client.get("/api/v1/audit?until=2000-01-01T00:00:00Z", headers=auditor).get_json()["total"] == 0
    first = client.get("/api/v1/audit?limit=1", headers=auditor).get_json()
    second = client.get(f"/api/v1/audit?limit=1&cursor={first['next_cursor']}", headers=auditor).get_json()
    assert second["items"][0]["id"] < first["items"][0]["id"]

    assert client.get("/api/v1/audit", headers=desk).status_code == 403
    assert client.get("/api/v1/audit?since=yesterday", headers=auditor).status_code == 422
    assert client.get("/api/v1/audit?cursor=garbage", headers=auditor).status_code == 400
    assert any(e["action"] == "audit.list_events" for e in events(db))


def test_the_application_role_may_not_change_or_delete_events(client, desk, db):
    register(client, desk)
    from sqlalchemy.exc import ProgrammingError
    for statement in ("UPDATE audit_events SET purpose = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"):
        with pytest.raises(ProgrammingError, match="permission denied|append-only"):
            db.session.execute(text(statement))
        db.session.rollback()


# --------------------------------------------------------------------- the hash chain

def seal(db) -> int:
    from registry.audit import services
    return services.seal_all()


def verify_cli():
    return run_cli("audit", "verify")


@pytest.fixture
def sealed_trail(client, desk, db):
    """Twelve sealed events: the ids, in chain order."""
    national = register(client, desk)
    for _ in range(11):
        client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    assert seal(db) == 12
    ids = [row[0] for row in db.session.execute(text("SELECT id FROM audit_events ORDER BY chain_seq"))]
    db.session.rollback()  # hold no lock: the tampering tests change the table from another connection
    return ids


def test_an_intact_trail_verifies_and_late_events_join_the_chain(client, desk, db, sealed_trail):
    national = register(client, desk, passport_number="P7777777Z")
    client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    result = verify_cli()
    assert result.returncode == 0, result.stderr
    assert "12 sealed entries verified" in result.stdout and "not sealed yet" in result.stdout
    assert seal(db) >= 2 and seal(db) == 0
    assert verify_cli().returncode == 0


def test_the_chain_verifies_whatever_the_readers_time_zone(sealed_trail):
    """Events are hashed with their time in UTC: a session in another time zone reads the same chain."""
    result = run_cli("audit", "verify", env={"PGTZ": "Asia/Manila"})
    assert result.returncode == 0, result.stderr


TAMPERING = {
    # mode: (SQL run by the owner with the trigger off, what `audit verify` names as the first bad entry)
    "edit": ("UPDATE audit_events SET purpose = 'nothing to see' WHERE id = {ids[4]}", "event id {ids[4]};"),
    "delete": ("DELETE FROM audit_events WHERE id = {ids[4]}",
               "chain entry 5 (missing; the next present is event id {ids[5]})"),
    "reorder": ("UPDATE audit_events SET chain_seq = CASE id WHEN {ids[4]} THEN 6 ELSE 5 END "
                "WHERE id IN ({ids[4]}, {ids[5]})", "event id {ids[5]};"),
    "truncate": ("DELETE FROM audit_events WHERE id IN ({ids[10]}, {ids[11]})",
                 "chain entry 11 (missing; the last present is event id {ids[9]})"),
}


@pytest.mark.parametrize("mode", sorted(TAMPERING))
def test_tampering_is_detected_and_the_first_bad_entry_named(db, sealed_trail, mode):
    statement, named = TAMPERING[mode]
    with owner_connection() as owner:
        owner.execute("SET session_replication_role = replica")  # a superuser switching the trigger off
        if mode == "reorder":
            owner.execute("DROP INDEX uq_audit_events_chain_seq")
        try:
            owner.execute(statement.format(ids=sealed_trail))
        finally:
            if mode == "reorder":
                owner.execute("CREATE UNIQUE INDEX uq_audit_events_chain_seq ON audit_events (chain_seq)")
    result = verify_cli()
    assert result.returncode == 1, result.stdout
    assert "BROKEN" in result.stderr
    assert f"first bad entry: {named.format(ids=sealed_trail)}" in result.stderr, result.stderr
