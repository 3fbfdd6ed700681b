"""Rosters (SPEC §4.3): built by a real Celery worker from an exposure run, read, diffed and worked as a
call list. The scenario is small enough to reason about by hand: 7 places for 11 people in Dubai."""
from __future__ import annotations

import uuid

import pytest

from registry.geo import destination
from registry.rosters.assign import great_circle_km
from tests.conftest import count
from tests.test_crises import DUBAI, circle, declare, register
from tests.test_imports import wait_for_job

POINTS = "/api/v1/assembly-points"
SHARJAH = (25.3463, 55.4209)
AL_AIN = (24.2617, 55.6092)


def at(km: float, bearing: float = 200.0, origin=DUBAI) -> tuple[float, float]:
    """A point ``km`` from ``origin`` on ``bearing`` (south-west by default: away from Sharjah)."""
    lon, lat = destination(origin[1], origin[0], bearing, km * 1000)
    return lat, lon


def make_point(client, headers, name, lat, lon, capacity, *, kind="shelter", active=True) -> str:
    response = client.post(POINTS, headers=headers, json={"name": name, "kind": kind, "capacity": capacity,
                                                          "location": {"lat": lat, "lon": lon}, "country": "AE",
                                                          "active": active})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def build(client, headers, crisis_id, **body) -> dict:
    response = client.post(f"/api/v1/crises/{crisis_id}/rosters", headers=headers, json=body)
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert response.headers["Location"] == f"/api/v1/rosters/{accepted['id']}"
    job = wait_for_job(client, headers, accepted["job_id"])
    assert job["status"] == "succeeded", job
    roster = client.get(f"/api/v1/rosters/{accepted['id']}", headers=headers).get_json()
    assert roster["status"] == "succeeded"
    return roster


def entries(client, headers, roster_id, **filters) -> dict[str, dict]:
    response = client.get(f"/api/v1/rosters/{roster_id}/entries", headers=headers,
                          query_string={"limit": 1000, "purpose": "evacuation call list", **filters})
    assert response.status_code == 200, response.get_json()
    return {row["national_id"]: row for row in response.get_json()["items"]}


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


@pytest.fixture
def dubai(client, desk, coordinator, db, celery_worker):
    """10 people around Dubai (a household of 3 with a pregnant member, two medical, one elderly by birth
    date, four with no vulnerability), one 80 km out, one known only by country; a 4-place shelter in
    Dubai, a 3-place school in Sharjah, a large airport in Al Ain (beyond 60 km), an inactive shelter."""
    people = {}
    people["medical"] = register(client, desk, *at(5), family_name="Medical", vulnerabilities=["chronic_illness"],
                                 native_name="مريم المدني")
    people["disabled"] = register(client, desk, *at(6), family_name="Disabled", vulnerabilities=["disability"])
    people["mother"] = register(client, desk, *at(2), family_name="Mother", vulnerabilities=["pregnant"])
    household = client.get(f"/api/v1/nationals/{people['mother']}", headers=desk).get_json()["household_id"]
    people["father"] = register(client, desk, *at(2.01), family_name="Father", vulnerabilities=[],
                                household_id=household)
    people["son"] = register(client, desk, *at(2.02), family_name="Son", vulnerabilities=[], household_id=household)
    people["elder"] = register(client, desk, *at(7), family_name="Elder", vulnerabilities=[],
                               date_of_birth="1950-03-01")
    for n in range(4):
        people[f"worker{n}"] = register(client, desk, *at(3 + n), family_name=f"Worker{n}" if n else "=Worker0",
                                        vulnerabilities=[], phones=[f"+97150123456{n}"])
    people["far"] = register(client, desk, *at(80, bearing=230), family_name="Far", vulnerabilities=[])
    people["unknown"] = register(client, desk, None, None, family_name="Unknown", vulnerabilities=[],
                                 deployment={"city": None})
    points = {"dubai": make_point(client, coordinator, "Dubai shelter", *DUBAI, 4),
              "sharjah": make_point(client, coordinator, "Sharjah school", *SHARJAH, 3, kind="school"),
              "al_ain": make_point(client, coordinator, "Al Ain airport", *AL_AIN, 500, kind="airport"),
              "closed": make_point(client, coordinator, "Closed shelter", *at(1), 100, active=False)}
    crisis = declare(client, coordinator, circle(*DUBAI, 30), zones=[100])
    return {"people": people, "points": points, "crisis": crisis, "household": household}


def test_capacity_priority_households_distance_and_reasons(client, coordinator, dubai):
    people, points = dubai["people"], dubai["points"]
    roster = build(client, coordinator, dubai["crisis"]["id"], vehicle_capacity=3, max_distance_km=60)
    rows = entries(client, coordinator, roster["id"])
    by_name = {name: rows[national_id] for name, national_id in people.items()}

    # Every exposed national is in the roster: placed, or unplaced with a reason.
    assert set(rows) == set(people.values())
    assert all((r["assembly_point_id"] is None) == (r["unassigned_reason"] is not None) for r in rows.values())
    # The default points: the active ones in the affected country (the inactive shelter is not considered).
    considered = {p["assembly_point_id"] for p in roster["counts"]["by_assembly_point"]}
    assert considered == {points["dubai"], points["sharjah"], points["al_ain"]}
    # Capacity is never exceeded, and the counts say so.
    for point in roster["counts"]["by_assembly_point"]:
        placed = [r for r in rows.values() if r["assembly_point_id"] == point["assembly_point_id"]]
        assert len(placed) == point["assigned"] <= point["capacity"]
    # Medical and disabled first (Dubai), the household next: 3 do not fit the 2 places left in Dubai,
    # so all 3 go to Sharjah together, in one vehicle; then the elder; one of the four workers gets the last place.
    assert by_name["medical"]["assembly_point_id"] == by_name["disabled"]["assembly_point_id"] == points["dubai"]
    family = [by_name[k] for k in ("mother", "father", "son")]
    assert {(r["assembly_point_id"], r["vehicle"]) for r in family} == {(points["sharjah"], 1)}
    assert {r["household_id"] for r in family} == {dubai["household"]}
    assert {r["priority_label"] for r in family} == {"pregnant"}
    assert by_name["elder"]["assembly_point_id"] == points["dubai"]
    assert by_name["elder"]["priority_label"] == "minor_or_elderly"
    workers = [by_name[f"worker{n}"] for n in range(4)]
    assert sum(r["assembly_point_id"] == points["dubai"] for r in workers) == 1
    assert {r["unassigned_reason"] for r in workers if not r["assembly_point_id"]} == {"no_capacity_in_reach"}
    assert by_name["far"]["unassigned_reason"] == "beyond_max_distance"
    assert by_name["unknown"]["unassigned_reason"] == "location_unknown"
    assert roster["counts"]["assigned"] == 7 and roster["counts"]["unassigned"] == 5
    assert roster["counts"]["by_reason"] == {"no_capacity_in_reach": 3, "beyond_max_distance": 1,
                                             "location_unknown": 1}
    # Vehicles of 3 seats, filled in priority order; nobody beyond 60 km, by an independent great circle.
    dubai_rows = sorted((r for r in rows.values() if r["assembly_point_id"] == points["dubai"]),
                        key=lambda r: (r["vehicle"], r["seat"]))
    assert [(r["vehicle"], r["seat"]) for r in dubai_rows] == [(1, 1), (1, 2), (1, 3), (2, 1)]
    assert [r["priority"] for r in dubai_rows] == sorted(r["priority"] for r in dubai_rows)
    point_at = {points["dubai"]: DUBAI, points["sharjah"]: SHARJAH}
    for row in rows.values():
        if row["assembly_point_id"]:
            lat, lon = point_at[row["assembly_point_id"]]
            km = float(great_circle_km(row["location"]["lon"], row["location"]["lat"], lon, lat))
            assert km <= 60 and row["distance_to_point_km"] == pytest.approx(km, abs=0.01)


def test_the_same_input_gives_the_same_roster(client, coordinator, dubai):
    first = build(client, coordinator, dubai["crisis"]["id"], vehicle_capacity=3, max_distance_km=60)
    second = build(client, coordinator, dubai["crisis"]["id"], vehicle_capacity=3, max_distance_km=60)
    assert (first["number"], second["number"]) == (1, 2)

    def placement(roster):
        return {k: (r["assembly_point_id"], r["vehicle"], r["seat"], r["unassigned_reason"], r["rank"])
                for k, r in entries(client, coordinator, roster["id"]).items()}

    assert placement(first) == placement(second)
    assert first["counts"] == second["counts"]


def test_explicit_points_zones_and_a_longer_reach(client, coordinator, dubai):
    people, points = dubai["people"], dubai["points"]
    roster = build(client, coordinator, dubai["crisis"]["id"], zones=["inside"], certainties=["high"],
                   assembly_point_ids=[points["al_ain"]], max_distance_km=200)
    rows = entries(client, coordinator, roster["id"])
    assert people["far"] not in rows and people["unknown"] not in rows  # ring and country-only left out
    assert len(rows) == 10 and {r["assembly_point_id"] for r in rows.values()} == {points["al_ain"]}
    assert [p["name"] for p in roster["counts"]["by_assembly_point"]] == ["Al Ain airport"]
    assert roster["counts"]["vehicles"] == 1  # 10 people, 40 seats by default


def test_a_rebuilt_roster_shows_what_changed(client, coordinator, dubai):
    crisis_id = dubai["crisis"]["id"]
    first = build(client, coordinator, crisis_id, vehicle_capacity=3, max_distance_km=60)
    make_point(client, coordinator, "Dubai school", *at(4), 10, kind="school")
    second = build(client, coordinator, crisis_id, vehicle_capacity=3, max_distance_km=60)
    assert client.get(f"/api/v1/rosters/{second['id']}/diff", headers=coordinator).status_code == 400  # purpose
    diff = client.get(f"/api/v1/rosters/{second['id']}/diff", headers=coordinator,
                      query_string={"purpose": "what changed for the bus plan"}).get_json()
    assert diff["from"] == first["id"] and diff["added"] == [] and diff["removed"] == []
    assert diff["counts"] == {"added": 0, "removed": 0, "changed": len(diff["changed"])} and not diff["truncated"]
    moved = {row["national_id"]: row for row in diff["changed"]}
    unplaced_before = {f"worker{n}" for n in range(4)}
    assert {dubai["people"][k] for k in unplaced_before} & set(moved)
    assert all(row["old_unassigned_reason"] == "no_capacity_in_reach" and row["assembly_point"] == "Dubai school"
               for row in moved.values() if row["old_assembly_point_id"] is None)
    listed = client.get(f"/api/v1/crises/{crisis_id}/rosters", headers=coordinator).get_json()
    assert [r["number"] for r in listed["items"]] == [2, 1] and listed["total"] == 2


def test_welfare_is_set_in_jurisdiction_kept_across_rosters_and_worked_as_a_call_list(client, coordinator,
                                                                                      make_user, desk, dubai):
    people, crisis_id = dubai["people"], dubai["crisis"]["id"]
    roster = build(client, coordinator, crisis_id, vehicle_capacity=3, max_distance_km=60)
    worker = people["worker0"]
    url = f"/api/v1/rosters/{roster['id']}/entries/{worker}"
    _, ae_embassy = make_user("embassy", ["AE"])
    _, qa_embassy = make_user("embassy", ["QA"])
    update = {"welfare_status": "needs_assistance", "note": "Out of water",
              "contact": {"channel": "phone", "outcome": "reached"}}
    assert client.patch(url, json=update, headers=qa_embassy).status_code == 404  # not theirs: not revealed
    assert client.patch(url, json=update, headers=desk).status_code == 403
    changed = client.patch(url, json=update, headers=ae_embassy)
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["welfare"]["status"] == "needs_assistance" and changed.get_json()["welfare"]["reached"]
    retry = client.patch(url, json={"contact": {"channel": "sms", "outcome": "no_answer"}}, headers=coordinator)
    assert retry.get_json()["welfare"]["contact_attempts"] == 2
    assert retry.get_json()["welfare"]["status"] == "needs_assistance"  # a contact alone keeps the status
    history = retry.get_json()["history"]
    assert [(h["status"], h["previous_status"], h["contact"]["outcome"]) for h in history] == [
        ("needs_assistance", "unknown", "reached"), ("needs_assistance", "needs_assistance", "no_answer")]

    # The call list: who has never been reached, who needs help.
    not_reached = entries(client, coordinator, roster["id"], reached="false")
    assert worker not in not_reached and len(not_reached) == len(people) - 1
    assert set(entries(client, coordinator, roster["id"], welfare_status="needs_assistance")) == {worker}

    # A new roster of the crisis keeps the status: it belongs to the national in the crisis.
    rebuilt = build(client, coordinator, crisis_id, vehicle_capacity=40, max_distance_km=300)
    again = client.get(f"/api/v1/rosters/{rebuilt['id']}/entries/{worker}", headers=ae_embassy).get_json()
    assert again["welfare"]["status"] == "needs_assistance" and len(again["history"]) == 2
    assert client.get(f"/api/v1/rosters/{rebuilt['id']}/entries/{worker}", headers=qa_embassy).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"welfare_status": "fine"}, "welfare_status"),
    ({"contact": {"channel": "pigeon", "outcome": "reached"}}, "contact"),
    ({"contact": {"channel": "phone"}}, "contact"),
    ({}, "welfare_status"),
    ({"welfare_status": "safe", "mood": "good"}, "mood"),
])
def test_bad_welfare_updates_are_422_and_change_nothing(client, coordinator, dubai, body, field):
    roster = build(client, coordinator, dubai["crisis"]["id"])
    url = f"/api/v1/rosters/{roster['id']}/entries/{dubai['people']['elder']}"
    response = client.patch(url, json=body, headers=coordinator)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()
    assert client.get(url, headers=coordinator).get_json()["welfare"]["status"] == "unknown"
    assert client.patch(f"/api/v1/rosters/{roster['id']}/entries/{uuid.uuid4()}", json={"welfare_status": "safe"},
                        headers=coordinator).status_code == 404


def test_an_embassy_officer_reads_only_their_jurisdictions_people(client, coordinator, make_user, dubai):
    roster = build(client, coordinator, dubai["crisis"]["id"], vehicle_capacity=3, max_distance_km=60)
    _, qa_embassy = make_user("embassy", ["QA"])
    _, ae_embassy = make_user("embassy", ["AE"])
    assert entries(client, qa_embassy, roster["id"]) == {}
    qa_counts = client.get(f"/api/v1/rosters/{roster['id']}", headers=qa_embassy).get_json()["counts"]
    assert (qa_counts["assigned"], qa_counts["unassigned"]) == (0, 0)
    assert {p["assigned"] for p in qa_counts["by_assembly_point"]} == {0}
    assert len(entries(client, ae_embassy, roster["id"])) == 12


@pytest.mark.parametrize("body, field", [
    ({"zones": ["nearby"]}, "zones"), ({"certainties": []}, "certainties"), ({"vehicle_capacity": 0}, "vehicle_capacity"),
    ({"max_distance_km": -5}, "max_distance_km"), ({"assembly_point_ids": ["not-a-uuid"]}, "assembly_point_ids"),
    ({"assembly_point_ids": [str(uuid.uuid4())]}, "assembly_point_ids"), ({"buses": 3}, "buses"),
])
def test_bad_roster_requests_are_422_and_queue_nothing(client, coordinator, db, dubai, body, field):
    response = client.post(f"/api/v1/crises/{dubai['crisis']['id']}/rosters", headers=coordinator, json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()
    assert count(db, "rosters") == 0


def test_inactive_points_and_closed_crises_are_refused(client, coordinator, dubai):
    crisis_id = dubai["crisis"]["id"]
    inactive = client.post(f"/api/v1/crises/{crisis_id}/rosters", headers=coordinator,
                           json={"assembly_point_ids": [dubai["points"]["closed"]]})
    assert inactive.status_code == 422 and "Inactive" in inactive.get_json()["errors"]["assembly_point_ids"][0]
    client.patch(f"/api/v1/crises/{crisis_id}", headers=coordinator, json={"status": "closed"})
    closed = client.post(f"/api/v1/crises/{crisis_id}/rosters", headers=coordinator, json={})
    assert closed.status_code == 422 and "closed" in closed.get_json()["detail"]
    assert client.post(f"/api/v1/crises/{uuid.uuid4()}/rosters", headers=coordinator, json={}).status_code == 404


def test_only_coordinators_and_admins_build_rosters(client, desk, make_user, dubai):
    _, embassy = make_user("embassy", ["AE"])
    for headers in (desk, embassy):
        assert client.post(f"/api/v1/crises/{dubai['crisis']['id']}/rosters", headers=headers,
                           json={}).status_code == 403



def test_closed_crises_lose_their_rosters_and_welfare_after_the_retention_period(app, client, coordinator, db, dubai):
    crisis_id = dubai["crisis"]["id"]
    roster = build(client, coordinator, crisis_id)
    client.patch(f"/api/v1/rosters/{roster['id']}/entries/{dubai['people']['elder']}", headers=coordinator,
                 json={"welfare_status": "safe"})
    runner = app.test_cli_runner()
    assert "0 closed" in runner.invoke(args=["retention", "purge-crises", "--days", "0"]).output  # still active
    client.patch(f"/api/v1/crises/{crisis_id}", headers=coordinator, json={"status": "closed"})
    assert "0 closed" in runner.invoke(args=["retention", "purge-crises", "--days", "30"]).output  # too recent
    assert count(db, "roster_entries") == 12
    result = runner.invoke(args=["retention", "purge-crises", "--days", "0"])
    assert "1 closed" in result.output, result.output
    for table in ("roster_entries", "rosters", "welfare_statuses", "welfare_events", "exposures"):
        assert count(db, table) == 0, table
    assert client.get(f"/api/v1/crises/{crisis_id}", headers=coordinator).status_code == 200


def test_an_erased_national_leaves_the_exposure_welfare_and_every_roster_read(client, desk, coordinator, db, dubai):
    roster = build(client, coordinator, dubai["crisis"]["id"])
    elder = dubai["people"]["elder"]
    client.patch(f"/api/v1/rosters/{roster['id']}/entries/{elder}", headers=coordinator,
                 json={"welfare_status": "needs_assistance", "note": "Insulin at home"})
    assert client.delete(f"/api/v1/nationals/{elder}", headers=desk).status_code == 204
    assert elder not in entries(client, coordinator, roster["id"])
    assert client.get(f"/api/v1/rosters/{roster['id']}/entries/{elder}", headers=coordinator).status_code == 404
    from sqlalchemy import text
    for table in ("exposures", "welfare_statuses", "welfare_events"):
        assert db.session.execute(text(f"SELECT count(*) FROM {table} WHERE national_id = :id"),
                                  {"id": elder}).scalar() == 0, table


def test_a_retried_roster_request_with_its_idempotency_key_starts_nothing_new(client, coordinator, db, dubai):
    url, headers = f"/api/v1/crises/{dubai['crisis']['id']}/rosters", {**coordinator, "Idempotency-Key": "bus-plan-1"}
    first = client.post(url, headers=headers, json={"vehicle_capacity": 30})
    again = client.post(url, headers=headers, json={"vehicle_capacity": 30})
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"] and count(db, "rosters") == 1
    other = client.post(url, headers=headers, json={"vehicle_capacity": 20})  # same key, another body
    assert other.status_code == 422
    assert wait_for_job(client, coordinator, first.get_json()["job_id"])["status"] == "succeeded"


def test_a_diff_across_exposure_runs_names_who_joined_and_who_left(client, desk, coordinator, make_user, db, dubai):
    crisis_id = dubai["crisis"]["id"]
    first = build(client, coordinator, crisis_id)
    newcomer = register(client, desk, *at(9), family_name="Newcomer", vulnerabilities=[])
    assert client.delete(f"/api/v1/nationals/{dubai['people']['far']}", headers=desk).status_code == 204
    changed = client.patch(f"/api/v1/crises/{crisis_id}", headers=coordinator, json={"zones_km": [100, 150]})
    assert wait_for_job(client, coordinator, changed.get_json()["latest_run"]["job_id"])["status"] == "succeeded"
    second = build(client, coordinator, crisis_id)
    assert second["version"] == first["version"] + 1
    diff = client.get(f"/api/v1/rosters/{second['id']}/diff", headers=coordinator,
                      query_string={"purpose": "who joined", "from": first["id"]}).get_json()
    assert [row["national_id"] for row in diff["added"]] == [newcomer]
    assert diff["added"][0]["family_name"] == "Newcomer" and diff["added"][0]["zone"] == "inside"
    assert diff["removed"] == []  # the erased national is left out of every read, diffs included
    _, qa = make_user("embassy", ["QA"])
    hidden = client.get(f"/api/v1/rosters/{second['id']}/diff", headers=qa,
                        query_string={"purpose": "who joined", "from": first["id"]}).get_json()
    assert hidden["added"] == [] and hidden["counts"] == {"added": 0, "removed": 0, "changed": 0}
