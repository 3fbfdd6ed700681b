"""Bearer tokens: required everywhere but health and the API document; roles enforced."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from tests.conftest import national_body


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwdw=="},
                                     {"Authorization": "Bearer sgp_not-a-real-token"},
                                     {"Authorization": "Bearer " + "x" * 5000}])
def test_calls_without_a_valid_token_are_401(client, headers):
    response = client.get("/api/v1/nationals", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/docs"])
def test_health_and_the_api_document_need_no_token(client, path):
    assert client.get(path).status_code == 200


def test_expired_and_revoked_tokens_are_refused(client, make_user, db):
    user_id, headers = make_user("desk")
    assert client.get("/api/v1/nationals", headers=headers).status_code == 200
    db.session.execute(text("UPDATE api_tokens SET expires_at = :t WHERE user_id = :u"),
                       {"t": datetime.now(timezone.utc) - timedelta(seconds=1), "u": user_id})
    db.session.commit()
    assert client.get("/api/v1/nationals", headers=headers).status_code == 401
    db.session.execute(text("UPDATE api_tokens SET expires_at = now() + interval '1 day', revoked_at = now()"))
    db.session.commit()
    assert client.get("/api/v1/nationals", headers=headers).status_code == 401


def test_disabled_user_is_refused_at_once(client, make_user, db):
    user_id, headers = make_user("desk")
    db.session.execute(text("UPDATE users SET active = false WHERE id = :u"), {"u": user_id})
    db.session.commit()
    assert client.get("/api/v1/nationals", headers=headers).status_code == 401


def test_tokens_are_stored_only_as_keyed_hashes(make_user, db):
    _, headers = make_user("desk")
    token = headers["Authorization"].split()[1]
    stored = db.session.execute(text("SELECT token_hash FROM api_tokens")).scalar()
    assert len(stored) == 32 and token.encode() not in stored
    assert len(token) >= 40  # 256 random bits, url-safe


@pytest.mark.parametrize("role, method, path, status", [
    ("coordinator", "post", "/api/v1/nationals", 403),
    ("auditor", "get", "/api/v1/nationals", 403),
    ("auditor", "post", "/api/v1/nationals/search", 403),
    ("coordinator", "post", "/api/v1/imports", 403),
    ("embassy", "post", "/api/v1/imports", 403),
    ("coordinator", "get", "/api/v1/nationals", 200),
])
def test_roles_are_enforced(client, make_user, role, method, path, status):
    _, headers = make_user(role, ["AE"] if role == "embassy" else ())
    response = getattr(client, method)(path, headers=headers, json={"q": "x"} if method == "post" else None)
    assert response.status_code == status


def test_embassy_officer_registers_walk_ins_only_in_jurisdiction(client, make_user):
    _, embassy = make_user("embassy", ["AE"])
    inside = client.post("/api/v1/nationals", json=national_body(), headers=embassy)
    assert inside.status_code == 201 and inside.get_json()["source"] == "embassy"
    outside = client.post("/api/v1/nationals", headers=embassy,
                          json=national_body(passport_number="P7654321B", deployment={"host_country": "QA"}))
    assert outside.status_code == 403


def test_embassy_officer_cannot_see_other_jurisdiction(client, make_user, desk):
    qatar = client.post("/api/v1/nationals", headers=desk,
                        json=national_body(deployment={"host_country": "QA"}, location=None)).get_json()
    _, embassy = make_user("embassy", ["AE"])
    assert client.get(f"/api/v1/nationals/{qatar['id']}", headers=embassy).status_code == 404
    assert client.get("/api/v1/nationals", headers=embassy).get_json()["total"] == 0
    found = client.post("/api/v1/nationals/search", json={"q": "dela cruz"}, headers=embassy).get_json()
    assert found["total"] == 0
    again = client.post("/api/v1/nationals", headers=embassy, json=national_body())
    assert again.status_code == 409 and "existing_id" not in again.get_json()
    dubai = client.post("/api/v1/nationals", headers=desk, json=national_body(passport_number="P7654321B")).get_json()
    listed = client.get("/api/v1/nationals", headers=embassy).get_json()
    assert [item["id"] for item in listed["items"]] == [dubai["id"]] and listed["total"] == 1
    found = client.post("/api/v1/nationals/search", json={"q": "dela cruz"}, headers=embassy).get_json()
    assert [item["id"] for item in found["items"]] == [dubai["id"]]
    assert client.get(f"/api/v1/nationals/{dubai['id']}", headers=embassy).status_code == 200
