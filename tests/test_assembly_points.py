"""Assembly points (SPEC §4.3): created and changed by coordinators, checked against their country."""
from __future__ import annotations

import pytest

from tests.conftest import count

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
