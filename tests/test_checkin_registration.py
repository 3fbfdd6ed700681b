"""Self-registration during a crisis and the verification queue (SPEC §10)."""
from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.conftest import count, make_app, national_body
from tests.test_authorization_matrix import settle
from tests.test_checkin import CRISIS, DUBAI, declare, form_token

FORM = {"family_name": "Santos", "given_names": "Rowena", "date_of_birth": "1994-02-03", "phone": "+971 55 123 4567",
        "passport_number": "", "national_id_number": "", "lat": str(DUBAI["lat"]), "lon": str(DUBAI["lon"]),
        "accuracy_m": "40", "where": "", "sex": "F"}


@pytest.fixture
def crisis(client, db, admin, celery_worker):
    crisis_id = declare(client, admin)
    opened = client.patch(f"/api/v1/crises/{crisis_id}", json={"self_registration": True}, headers=admin)
    assert opened.status_code == 200 and opened.get_json()["self_registration"] is True
    yield SimpleNamespace(id=crisis_id, path=f"/checkin/register/{crisis_id}", admin=admin)
    settle(db)


def register(client, path, **fields):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    body = {**FORM, "form_token": form_token(page.get_data(as_text=True)), **fields}
    return client.post(path, data={k: v for k, v in body.items() if v is not None})


def unverified(db) -> list:
    db.session.rollback()
    return db.session.execute(text(
        "SELECT n.id, n.status, n.source, n.nationality, n.jurisdiction_country, n.location_source, "
        "n.passport_index IS NOT NULL, s.crisis_id, s.passport_holder_id FROM nationals n "
        "JOIN self_registrations s ON s.national_id = n.id ORDER BY n.created_at")).all()


def test_the_page_is_404_unless_the_crisis_is_active_and_allows_it(client, db, admin, celery_worker):
    crisis_id = declare(client, admin)
    assert client.get(f"/checkin/register/{crisis_id}").status_code == 404
    assert client.get(f"/checkin/register/{uuid.uuid4()}").status_code == 404
    client.patch(f"/api/v1/crises/{crisis_id}", json={"self_registration": True}, headers=admin)
    assert client.get(f"/checkin/register/{crisis_id}").status_code == 200
    client.patch(f"/api/v1/crises/{crisis_id}", json={"status": "closed"}, headers=admin)
    assert client.get(f"/checkin/register/{crisis_id}").status_code == 404
    settle(db)


def test_only_coordinators_and_admins_turn_it_on(client, make_user, crisis):
    _, embassy = make_user("embassy", ["AE"])
    response = client.patch(f"/api/v1/crises/{crisis.id}", json={"self_registration": False}, headers=embassy)
    assert response.status_code == 403


def test_a_registration_creates_an_unverified_national_of_the_points_country(client, db, crisis):
    response = register(client, crisis.path)
    assert response.status_code == 200, response.get_data(as_text=True)
    [(national_id, status, source, nationality, country, location_source, indexed, crisis_id, holder)] = \
        unverified(db)
    assert (status, source, nationality, country, location_source) == ("unverified", "self_registration", "PH",
                                                                      "AE", "self_report")
    assert str(crisis_id) == crisis.id and holder is None
    stored = client.get(f"/api/v1/nationals/{national_id}", headers=crisis.admin).get_json()
    assert stored["phones"] == ["+971551234567"] and stored["sex"] == "F"
    assert stored["deployment"]["host_country"] == "AE"


def test_without_a_point_the_crisis_country_is_used(client, db, crisis):
    response = register(client, crisis.path, lat="", lon="", accuracy_m="", where="Dubai", passport_number="P7654321C",
                        national_id_number="ID-55-12")
    assert response.status_code == 200
    [row] = unverified(db)
    assert row.jurisdiction_country == "AE" and row.location_source == "geocoded_city" and row[6] is True
    stored = client.get(f"/api/v1/nationals/{row.id}", headers=crisis.admin).get_json()
    assert stored["passport_number"] == "P7654321C" and stored["national_id_number"] == "ID-55-12"
    assert stored["deployment"]["address"] == "Dubai"


def test_a_registered_passport_is_neither_merged_nor_revealed(client, db, desk, crisis):
    existing = client.post("/api/v1/nationals", json=national_body(), headers=desk).get_json()["id"]
    fresh = register(client, crisis.path, passport_number="P7000001A")
    again = register(client, crisis.path, passport_number="P1234567A", given_names="Maria Luisa",
                     family_name="Dela Cruz")
    assert again.status_code == fresh.status_code == 200
    # The same page either way: nothing tells an anonymous person the passport is registered, or whose it is.
    assert again.get_data(as_text=True).replace("Dela Cruz", "") == fresh.get_data(as_text=True)
    rows = unverified(db)
    assert len(rows) == 2 and str(rows[1].passport_holder_id) == existing and rows[1][6] is False
    assert count(db, "nationals") == 3


def test_bad_input_is_shown_beside_each_field_and_nothing_is_stored(client, db, crisis):
    response = register(client, crisis.path, family_name="", given_names=" ", date_of_birth="03/02/1994",
                        lat="123", phone="0551234567", passport_number="P!", sex="Q")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("family_name", "given_names", "date_of_birth", "lat", "phone", "passport_number", "sex"):
        assert f'id="{field}-error"' in html, field
        assert re.search(f'aria-describedby="[^"]*{field}-error', html) or field == "lat", field
    assert 'value="0551234567"' in html  # what was typed stays
    nowhere = register(client, crisis.path, lat="", lon="", where="")
    assert nowhere.status_code == 422 and 'id="where-error"' in nowhere.get_data(as_text=True)
    future = register(client, crisis.path, date_of_birth="2990-01-01")
    assert future.status_code == 422
    at_sea = register(client, crisis.path, lat="20.0", lon="62.0")
    assert at_sea.status_code == 422
    assert unverified(db) == [] and count(db, "nationals") == 0


def test_registrations_are_capped_per_address(db, crisis):
    capped = make_app(REGISTRY_SELF_REGISTRATIONS_PER_HOUR=1)
    client = capped.test_client()
    assert register(client, crisis.path).status_code == 200
    refused = register(client, crisis.path, phone="+971 55 765 4321")
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert len(unverified(db)) == 1


def test_registrations_are_capped_per_crisis(db, crisis):
    capped = make_app(REGISTRY_SELF_REGISTRATIONS_PER_CRISIS_HOUR=1)
    client = capped.test_client()
    assert register(client, crisis.path).status_code == 200
    other_address = {"REMOTE_ADDR": "10.1.2.3"}
    page = client.get(crisis.path, environ_base=other_address)
    refused = client.post(crisis.path, environ_base=other_address,
                          data={**FORM, "form_token": form_token(page.get_data(as_text=True))})
    assert refused.status_code == 429


# ---------------------------------------------------------------------- the verification queue

def queue(client, headers) -> dict:
    response = client.get("/api/v1/verification", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_queue_shows_each_self_registration_with_its_likely_duplicates(client, db, desk, make_user, crisis):
    existing = client.post("/api/v1/nationals", json=national_body(phones=["+971551234567"]),
                           headers=desk).get_json()["id"]
    assert register(client, crisis.path).status_code == 200
    _, embassy_ae = make_user("embassy", ["AE"])
    _, embassy_qa = make_user("embassy", ["QA"])
    _, coordinator = make_user("coordinator")
    page = queue(client, embassy_ae)
    assert page["total"] == 1
    [entry] = page["items"]
    assert entry["national"]["given_names"] == "Rowena" and entry["crisis"]["name"] == CRISIS["name"]
    assert [(d["id"], d["reasons"]) for d in entry["duplicates"]] == [(existing, ["same_phone"])]
    assert queue(client, coordinator)["total"] == 1
    assert queue(client, embassy_qa)["total"] == 0
    hidden = client.post(f"/api/v1/verification/{entry['national']['id']}", json={"action": "verify"},
                         headers=embassy_qa)
    assert hidden.status_code == 404
    assert client.get("/api/v1/verification", headers=desk).status_code == 403


def test_verify_makes_the_record_an_ordinary_one(client, db, make_user, crisis):
    register(client, crisis.path)
    _, embassy = make_user("embassy", ["AE"])
    national_id = queue(client, embassy)["items"][0]["national"]["id"]
    response = client.post(f"/api/v1/verification/{national_id}", json={"action": "verify"}, headers=embassy)
    assert response.status_code == 200 and response.get_json()["status"] == "abroad"
    assert queue(client, embassy)["total"] == 0
    again = client.post(f"/api/v1/verification/{national_id}", json={"action": "verify"}, headers=embassy)
    assert again.status_code == 409
    assert unverified(db)[0].status == "abroad"


def test_verifying_a_registered_passport_is_refused_naming_the_holder_then_merge_works(client, db, desk, make_user,
                                                                                      crisis):
    existing = client.post("/api/v1/nationals", json=national_body(), headers=desk).get_json()["id"]
    register(client, crisis.path, passport_number="P1234567A", lat="25.3", lon="55.4", accuracy_m="15")
    _, embassy = make_user("embassy", ["AE"])
    [entry] = queue(client, embassy)["items"]
    assert entry["passport_already_registered"] is True
    assert ("same_passport_number" in next(d for d in entry["duplicates"] if d["id"] == existing)["reasons"])
    national_id = entry["national"]["id"]
    refused = client.post(f"/api/v1/verification/{national_id}", json={"action": "verify"}, headers=embassy)
    assert refused.status_code == 409 and refused.get_json()["existing_id"] == existing
    missing = client.post(f"/api/v1/verification/{national_id}", json={"action": "merge"}, headers=embassy)
    assert missing.status_code == 422 and "into" in missing.get_json()["errors"]
    merged = client.post(f"/api/v1/verification/{national_id}", json={"action": "merge", "into": existing},
                         headers=embassy)
    assert merged.status_code == 200, merged.get_json()
    assert merged.get_json()["merged_into"] == existing
    target = client.get(f"/api/v1/nationals/{existing}", headers=desk).get_json()
    assert target["phones"] == ["+971551234567", "+971501234567"]
    assert target["location"]["source"] == "self_report" and target["location"]["lat"] == pytest.approx(25.3)
    assert client.get(f"/api/v1/nationals/{national_id}", headers=desk).status_code == 404  # erased
    db.session.rollback()
    resolution = db.session.execute(text("SELECT resolution, merged_into FROM self_registrations")).one()
    assert resolution[0] == "merged" and str(resolution[1]) == existing
    event = db.session.execute(text("SELECT object_ids FROM audit_events WHERE action = 'verification.decide' "
                                    "AND outcome = 'ok'")).scalar()
    assert {str(i) for i in event} == {national_id, existing}


def test_reject_erases_the_self_registration(client, db, make_user, crisis):
    register(client, crisis.path)
    _, coordinator = make_user("coordinator")
    national_id = queue(client, coordinator)["items"][0]["national"]["id"]
    response = client.post(f"/api/v1/verification/{national_id}", json={"action": "reject"}, headers=coordinator)
    assert response.status_code == 200
    assert queue(client, coordinator)["total"] == 0
    db.session.rollback()
    row = db.session.execute(text("SELECT n.family_name, n.erased_at IS NOT NULL, s.resolution FROM nationals n "
                                  "JOIN self_registrations s ON s.national_id = n.id")).one()
    assert row == (None, True, "rejected")


def test_the_registration_page_weighs_under_50_kb(client, crisis):
    html = client.get(crisis.path).get_data()
    assets = re.findall(rb'(?:href|src)="(/checkin/static/[^"]+)"', html)
    total = len(html) + sum(len(client.get(a.decode()).get_data()) for a in assets)
    assert len(assets) == 2 and total < 50_000, total
