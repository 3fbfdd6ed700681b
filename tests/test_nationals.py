"""The nationals API (SPEC §4, §4.2): registration, reads, lists, search, updates, erasure."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import count, national_body


def create(client, headers, **changes):
    return client.post("/api/v1/nationals", json=national_body(**changes), headers=headers)


def test_register_returns_the_stored_national_with_its_point(client, desk):
    response = create(client, desk)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/nationals/{body['id']}"
    assert body["family_name"] == "Dela Cruz" and body["deployment"]["city"] == "Dubai"
    assert body["location"]["source"] == "gps" and body["location"]["precision_m"] == 50
    assert (body["location"]["lat"], body["location"]["lon"]) == (25.1124, 55.198)
    assert body["status"] == "abroad" and body["source"] == "departure_desk"
    assert body["household_id"] and body["possible_duplicates"] == []
    assert body["next_of_kin"]["phone"] == "+639171234567"
    assert response.headers["Cache-Control"] == "no-store"
    read = client.get(f"/api/v1/nationals/{body['id']}", headers=desk).get_json()
    assert read["passport_number"] == "P1234567A" and read["vulnerabilities"] == ["pregnant"]


def test_without_location_or_city_the_host_country_point_is_used(client, desk):
    body = create(client, desk, location=None, deployment={"host_country": "AE"}).get_json()
    location = body["location"]
    assert location["source"] == "country_centroid"
    assert 22 < location["lat"] < 26.5 and 51 < location["lon"] < 56.5  # inside the UAE
    assert location["precision_m"] > 50_000


def test_without_location_the_host_city_is_geocoded(client, desk):
    body = create(client, desk, location=None, deployment={"host_country": "SA", "city": "Jiddah"}).get_json()
    assert body["location"]["source"] == "geocoded_city"
    assert abs(body["location"]["lat"] - 21.54) < 0.1 and abs(body["location"]["lon"] - 39.17) < 0.1
    assert 2000 <= body["location"]["precision_m"] <= 30000
    assert body["geocoding"]["matched"]["name"] == "Jeddah"


def test_an_unknown_city_falls_back_to_the_country_point_and_says_so(client, desk):
    body = create(client, desk, location=None, deployment={"host_country": "AE", "city": "Atlantis"}).get_json()
    assert body["location"]["source"] == "country_centroid"
    assert body["geocoding"] == {"query": "Atlantis", "matched": None, "fuzzy": False, "alternatives": []}


@pytest.mark.parametrize("written, stored", [
    ("+971 50 123 4567", "+971501234567"), ("+63 (0) 917 123 4567", "+639171234567"),
    ("+44 07911 123456", "+447911123456"), ("+39 06 1234 5678", "+390612345678"),
])
def test_phones_are_stored_in_e164(client, desk, written, stored):
    body = create(client, desk, phones=[written]).get_json()
    assert body["phones"] == [stored]


def test_only_the_required_fields_are_needed(client, desk):
    body = {"family_name": "Santos", "given_names": "Jun", "sex": "M", "date_of_birth": "1985-01-01",
            "nationality": "PH", "deployment": {"host_country": "QA"}}
    response = client.post("/api/v1/nationals", json=body, headers=desk)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["deployment"]["legal_status"] == "unknown"


def test_same_passport_and_nationality_is_a_409_naming_the_existing_record(client, desk, db):
    first = create(client, desk).get_json()
    again = create(client, desk, passport_number="p 1234567-a", family_name="Other")
    assert again.status_code == 409
    problem = again.get_json()
    assert again.mimetype == "application/problem+json"
    assert problem["code"] == "duplicate-passport" and problem["existing_id"] == first["id"]
    assert count(db, "nationals") == 1


def test_likely_duplicates_are_reported_not_refused(client, desk):
    first = create(client, desk).get_json()
    second = create(client, desk, passport_number=None, given_names="María  Luisa", phones=["+971501234567"])
    assert second.status_code == 201
    reported = second.get_json()["possible_duplicates"]
    assert reported == [{"id": first["id"], "reasons": ["same_names_and_birth_date", "same_phone"]}]


def test_an_embassy_officer_is_told_of_likely_duplicates_in_their_jurisdiction_only(client, desk, make_user):
    """Found past row-level security by duplicate_national_ids (migration 0026), with the caller's reach
    applied inside: the same person registered in Qatar is reported to the desk, not to the AE embassy."""
    in_qatar = create(client, desk, passport_number=None, location=None,
                      deployment={"host_country": "QA", "city": "Doha"}).get_json()
    in_dubai = create(client, desk, passport_number=None, phones=["+971509999999"]).get_json()
    assert in_dubai["possible_duplicates"] == [{"id": in_qatar["id"], "reasons": ["same_names_and_birth_date"]}]
    _, embassy = make_user("embassy", ["AE"])
    again = create(client, embassy, passport_number=None, phones=["+971501234567"])
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["possible_duplicates"] == [{"id": in_dubai["id"],
                                                         "reasons": ["same_names_and_birth_date"]}]
    other = create(client, embassy, passport_number=None, family_name="Reyes", phones=["+971509999999"])
    assert other.get_json()["possible_duplicates"] == [{"id": in_dubai["id"], "reasons": ["same_phone"]}]


def test_idempotency_key_replays_the_same_answer_once(client, desk, db):
    headers = {**desk, "Idempotency-Key": "desk-42-row-7"}
    first = create(client, headers)
    replay = create(client, headers)
    assert first.status_code == replay.status_code == 201
    assert replay.get_json()["id"] == first.get_json()["id"]
    assert count(db, "nationals") == 1
    other_body = create(client, headers, family_name="Reyes")
    assert other_body.status_code == 422 and other_body.get_json()["code"] == "idempotency-key-reused"


@pytest.mark.parametrize("changes, field_path", [
    ({"nationality": "XX"}, ("nationality",)),
    ({"phones": ["+97150"]}, ("phones", "0")),
    ({"phones": ["0501234567"]}, ("phones", "0")),
    ({"date_of_birth": "2999-01-01"}, ("date_of_birth",)),
    ({"date_of_birth": "12/04/1990"}, ("date_of_birth",)),
    ({"sex": "female"}, ("sex",)),
    ({"vulnerabilities": ["brave"]}, ("vulnerabilities", "0")),
    ({"family_name": "x" * 201}, ("family_name",)),
    ({"family_name": 42}, ("family_name",)),
    ({"email": "not-an-email"}, ("email",)),
    ({"passport_number": "P1"}, ("passport_number",)),
    ({"location": {"lat": 95, "lon": 55}}, ("location", "lat")),
    ({"location": {"lat": 25, "lon": -181}}, ("location", "lon")),
    ({"location": {"lat": "north", "lon": 55}}, ("location", "lat")),
    ({"favourite_colour": "blue"}, ("favourite_colour",)),
    ({"deployment": {"host_country": "ZZ"}}, ("deployment", "host_country")),
    ({"deployment": {"host_country": "AE", "occupation_isco": "9999"}}, ("deployment", "occupation_isco")),
    ({"deployment": {"host_country": "AE", "contract_start": "2025-01-01", "contract_end": "2024-01-01"}},
     ("deployment", "contract_end")),
    ({"deployment": None}, ("deployment",)),
])
def test_invalid_fields_are_a_422_naming_the_field(client, desk, db, changes, field_path):
    response = create(client, desk, **changes)
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert response.mimetype == "application/problem+json" and problem["code"] == "validation-error"
    errors = problem["errors"]
    for key in field_path:
        errors = errors[key if not key.isdigit() else int(key) if int(key) in errors else key]
    assert errors and all(isinstance(m, str) for m in errors)
    assert count(db, "nationals") == 0


def test_missing_required_fields_are_all_listed(client, desk):
    response = client.post("/api/v1/nationals", json={"deployment": {}}, headers=desk)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert {"family_name", "given_names", "sex", "date_of_birth", "nationality"} <= set(errors)
    assert "host_country" in errors["deployment"]


def test_malformed_json_is_a_400(client, desk):
    response = client.post("/api/v1/nationals", data='{"family_name": ', headers={**desk, "Content-Type":
                                                                                 "application/json"})
    assert response.status_code == 400
    assert response.get_json()["code"] == "malformed-json"


def test_a_json_array_body_is_a_400(client, desk):
    response = client.post("/api/v1/nationals", data="[1, 2]", headers={**desk, "Content-Type": "application/json"})
    assert response.status_code == 400


def test_a_form_body_is_a_415(client, desk):
    response = client.post("/api/v1/nationals", data={"family_name": "x"}, headers=desk)
    assert response.status_code == 415


def test_an_oversized_body_is_a_413_and_the_service_keeps_answering(client, desk, db):
    huge = json.dumps(national_body(address="x" * 400_000))
    response = client.post("/api/v1/nationals", data=huge, headers={**desk, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert create(client, desk).status_code == 201


def test_list_filters_and_cursor_pagination(client, desk):
    for i in range(5):
        create(client, desk, passport_number=f"P000000{i}", deployment={"host_country": "AE", "city": "Dubai"})
    for i in range(3):
        create(client, desk, passport_number=f"Q000000{i}", vulnerabilities=[], location=None,
               deployment={"host_country": "QA", "city": "Doha"})
    page = client.get("/api/v1/nationals?host_country=AE&limit=2", headers=desk).get_json()
    assert page["total"] == 5 and len(page["items"]) == 2 and page["next_cursor"]
    seen = [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"/api/v1/nationals?host_country=AE&limit=2&cursor={page['next_cursor']}",
                          headers=desk).get_json()
        seen += [item["id"] for item in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert client.get("/api/v1/nationals?city=doha", headers=desk).get_json()["total"] == 3
    assert client.get("/api/v1/nationals?vulnerability=pregnant", headers=desk).get_json()["total"] == 5
    assert client.get("/api/v1/nationals?status=returned", headers=desk).get_json()["total"] == 0


@pytest.mark.parametrize("query, status", [
    ("limit=0", 422), ("limit=1001", 422), ("limit=ten", 422), ("status=lost", 422),
    ("host_country=XX", 422), ("cursor=not-a-cursor", 400), ("colour=blue", 422),
])
def test_bad_list_parameters_are_refused(client, desk, query, status):
    response = client.get(f"/api/v1/nationals?{query}", headers=desk)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("query", ["maria dela cruz", "DELA CRUZ, María", "cruz maria luisa", "Dela Kruz Maria"])
def test_search_tolerates_accents_case_word_order_and_typos(client, desk, query):
    target = create(client, desk, given_names="María Luisa").get_json()
    create(client, desk, family_name="Reyes", given_names="Jose", passport_number="P7654321B", phones=[])
    page = client.post("/api/v1/nationals/search", json={"q": query}, headers=desk).get_json()
    assert [item["id"] for item in page["items"]] == [target["id"]]


def test_a_name_search_pages_by_relevance_within_the_callers_reach(client, desk, make_user):
    # Embassy officers' searches go through search_national_ids (the trigram index past row-level
    # security, their reach applied inside): the same answers as the query layer would give.
    ids = {}
    places = [("AE", "Dubai", 25.1124, 55.1980)] * 3 + [("QA", "Doha", 25.2854, 51.5310)] * 2
    for n, (country, city, lat, lon) in enumerate(places):
        response = create(client, desk, passport_number=f"P55500{n:02d}A", phones=[],
                          given_names="Maria Luisa" if n != 1 else "Maria Lucia", location={"lat": lat, "lon": lon},
                          deployment={**national_body()["deployment"], "host_country": country, "city": city})
        assert response.status_code == 201, response.get_json()
        ids[n] = response.get_json()["id"]
    create(client, desk, family_name="Reyes", given_names="Jose", passport_number="P5559999B", phones=[])
    _, embassy = make_user("embassy", ["AE"])
    first = client.post("/api/v1/nationals/search", json={"q": "maria luisa dela cruz", "limit": 1},
                        headers=embassy).get_json()
    # The two close names (word similarity 1) fill the page: they are its rows, counted as a lower bound.
    assert (first["total"], first["total_exact"], len(first["items"])) == (2, False, 1) and first["next_cursor"]
    seen = [first["items"][0]["id"]]
    cursor, totals = first["next_cursor"], []
    while cursor:
        page = client.post("/api/v1/nationals/search", json={"q": "maria luisa dela cruz", "limit": 1,
                                                              "cursor": cursor}, headers=embassy)
        assert page.status_code == 200, page.get_json()
        seen += [item["id"] for item in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
        totals.append((page.get_json()["total"], page.get_json()["total_exact"]))
    # Past the close names, every match is read: the exact total.
    assert totals == [(3, True), (3, True)]
    assert sorted(seen) == sorted([ids[0], ids[1], ids[2]])
    assert seen[-1] == ids[1]  # the closest names first: "Maria Lucia" last
    everywhere = client.post("/api/v1/nationals/search", json={"q": "maria luisa dela cruz"}, headers=desk)
    assert everywhere.get_json()["total"] == 5
    in_qatar = client.post("/api/v1/nationals/search", json={"q": "maria dela cruz", "host_country": "QA"},
                           headers=desk)
    assert sorted(i["id"] for i in in_qatar.get_json()["items"]) == sorted([ids[3], ids[4]])
    none_here = client.post("/api/v1/nationals/search", json={"q": "maria dela cruz", "host_country": "QA"},
                            headers=embassy).get_json()
    assert none_here == {"items": [], "total": 0, "total_exact": True, "next_cursor": None}


def test_the_name_search_runs_with_room_for_its_bitmap_and_without_jit(db):
    """Migration 0027: at 10M nationals a common name's matches overflowed the default work_mem (a lossy
    bitmap: ten times the rows rechecked) and JIT cost 0.8 s a call; both are set on the function itself."""
    config = db.session.execute(
        text("SELECT proconfig FROM pg_proc WHERE proname = 'search_national_ids'")).scalar_one()
    assert {"work_mem=64MB", "jit=off"} <= set(config)


def test_the_close_names_are_read_with_their_own_similarity_and_the_callers_setting_is_left_alone(client, desk, db):
    """Migration 0030: ``min_score`` is the function's own threshold (a common name's close matches first); the
    transaction's ``pg_trgm.word_similarity_threshold`` is what it was once the function returns."""
    for n, given in enumerate(("Maria Luisa", "Maria Lucia")):
        assert create(client, desk, given_names=given, passport_number=f"P55600{n:02d}A").status_code == 201
    call = text("SELECT count(*) FROM search_national_ids('maria luisa dela cruz', NULL, NULL, NULL, NULL, NULL, "
                "10, 0, CAST(:min_score AS real))")
    assert db.session.execute(call, {"min_score": 0.9}).scalar_one() == 1
    assert db.session.execute(text("SHOW pg_trgm.word_similarity_threshold")).scalar_one() == "0.6"
    assert db.session.execute(call, {"min_score": 0.6}).scalar_one() == 2
    db.session.execute(text("SET LOCAL pg_trgm.word_similarity_threshold = 0.3"))
    db.session.execute(call, {"min_score": 0.9})
    assert db.session.execute(text("SHOW pg_trgm.word_similarity_threshold")).scalar_one() == "0.3"


def test_search_matches_native_script_by_transliteration(client, desk):
    target = create(client, desk, family_name="Nguyen", given_names="Van An", native_name="Нгуен Ван Ан").get_json()
    page = client.post("/api/v1/nationals/search", json={"q": "Нгуен"}, headers=desk).get_json()
    assert [item["id"] for item in page["items"]] == [target["id"]]


def test_search_by_exact_passport(client, desk):
    target = create(client, desk).get_json()
    create(client, desk, passport_number="P7654321B", family_name="Reyes")
    page = client.post("/api/v1/nationals/search", json={"passport_number": "p1234567a", "purpose": "walk-in check"},
                       headers=desk).get_json()
    assert [item["id"] for item in page["items"]] == [target["id"]]
    assert page["items"][0]["passport_number"] == "P1234567A"


def test_a_passport_search_without_a_purpose_is_a_400(client, desk):
    create(client, desk)
    response = client.post("/api/v1/nationals/search", json={"passport_number": "P1234567A"}, headers=desk)
    assert response.status_code == 400 and "purpose" in response.get_json()["errors"]
    short = client.post("/api/v1/nationals/search", json={"passport_number": "P1234567A", "purpose": "x"},
                        headers=desk)
    assert short.status_code == 422 and "purpose" in short.get_json()["errors"]


def test_search_needs_a_name_or_a_passport(client, desk):
    response = client.post("/api/v1/nationals/search", json={"host_country": "AE"}, headers=desk)
    assert response.status_code == 422 and "q" in response.get_json()["errors"]


def test_patch_updates_fields_and_the_current_deployment(client, desk):
    national = create(client, desk).get_json()
    response = client.patch(f"/api/v1/nationals/{national['id']}", headers=desk,
                            json={"phones": ["+971509876543"], "status": "returned",
                                  "deployment": {"employer": "Jumeirah Group"}})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["phones"] == ["+971509876543"] and body["status"] == "returned"
    assert body["deployment"]["employer"] == "Jumeirah Group" and body["deployment"]["city"] == "Dubai"


@pytest.mark.parametrize("patch", [
    {"deployment": {"contract_end": "2020-01-01"}},
    {"id": "00000000-0000-0000-0000-000000000000"},
    {"jurisdiction_country": "QA"},
    {"created_by": "someone"},
    {"status": "vanished"},
])
def test_bad_patches_are_refused_and_change_nothing(client, desk, patch):
    national = create(client, desk).get_json()
    response = client.patch(f"/api/v1/nationals/{national['id']}", json=patch, headers=desk)
    assert response.status_code == 422, response.get_json()
    after = client.get(f"/api/v1/nationals/{national['id']}", headers=desk).get_json()
    assert after["deployment"] == national["deployment"] and after["status"] == national["status"]


def test_patch_to_another_passport_that_exists_is_a_409(client, desk):
    create(client, desk)
    other = create(client, desk, passport_number="P7654321B").get_json()
    response = client.patch(f"/api/v1/nationals/{other['id']}", json={"passport_number": "P1234567A"}, headers=desk)
    assert response.status_code == 409


def test_erasure_removes_personal_data_and_keeps_a_stub(client, desk, db):
    national = create(client, desk).get_json()
    assert client.delete(f"/api/v1/nationals/{national['id']}", headers=desk).status_code == 204
    assert client.get(f"/api/v1/nationals/{national['id']}", headers=desk).status_code == 404
    row = db.session.execute(text("SELECT family_name, passport_ciphertext, passport_index, phones, location, "
                                  "nationality FROM nationals WHERE id = :id"), {"id": national["id"]}).one()
    assert row == (None, None, None, [], None, "PH")
    assert count(db, "location_reports") == 0 and count(db, "next_of_kin") == 0
    assert create(client, desk).status_code == 201  # the passport is free again


def test_location_reports_keep_history_and_the_newest_is_current(client, desk, db):
    national = create(client, desk).get_json()
    url = f"/api/v1/nationals/{national['id']}/locations"
    newer = client.post(url, json={"lat": 24.45, "lon": 54.38}, headers=desk)
    assert newer.status_code == 201 and newer.get_json()["location"]["lat"] == 24.45
    older = client.post(url, json={"lat": 25.3, "lon": 55.4, "precision_m": 3000, "source": "geocoded_city",
                                   "reported_at": "2025-06-01T00:00:00Z"}, headers=desk)
    assert older.status_code == 201 and older.get_json()["location"]["lat"] == 24.45
    assert count(db, "location_reports") == 3
    bad = client.post(url, json={"lat": 24.45}, headers=desk)
    assert bad.status_code == 422 and "lon" in bad.get_json()["errors"]


def test_household_id_joins_an_existing_household(client, desk):
    first = create(client, desk).get_json()
    second = create(client, desk, passport_number="P7654321B", household_id=first["household_id"]).get_json()
    assert second["household_id"] == first["household_id"]
    unknown = create(client, desk, passport_number="P7654321C", household_id="6f1c1a40-2a1b-4a39-9c39-1f0b5d6b2a11")
    assert unknown.status_code == 422 and "household_id" in unknown.get_json()["errors"]


def test_unknown_national_is_a_404_problem(client, desk):
    response = client.get("/api/v1/nationals/6f1c1a40-2a1b-4a39-9c39-1f0b5d6b2a11", headers=desk)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert client.get("/api/v1/nationals/not-a-uuid", headers=desk).status_code == 404


def test_a_passport_registered_concurrently_is_a_409_not_a_500(client, desk, db):
    """The unique index catches what the service's check cannot see: a row inserted meanwhile."""
    from sqlalchemy.exc import IntegrityError

    from registry.web.problems import from_integrity_error
    from registry.crypto import keyring
    first = create(client, desk).get_json()
    with pytest.raises(IntegrityError) as caught:
        db.session.execute(text("INSERT INTO nationals (id, nationality, passport_index, household_id, "
                                "jurisdiction_country) VALUES (gen_random_uuid(), 'PH', :index, "
                                "gen_random_uuid(), 'AE')"), {"index": keyring().blind_index("passport", "P1234567A")})
    db.session.rollback()
    error = from_integrity_error(caught.value)
    assert (error.status, error.code) == (409, "duplicate-passport")
    assert "P1234567A" not in json.dumps(error.to_dict())
    assert client.get(f"/api/v1/nationals/{first['id']}", headers=desk).status_code == 200
