"""Assembly points (SPEC §4.3): created and changed by coordinators, checked against their country."""
from __future__ import annotations

import pytest

from tests.conftest import count
from tests.test_imports import wait_for_job

POINTS = "/api/v1/assembly-points"
EMBASSY = {"name": "Embassy of the Philippines, Abu Dhabi", "kind": "embassy",
           "location": {"lat": 24.4539, "lon": 54.3773}, "capacity": 400, "country": "AE", "active": True}


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


def test_a_coordinator_creates_reads_lists_and_changes_an_assembly_point(client, coordinator, make_user, db):
    created = client.post(POINTS, json=EMBASSY, headers=coordinator)
    assert created.status_code == 201, created.get_json()
    point = created.get_json()
    assert created.headers["Location"] == f"{POINTS}/{point['id']}"
    assert (point["location"], point["capacity"], point["active"]) == ({"lat": 24.4539, "lon": 54.3773}, 400, True)
    client.post(POINTS, json={**EMBASSY, "name": "Doha shelter", "kind": "shelter", "country": "QA",
                              "location": {"lat": 25.2854, "lon": 51.531}}, headers=coordinator)
    _, embassy = make_user("embassy", ["AE"])
    assert client.get(f"{POINTS}/{point['id']}", headers=embassy).get_json()["name"] == EMBASSY["name"]
    assert client.get(POINTS, headers=coordinator).get_json()["total"] == 2  # no filter: still counted
    listed = client.get(POINTS, headers=coordinator, query_string={"country": "QA"}).get_json()
    assert [p["name"] for p in listed["items"]] == ["Doha shelter"] and listed["total"] == 1
    first = client.get(POINTS, headers=coordinator, query_string={"limit": 1}).get_json()
    second = client.get(POINTS, headers=coordinator, query_string={"limit": 1, "cursor": first["next_cursor"]})
    assert second.get_json()["items"][0]["id"] != first["items"][0]["id"]
    changed = client.patch(f"{POINTS}/{point['id']}", json={"capacity": 250, "active": False}, headers=coordinator)
    assert (changed.get_json()["capacity"], changed.get_json()["active"]) == (250, False)
    assert client.get(POINTS, headers=coordinator, query_string={"active": "false"}).get_json()["total"] == 1


@pytest.mark.parametrize("changes, field", [
    ({"kind": "castle"}, "kind"), ({"capacity": -1}, "capacity"), ({"capacity": "many"}, "capacity"),
    ({"country": "XX"}, "country"), ({"location": {"lat": 95, "lon": 54}}, "location"),
    ({"name": ""}, "name"), ({"colour": "blue"}, "colour"),
])
def test_bad_assembly_points_are_422_naming_the_field(client, coordinator, db, changes, field):
    response = client.post(POINTS, json={**EMBASSY, **changes}, headers=coordinator)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()
    assert count(db, "assembly_points") == 0


def test_the_point_must_be_in_its_country(client, coordinator, db):
    swapped = client.post(POINTS, json={**EMBASSY, "location": {"lat": 54.3773, "lon": 24.4539}},
                          headers=coordinator)
    assert swapped.status_code == 422 and "swap" in swapped.get_json()["detail"]
    point = client.post(POINTS, json=EMBASSY, headers=coordinator).get_json()
    moved = client.patch(f"{POINTS}/{point['id']}", json={"country": "QA"}, headers=coordinator)
    assert moved.status_code == 422 and moved.get_json()["code"] == "invalid-location"
    assert client.get(f"{POINTS}/{point['id']}", headers=coordinator).get_json()["country"] == "AE"


def test_desk_officers_may_not_manage_assembly_points(client, desk, db):
    assert client.post(POINTS, json=EMBASSY, headers=desk).status_code == 403
    assert client.get(POINTS, headers=desk).status_code == 403
    assert count(db, "assembly_points") == 0


def import_points(client, headers, content: bytes) -> dict:
    """Upload a file of points: 202 with a job a worker runs; the finished job."""
    import io
    response = client.post(f"{POINTS}/import", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(content), "points.csv")})
    assert response.status_code == 202, response.get_json()
    return wait_for_job(client, headers, response.get_json()["job_id"])


def test_a_csv_of_assembly_points_stores_the_good_rows_and_reports_the_bad(client, coordinator, db, celery_worker):
    csv_text = ("name,kind,lat,lon,capacity,country,active\n"
                "Embassy Abu Dhabi,embassy,24.4539,54.3773,400,AE,true\n"
                "Dubai airport,airport,25.2532,55.3657,2000,AE,\n"
                "Castle,castle,25.2,55.3,10,AE,\n"                       # row 4: bad kind
                "Swapped school,school,55.27,25.2,100,AE,\n"              # row 5: swapped
                "Many,shelter,25.2,55.3,lots,AE,false\n")                # row 6: bad capacity
    job = import_points(client, coordinator, csv_text.encode())
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["created"], result["rejected"]) == (2, 3)
    assert sorted((e["row"], e["field"]) for e in result["errors"]) == [(4, "kind"), (5, "location"),
                                                                        (6, "capacity")]
    assert "swap" in next(e["message"] for e in result["errors"] if e["row"] == 5)
    assert count(db, "assembly_points") == 2


@pytest.mark.parametrize("content, field", [
    (b"name,kind,lat,lon,capacity\nX,embassy,1,1,1\n", "country"),
    (b"name,kind,lat,lon,capacity,country,colour\n", "colour"),
    (b"\x00\x01binary", "file"),
])
def test_an_unusable_file_of_assembly_points_fails_its_job_with_the_reason(client, coordinator, db, celery_worker,
                                                                            content, field):
    job = import_points(client, coordinator, content)
    assert job["status"] == "failed"
    assert field in job["error"]["message"] or job["error"]["code"] == "not-a-spreadsheet", job
    assert count(db, "assembly_points") == 0 and count(db, "import_files") == 0
