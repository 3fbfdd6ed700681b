"""Crises and exposure lists, computed by a real Celery worker (SPEC §4.1, §5, §6)."""
from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from registry.geo import destination
from tests.conftest import count, national_body, owner_connection
from tests.test_imports import wait_for_job

DUBAI = (25.2048, 55.2708)
CRISES = "/api/v1/crises"


def register(client, headers, lat, lon, host="AE", **changes) -> str:
    body = national_body(passport_number=changes.pop("passport_number", None), phones=changes.pop("phones", []),
                         location={"lat": lat, "lon": lon} if lat is not None else None,
                         deployment={"host_country": host, **changes.pop("deployment", {})}, **changes)
    response = client.post("/api/v1/nationals", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def declare(client, headers, area, zones=(), **extra) -> dict:
    body = {"name": "Test crisis", "kind": "flood", "severity": "high", "area": area, "zones_km": list(zones),
            **extra}
    response = client.post(CRISES, json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    crisis = response.get_json()
    job = wait_for_job(client, headers, crisis["latest_run"]["job_id"])
    assert job["status"] == "succeeded", job
    return client.get(f"{CRISES}/{crisis['id']}", headers=headers).get_json()


def rows(client, headers, crisis_id, **filters) -> dict[str, dict]:
    response = client.get(f"{CRISES}/{crisis_id}/exposure", headers=headers,
                          query_string={"purpose": "evacuation planning", **filters})
    assert response.status_code == 200, response.get_json()
    return {row["national_id"]: row for row in response.get_json()["items"]}


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


def circle(lat, lon, radius_km):
    return {"type": "circle", "center": {"lat": lat, "lon": lon}, "radius_km": radius_km}


def test_rings_by_geodesic_distance_at_their_boundaries(client, desk, coordinator, db, celery_worker):
    # A 10 km circle on Dubai; nationals 24.9 and 25.1 km beyond its edge, one inside, one beyond the rings.
    at = {d: destination(*DUBAI, 135, (10 + d) * 1000) for d in (24.9, 25.1)}
    inside = register(client, desk, *destination(*DUBAI, 300, 3000), passport_number="P1000001A")
    near = register(client, desk, *at[24.9], passport_number="P1000002A")
    far = register(client, desk, *at[25.1], passport_number="P1000003A")
    beyond = register(client, desk, *destination(*DUBAI, 200, 160_000), passport_number="P1000004A")
    crisis = declare(client, coordinator, circle(*DUBAI, 10), zones=[25, 100])
    found = rows(client, coordinator, crisis["id"])
    assert beyond not in found
    assert (found[inside]["zone"], found[inside]["ring_km"], found[inside]["distance_km"]) == ("inside", None, 0)
    assert (found[near]["zone"], found[near]["ring_km"]) == ("ring", 25)
    assert (found[far]["zone"], found[far]["ring_km"]) == ("ring", 100)
    assert found[near]["distance_km"] == pytest.approx(24.9, abs=0.05)
    assert found[far]["distance_km"] == pytest.approx(25.1, abs=0.05)
    assert {r["certainty"] for r in found.values()} == {"high"}
    assert crisis["latest_run"]["counts"] == {"inside": 1, "ring": 2, "total": 3, "by_ring": {"25": 1, "100": 1},
                                              "by_certainty": {"high": 3}, "by_city": {"(unknown)": 3}}
    assert found[inside]["location_age_days"] == 0 and found[inside]["family_name"] == "Dela Cruz"


def test_certainty_high_possible_and_country_only(client, desk, coordinator, db, celery_worker):
    gps = register(client, desk, *DUBAI, passport_number="P2000001A")
    # Sharjah geocoded (a city-level precision circle) just outside a 2 km circle on Dubai.
    city = register(client, desk, None, None, passport_number="P2000002A", deployment={"city": "Sharjah"})
    country = register(client, desk, None, None, passport_number="P2000003A")  # no city: country only
    crisis = declare(client, coordinator, circle(*DUBAI, 2), zones=[20])
    found = rows(client, coordinator, crisis["id"])
    assert found[gps]["certainty"] == "high" and found[gps]["zone"] == "inside"
    assert found[city]["certainty"] == "possible" and found[city]["location"]["source"] == "geocoded_city"
    assert found[country]["certainty"] == "country_only" and found[country]["zone"] == "inside"
    only_possible = rows(client, coordinator, crisis["id"], certainty="possible")
    assert list(only_possible) == [city]
    # The priority class filters as the console's list does.
    by_class = {n: {i for i, r in found.items() if r["priority"] == n} for n in (1, 2, 3, 4)}
    assert {n: set(rows(client, coordinator, crisis["id"], priority=n)) for n in (1, 2, 3, 4)} == by_class
    assert set().union(*by_class.values()) == {gps, city, country}


SQUARE = [[55.1, 25.1], [55.4, 25.1], [55.4, 25.35], [55.1, 25.35], [55.1, 25.1]]  # counter-clockwise


@pytest.mark.parametrize("area", [
    {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
    {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [SQUARE[::-1]]}},  # clockwise
    {"type": "geojson", "geometry": {"type": "MultiPolygon", "coordinates": [[SQUARE]]}},
    circle(*DUBAI, 15),
    {"type": "countries", "codes": ["AE"]},
    {"type": "cap", "xml": (
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>AE-NCEMA-1</identifier>'
        '<sender>ncema</sender><sent>2026-11-28T06:00:00+04:00</sent><status>Actual</status><msgType>Alert'
        '</msgType><scope>Public</scope><info><category>Met</category><event>Flood</event><urgency>Immediate'
        '</urgency><severity>Severe</severity><certainty>Observed</certainty><area><areaDesc>Dubai</areaDesc>'
        '<polygon>25.1,55.1 25.1,55.4 25.35,55.4 25.35,55.1 25.1,55.1</polygon><circle>24.45,54.38 5</circle>'
        '</area></info></alert>')},
    {"type": "feature", "radius_km": 20, "feature": {  # a USGS event: a point, made a circle
        "type": "Feature", "id": "us7000test", "properties": {"mag": 6.1, "place": "Dubai"},
        "geometry": {"type": "Point", "coordinates": [55.2708, 25.2048, 10.0]}}},
    {"type": "feature", "feature": {  # GDACS: polygons are the area, points only markers
        "type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"eventtype": "FL"}, "geometry": {"type": "Point",
                                                                               "coordinates": [55.27, 25.2]}},
            {"type": "Feature", "properties": {"eventtype": "FL", "Class": "Poly_Affected"},
             "geometry": {"type": "Polygon", "coordinates": [SQUARE]}}]}},
], ids=["polygon", "polygon-clockwise", "multipolygon", "circle", "countries", "cap", "usgs", "gdacs"])
def test_every_area_type_finds_the_national_inside(client, desk, coordinator, db, celery_worker, area):
    inside = register(client, desk, *DUBAI, passport_number="P3000001A")
    outside = register(client, desk, None, None, host="QA", passport_number="P3000002A",
                       deployment={"city": "Doha"})
    crisis = declare(client, coordinator, area)
    found = rows(client, coordinator, crisis["id"])
    assert found[inside]["zone"] == "inside" and outside not in found
    assert crisis["area"]["type"] == "MultiPolygon"


def test_both_windings_give_the_same_list(client, desk, coordinator, db, celery_worker):
    ids = [register(client, desk, *destination(*DUBAI, b, 9000), passport_number=f"P40000{b:02d}A")
           for b in range(0, 360, 45)]
    lists = []
    for ring in (SQUARE, SQUARE[::-1]):
        crisis = declare(client, coordinator, {"type": "geojson", "geometry": {"type": "Polygon",
                                                                               "coordinates": [ring]}}, [30])
        lists.append({k: (v["zone"], v["ring_km"], v["distance_km"]) for k, v in rows(client, coordinator,
                                                                                        crisis["id"]).items()})
    assert lists[0] == lists[1] and set(lists[0]) <= set(ids) and lists[0]


def test_a_polygon_across_the_antimeridian_covers_fiji_on_both_sides(client, desk, coordinator, db,
                                                                     celery_worker):
    east = register(client, desk, -16.88, 179.97, host="FJ", passport_number="P5000001A")
    west = register(client, desk, -16.82, -179.93, host="FJ", passport_number="P5000002A")
    elsewhere = register(client, desk, *DUBAI, passport_number="P5000003A")
    area = {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[179.5, -17.5], [-179.5, -17.5], [-179.5, -16.5], [179.5, -16.5], [179.5, -17.5]]]}}
    crisis = declare(client, coordinator, area)
    found = rows(client, coordinator, crisis["id"])
    assert set(found) == {east, west} and elsewhere not in found
    xs = [x for polygon in crisis["area"]["coordinates"] for x, _ in polygon[0]]
    assert max(xs) - min(xs) > 300 and all(-180 <= x <= 180 for x in xs)  # two parts, not "the rest of the globe"


def _square_with(n: int) -> list:
    step = 1.0 / n
    edge = [[55.0 + i * step, 25.0] for i in range(n)]
    return edge + [[56.0, 25.0], [56.0, 26.0], [55.0, 26.0], [55.0, 25.0]]


@pytest.mark.parametrize("area, reason", [
    ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[55, 25], [56, 26], [56, 25], [55, 26], [55, 25]]]}}, "self-intersection at lon 55.5, lat 25.5"),
    ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[55, 25], [56, 25], [56, 26], [55, 26]]]}}, "not closed"),
    ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": []}}, "empty"),
    ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[55, 25], [56, 25], [56, 95], [55, 25]]]}}, "latitude 95.0 is outside -90..90"),
    ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[55, 25], [56, 25], [57, 25], [55, 25]]]}}, "zero area"),
    ({"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [_square_with(1_000_000)]}},
     "at most 200000"),
    (circle(95, 55, 10), "'lat' must be a number in -90..90"),
    ({"type": "cap", "xml": "<alert>"}, "not well-formed"),
    ({"type": "feature", "feature": {"type": "Feature", "geometry": {"type": "Point", "coordinates": [55, 25]}}},
     "needs 'radius_km'"),
    ({"type": "countries", "codes": ["XX"]}, "Unknown country codes: XX"),
    ({"type": "square"}, "'type' must be"),
], ids=["bowtie", "unclosed", "empty", "lat-95", "zero-area", "million-vertices", "circle-lat", "cap-broken",
        "usgs-no-radius", "unknown-country", "unknown-type"])
def test_bad_areas_are_422_with_the_reason_and_nothing_is_stored(client, coordinator, db, area, reason):
    response = client.post(CRISES, json={"name": "Bad", "kind": "flood", "severity": "high", "area": area},
                           headers=coordinator)
    assert response.status_code == 422, response.status_code
    problem = response.get_json()
    assert reason in json.dumps(problem["errors"]), problem
    assert count(db, "crises") == 0 and count(db, "jobs") == 0


def test_repair_is_only_done_on_request_and_reported(client, desk, coordinator, db, celery_worker):
    bowtie = {"type": "geojson", "repair": True, "geometry": {"type": "Polygon", "coordinates": [
        [[55.0, 25.0], [55.6, 25.6], [55.6, 25.0], [55.0, 25.6], [55.0, 25.0]]]}}
    crisis = declare(client, coordinator, bowtie)
    repairs = crisis["area_source"]["repairs"]
    assert repairs[0]["reason"].startswith("self-intersection") and repairs[0]["parts_after"] == 2


def test_a_new_area_makes_a_version_and_the_diff_says_what_changed(client, desk, coordinator, db, celery_worker):
    centre = register(client, desk, *DUBAI, passport_number="P6000001A")
    edge = register(client, desk, *destination(*DUBAI, 135, 20_000), passport_number="P6000002A")
    crisis = declare(client, coordinator, circle(*DUBAI, 10), zones=[30])
    response = client.patch(f"{CRISES}/{crisis['id']}", json={"area": circle(*DUBAI, 30)}, headers=coordinator)
    assert response.status_code == 200 and response.get_json()["version"] == 2
    assert wait_for_job(client, coordinator, response.get_json()["latest_run"]["job_id"])["status"] == "succeeded"
    unchanged = client.patch(f"{CRISES}/{crisis['id']}", json={"severity": "extreme"}, headers=coordinator)
    assert unchanged.get_json()["version"] == 2 and unchanged.get_json()["severity"] == "extreme"
    diff = client.get(f"{CRISES}/{crisis['id']}/exposure/diff", headers=coordinator,
                      query_string={"from": 1, "to": 2, "purpose": "what changed"}).get_json()
    assert diff["added"] == [] and diff["removed"] == []
    assert [(c["national_id"], c["old_zone"], c["zone"]) for c in diff["changed"]] == [(edge, "ring", "inside")]
    assert centre not in {c["national_id"] for c in diff["changed"]}
    old = rows(client, coordinator, crisis["id"])  # the latest version
    assert old[edge]["zone"] == "inside"
    closed = client.patch(f"{CRISES}/{crisis['id']}", json={"status": "closed"}, headers=coordinator).get_json()
    assert closed["status"] == "closed" and closed["closed_at"]


def test_an_embassy_officer_sees_only_their_jurisdictions_rows(client, desk, coordinator, make_user, db,
                                                               celery_worker):
    dubai = register(client, desk, *DUBAI, passport_number="P7000001A")
    doha = register(client, desk, 25.2854, 51.531, host="QA", passport_number="P7000002A", family_name="Qatari")
    crisis = declare(client, coordinator, circle(25.25, 53.4, 260))
    _, embassy = make_user("embassy", ["AE"])
    assert set(rows(client, coordinator, crisis["id"])) == {dubai, doha}
    seen = client.get(f"{CRISES}/{crisis['id']}/exposure", headers=embassy,
                      query_string={"purpose": "consular"}).get_json()
    assert [r["national_id"] for r in seen["items"]] == [dubai] and seen["total"] == 1
    assert "Qatari" not in json.dumps(seen)
    assert client.get(f"{CRISES}/{crisis['id']}", headers=embassy).get_json()["latest_run"]["counts"]["total"] == 1


def test_exposure_needs_a_purpose_and_comes_as_csv_and_geojson(client, desk, coordinator, make_user, db,
                                                               celery_worker):
    national = register(client, desk, *DUBAI, passport_number="P8000001A", vulnerabilities=["pregnant"])
    crisis = declare(client, coordinator, circle(*DUBAI, 5))
    url = f"{CRISES}/{crisis['id']}/exposure"
    missing = client.get(url, headers=coordinator)
    assert missing.status_code == 400 and "purpose" in missing.get_json()["errors"]
    as_csv = client.get(url, headers=coordinator, query_string={"purpose": "roster", "format": "csv"})
    table = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert as_csv.mimetype == "text/csv" and [r["national_id"] for r in table] == [national]
    assert table[0]["zone"] == "inside" and table[0]["priority_label"] == "pregnant"
    assert "vulnerabilities" not in table[0]  # a coordinator sees the priority class, not the detail behind it
    _, embassy = make_user("embassy", ["AE"])
    consular = client.get(url, headers=embassy, query_string={"purpose": "consular", "format": "csv"})
    assert list(csv.DictReader(io.StringIO(consular.get_data(as_text=True))))[0]["vulnerabilities"] == "pregnant"
    as_geojson = client.get(url, headers=coordinator, query_string={"purpose": "map", "format": "geojson"})
    collection = as_geojson.get_json()
    assert as_geojson.mimetype == "application/geo+json"
    assert collection["features"][0]["geometry"]["coordinates"] == pytest.approx([DUBAI[1], DUBAI[0]])
    _, auditor = make_user("auditor")
    audited = client.get("/api/v1/audit?action=crises.exposure", headers=auditor).get_json()["items"]
    assert [(e["purpose"], e["outcome"]) for e in audited] == [("map", "ok"), ("consular", "ok"), ("roster", "ok"),
                                                                (None, "invalid")]
    assert audited[0]["object_ids"][0] == crisis["id"] and audited[0]["result_count"] == 1


def test_declaring_needs_the_coordinator_or_admin_role(client, desk, make_user):
    response = client.post(CRISES, json={"name": "x", "kind": "flood", "severity": "high",
                                         "area": circle(*DUBAI, 5)}, headers=desk)
    assert response.status_code == 403


def test_nationals_registered_during_an_active_crisis_join_it_on_the_next_run(client, desk, coordinator, db,
                                                                             celery_worker):
    from tasks.housekeeping import refresh_active_crises_task
    first = register(client, desk, *DUBAI, passport_number="P9000001A")
    crisis = declare(client, coordinator, circle(*DUBAI, 10))
    assert refresh_active_crises_task.apply().get() == 0  # nothing changed since the run: no new run
    later = register(client, desk, *destination(*DUBAI, 90, 4000), passport_number="P9000002A")
    moved = register(client, desk, *destination(*DUBAI, 200, 80_000), passport_number="P9000003A")
    assert client.post(f"/api/v1/nationals/{moved}/locations", json={"lat": DUBAI[0], "lon": DUBAI[1]},
                       headers=desk).status_code == 201
    refresh_active_crises_task.delay()  # what the worker's beat does every REGISTRY_EXPOSURE_REFRESH_SECONDS
    current = client.get(f"{CRISES}/{crisis['id']}", headers=coordinator).get_json()
    for _ in range(100):
        if current["latest_run"]["id"] != crisis["latest_run"]["id"] and current["latest_run"]["status"] in (
                "succeeded", "failed"):
            break
        import time
        time.sleep(0.1)
        current = client.get(f"{CRISES}/{crisis['id']}", headers=coordinator).get_json()
    assert current["latest_run"]["status"] == "succeeded" and current["version"] == 1
    assert set(rows(client, coordinator, crisis["id"])) == {first, later, moved}


def test_a_circle_measured_from_its_centre_gives_the_rows_of_its_polygon(client, desk, coordinator, db,
                                                                         celery_worker):
    # The run measures a declared circle from its centre (one distance a national); the same area given as
    # its polygon goes the general way (pieces, nearest edge). Same people, zones, rings and certainties;
    # distances within the polygon's few metres of the circle.
    from shapely.geometry import mapping

    from registry.geo import geodesic_circle
    people = [register(client, desk, *destination(*DUBAI, bearing, km * 1000), passport_number=f"P93000{n:02d}A")
              for n, (bearing, km) in enumerate([(120, 3), (100, 19.5), (150, 36), (170, 62), (190, 140)])]
    for n, city in enumerate(("Sharjah", "Ajman", "Abu Dhabi")):  # geocoded: a city's precision circle
        people.insert(0, register(client, desk, None, None, passport_number=f"P93001{n:02d}A",
                                  deployment={"city": city}))
    register(client, desk, None, None, passport_number="P9300099A")  # known only by country (AE)
    as_circle = declare(client, coordinator, circle(*DUBAI, 20), zones=(25, 50))
    polygon = mapping(geodesic_circle(*DUBAI, 20_000))
    as_polygon = declare(client, coordinator, {"type": "geojson", "geometry": polygon}, zones=(25, 50))
    by_circle, by_polygon = rows(client, coordinator, as_circle["id"]), rows(client, coordinator, as_polygon["id"])
    assert set(by_circle) == set(by_polygon) and people[-1] not in by_circle and len(by_circle) >= 6
    for national, row in by_circle.items():
        other = by_polygon[national]
        assert (row["zone"], row["ring_km"], row["certainty"]) == (other["zone"], other["ring_km"],
                                                                   other["certainty"]), (row, other)
        assert abs(row["distance_km"] - other["distance_km"]) < 0.02
    assert as_circle["latest_run"]["counts"] == as_polygon["latest_run"]["counts"]
    # The run's counts by city are those of the rows' current deployments (read as the run writes its rows).
    by_city = Counter(row["city"] or "(unknown)" for row in by_circle.values())
    assert as_circle["latest_run"]["counts"]["by_city"] == by_city and by_city["Sharjah"] == 1


def test_superseded_runs_lose_their_rows_but_the_served_run_and_runs_with_rosters_keep_theirs(
        client, desk, coordinator, db, celery_worker):
    from sqlalchemy import text

    from registry.crises.models import Crisis
    from registry.crises.services import prune_superseded, rerun
    register(client, desk, *DUBAI, passport_number="P9100001A")
    crisis = declare(client, coordinator, circle(*DUBAI, 10))
    runs = [crisis["latest_run"]["id"]]
    for n in range(2):  # two more runs of the same version, as the beat's refresh starts them
        register(client, desk, *DUBAI, passport_number=f"P910001{n}A")
        run = rerun(db.session.get(Crisis, uuid.UUID(crisis["id"])))
        job_id, run_id = str(run.job_id), str(run.id)
        db.session.commit()
        wait_for_job(client, coordinator, job_id)
        runs.append(run_id)
    roster = client.post(f"{CRISES}/{crisis['id']}/rosters", headers=coordinator, json={})
    assert roster.status_code == 202, roster.get_json()
    wait_for_job(client, coordinator, roster.get_json()["job_id"])
    # The roster was built on the newest run; pretend the first run got a roster too.
    db.session.execute(text("UPDATE rosters SET run_id = :run"), {"run": runs[1]})
    db.session.commit()

    def rows_of(run):
        return db.session.execute(text("SELECT count(*) FROM exposures WHERE run_id = :r"), {"r": run}).scalar()

    before = [rows_of(r) for r in runs]
    assert before == [1, 2, 3]
    assert prune_superseded() == 0  # within the grace period: a request may still read the old runs
    assert prune_superseded(grace_s=0, batch=1) == 1  # the first run only: the second has a roster
    assert [rows_of(r) for r in runs] == [0, 2, 3]
    current = client.get(f"{CRISES}/{crisis['id']}", headers=coordinator).get_json()
    assert current["latest_run"]["id"] == runs[2] and current["latest_run"]["counts"]["total"] == 3


def test_lists_count_every_crisis_and_audit_event_without_filters(client, coordinator, make_user, db,
                                                                   celery_worker):
    for radius in (5, 6):
        response = client.post(CRISES, json={"name": f"c{radius}", "kind": "flood", "severity": "low",
                                             "area": circle(*DUBAI, radius)}, headers=coordinator)
        assert response.status_code == 202
        # Let the worker finish: the tables are emptied after the test.
        wait_for_job(client, coordinator, response.get_json()["latest_run"]["job_id"])
    assert client.get(CRISES, headers=coordinator).get_json()["total"] == 2
    _, auditor = make_user("auditor")
    trail = client.get("/api/v1/audit", headers=auditor).get_json()
    assert trail["total"] == len(trail["items"]) >= 3


def test_the_next_pages_of_a_list_carry_its_first_pages_counts(client, desk, coordinator, db, celery_worker):
    """Counting a run of a million rows again for each page made every next page as slow as the first: the
    counts are counted for the first page and read back for the pages after it (listing._paging_counts)."""
    people = [register(client, desk, *destination(*DUBAI, 90, km * 1000), passport_number=f"P95000{n:02d}A")
              for n, km in enumerate((2, 3, 4))]
    crisis = declare(client, coordinator, circle(*DUBAI, 1), zones=[10])  # by distance: in their order
    path, query = f"{CRISES}/{crisis['id']}/exposure", {"purpose": "calls", "welfare_status": "unknown", "limit": 1}
    first = client.get(path, headers=coordinator, query_string=query).get_json()
    assert first["total"] == first["counts"]["total"] == 3 and first["items"][0]["national_id"] == people[0]
    answer = client.patch(f"{CRISES}/{crisis['id']}/welfare/{people[2]}", headers=coordinator,
                          json={"welfare_status": "safe"})
    assert answer.status_code == 200, answer.get_json()
    # The list as it was first read: its counts, and the rows after the cursor as they are now.
    second = client.get(path, headers=coordinator, query_string={**query, "cursor": first["next_cursor"]}).get_json()
    assert second["total"] == second["counts"]["total"] == 3
    assert [row["national_id"] for row in second["items"]] == [people[1]] and second["next_cursor"] is None
    # A new first page counts again.
    again = client.get(path, headers=coordinator, query_string=query).get_json()
    assert again["total"] == again["counts"]["total"] == 2


def test_a_lists_counts_are_the_runs_own_summed_over_the_callers_reach_until_an_erasure(
        client, desk, coordinator, make_user, db, celery_worker):
    """At 10M a first page counting its 1.7M-row list for every caller held the database (bench/load.py): the
    run keeps its counts per jurisdiction and bucket (migration 0031), and a list sums those of the caller's
    reach, counted when the run finished; an erasure takes the person out at once (the run's counts are then
    counted live)."""
    from registry.auth.models import User
    from registry.crises import listing

    places = ((2, "Dubai", []), (3, "Sharjah", ["disability"]), (4, "Dubai", []), (0.5, "Dubai", ["pregnant"]))
    people = [register(client, desk, *destination(*DUBAI, 90, km * 1000), passport_number=f"P95100{n:02d}A",
                       deployment={"city": city}, vulnerabilities=needs)
              for n, (km, city, needs) in enumerate(places)]
    crisis = declare(client, coordinator, circle(*DUBAI, 1), zones=[10])
    path, query = f"{CRISES}/{crisis['id']}/exposure", {"purpose": "calls", "limit": 1}
    first = client.get(path, headers=coordinator, query_string=query).get_json()
    run = client.get(f"{CRISES}/{crisis['id']}", headers=coordinator).get_json()["latest_run"]
    assert first["total"] == first["counts"]["total"] == 4 and first["counts"] == run["counts"]
    assert first["counts"]["by_city"] == {"Dubai": 3, "Sharjah": 1} and count(db, "exposure_counts") >= 3
    # Filters among the kept buckets: summed from them, each what counting the rows gives.
    coordinator_user = db.session.scalars(select(User).where(User.role == "coordinator")).first()
    run_id = uuid.UUID(run["id"])
    for filters in ({}, {"zone": "ring"}, {"zone": "inside"}, {"ring_km": 10}, {"certainty": "high"},
                    {"priority": 1}, {"priority": 2}, {"priority": 4}, {"city": "DUBAI"}, {"city": "sharjah"},
                    {"zone": "ring", "city": "Dubai", "priority": 4}):
        kept = listing.counts(coordinator_user, run_id, filters)
        assert kept == listing._live_counts(coordinator_user, run_id, filters), filters
    by_city = client.get(path, headers=coordinator, query_string={**query, "city": "dubai"}).get_json()
    assert by_city["total"] == 3 and by_city["counted_at"] == first["counted_at"]
    # Another reach: an embassy officer of Saudi Arabia is given none of them; one of the UAE all.
    _, saudi = make_user("embassy", ["SA"])
    theirs = client.get(path, headers=saudi, query_string=query).get_json()
    assert theirs["total"] == theirs["counts"]["total"] == 0 and theirs["items"] == []
    _, emirates = make_user("embassy", ["AE"])
    assert client.get(path, headers=emirates, query_string=query).get_json()["total"] == 4
    # An erasure: the person leaves the list and its counts at once.
    assert client.delete(f"/api/v1/nationals/{people[1]}", headers=desk).status_code == 204
    after = client.get(path, headers=emirates, query_string=query).get_json()
    assert after["total"] == after["counts"]["total"] == 3 and after["counted_at"] > first["counted_at"]
    assert after["counts"]["by_city"] == {"Dubai": 3}


def test_a_run_refreshes_the_planners_statistics_of_its_tables(client, desk, coordinator, db, celery_worker):
    """Migration 0032: a new run's id is unknown to the planner until its tables are analyzed, and a page of its
    list was planned for a few rows (the whole run sorted per page: up to 95 s at 10M). The worker analyzes them
    once the run committed: a manual ANALYZE (``last_analyze``), not autovacuum's."""
    def analyzed() -> int:
        with owner_connection() as conn:
            return conn.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'exposures'"
                                ).fetchone()[0]

    before = analyzed()
    register(client, desk, *destination(*DUBAI, 90, 2000), passport_number="P95400001A")
    declare(client, coordinator, circle(*DUBAI, 1), zones=[10])
    deadline = time.monotonic() + 30
    while analyzed() == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert analyzed() > before


def test_a_live_count_is_shared_within_one_reach_and_counted_again_after_a_welfare_change(
        client, desk, coordinator, make_user, db, celery_worker):
    """A welfare status filter is counted live (the run cannot keep it): shared by the callers of one reach for
    up to a minute (listing.shared_counts), counted again at once after a welfare change in the crisis."""
    people = [register(client, desk, *destination(*DUBAI, 90, km * 1000), passport_number=f"P95300{n:02d}A")
              for n, km in enumerate((2, 3, 4))]
    crisis = declare(client, coordinator, circle(*DUBAI, 1), zones=[10])
    path = f"{CRISES}/{crisis['id']}/exposure"
    query = {"purpose": "calls", "limit": 1, "welfare_status": "unknown"}
    first = client.get(path, headers=coordinator, query_string=query).get_json()
    assert first["total"] == 3
    _, other = make_user("coordinator")
    shared = client.get(path, headers=other, query_string=query).get_json()
    assert (shared["counted_at"], shared["counts"]) == (first["counted_at"], first["counts"])
    _, saudi = make_user("embassy", ["SA"])
    assert client.get(path, headers=saudi, query_string=query).get_json()["total"] == 0
    answer = client.patch(f"{CRISES}/{crisis['id']}/welfare/{people[0]}", headers=coordinator,
                          json={"welfare_status": "safe"})
    assert answer.status_code == 200, answer.get_json()
    after = client.get(path, headers=other, query_string=query).get_json()
    assert after["total"] == 2 and after["counted_at"] > first["counted_at"]


def test_a_lists_counts_are_counted_when_redis_is_down(client, desk, coordinator, db, celery_worker):
    from registry.auth import scope
    from registry.auth.models import User
    from registry.crises import listing, services
    from tests.conftest import make_app

    for n, km in enumerate((2, 3)):
        register(client, desk, *destination(*DUBAI, 90, km * 1000), passport_number=f"P95200{n:02d}A")
    crisis = declare(client, coordinator, circle(*DUBAI, 1), zones=[10])
    offline = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    with offline.app_context():
        scope.use_everything()
        run = services.run_for(services.get_crisis(uuid.UUID(crisis["id"])))
        user = db.session.scalars(select(User).where(User.role == "coordinator")).first()
        found = listing.shared_counts(user, run.id, {"welfare_status": "unknown"})
        again = listing.shared_counts(user, run.id, {"welfare_status": "unknown"})
    assert found["total"] == again["total"] == 2 and found["counted_at"] != again["counted_at"]
