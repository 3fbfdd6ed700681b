"""Exposure rings across the antimeridian (SPEC §4.1, §6): Fiji's islands either side of ±180°, Wallis and
Futuna across the line, through the API and a real worker. Expected distances come from PostGIS geography
(two points, or the stored area), not from the run's code."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import national_body
from tests.test_crises import circle, declare, register, rows
from tests.test_rosters import build

# Land points (lat, lon) of the 1:10m boundaries; lon < 0 is east of the antimeridian.
TAVEUNI_EAST = (-16.82275, -179.9307)
VANUA_LEVU_EAST = (-16.4825, -179.96737)  # Vanua Levu's tip beyond the line
VANUA_BALAVU = (-17.2314, -178.94274)
LAKEBA = (-18.21075, -178.79476)
CICIA = (-17.7489, -179.3079)
TAVEUNI_WEST = (-16.88355, 179.9748)
KORO = (-17.3234, 179.41474)
VANUA_LEVU = (-16.5779, 179.20379)
LABASA = (-16.4332, 179.36451)
VITI_LEVU = (-17.7844, 177.984)
FUTUNA = (-14.26205, -178.15227)  # Wallis and Futuna (WF), only east of the line
NUKUALOFA = (-21.13683, -175.20114)  # Tonga
# Far away at Fiji's latitude, in other oceans.
TOAMASINA = (-18.1492, 49.4023)  # Madagascar
PAPEETE = (-17.5350, -149.5696)  # Tahiti, French Polynesia
SANTA_CRUZ = (-17.7833, -63.1821)  # Bolivia
PORT_VILA = (-17.7404, 168.3210)  # Vanuatu


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


def point_km(db, a, b) -> float:
    """Geodesic km between two (lat, lon) points, by PostGIS geography."""
    return db.session.execute(text(
        "SELECT ST_Distance(ST_SetSRID(ST_MakePoint(:alon, :alat), 4326)::geography, "
        "ST_SetSRID(ST_MakePoint(:blon, :blat), 4326)::geography) / 1000"),
        {"alat": a[0], "alon": a[1], "blat": b[0], "blon": b[1]}).scalar()


def area_km(db, area_geojson: dict, at) -> float:
    """Geodesic km from the stored area (as the API returns it) to a (lat, lon) point."""
    import json
    return db.session.execute(text(
        "SELECT ST_Distance(ST_SetSRID(ST_GeomFromGeoJSON(:area), 4326)::geography, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) / 1000"),
        {"area": json.dumps(area_geojson), "lat": at[0], "lon": at[1]}).scalar()


def country_km(db, code: str, center, radius_km: float) -> float:
    """Geodesic km from a country's boundary to a circle."""
    return db.session.execute(text(
        "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) / 1000 "
        "FROM countries WHERE alpha2 = :code"), {"code": code, "lat": center[0], "lon": center[1]}).scalar() \
        - radius_km


def fiji(client, desk, at, passport, **changes) -> str:
    return register(client, desk, *at, host="FJ", passport_number=passport, **changes)


def imprecise(client, desk, at, precision_m, passport) -> str:
    """A Fijian located at an address geocoded to within ``precision_m``."""
    body = national_body(passport_number=passport, phones=[], deployment={"host_country": "FJ"},
                         location={"lat": at[0], "lon": at[1], "source": "geocoded_address",
                                   "precision_m": precision_m})
    response = client.post("/api/v1/nationals", json=body, headers=desk)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_a_ring_reaching_east_across_the_line_lists_the_people_there(client, desk, coordinator, db,
                                                                    celery_worker):
    centre, radius = (-16.55, 179.55), 15  # on Vanua Levu; the circle ends near 179.69, west of the line
    people = {
        "taveuni_east": fiji(client, desk, TAVEUNI_EAST, "P6600001A"),
        "vanua_levu_east": fiji(client, desk, VANUA_LEVU_EAST, "P6600002A"),
        "vanua_balavu": fiji(client, desk, VANUA_BALAVU, "P6600003A"),
        "lakeba": fiji(client, desk, LAKEBA, "P6600004A"),  # 239 km: beyond the rings
        "lakeba_imprecise": imprecise(client, desk, LAKEBA, 25_000, "P6600005A"),
        "vanua_levu": fiji(client, desk, VANUA_LEVU, "P6600006A"),  # same side, for comparison
    }
    crisis = declare(client, coordinator, circle(*centre, radius), zones=[50, 220])
    assert all(x > 0 for polygon in crisis["area"]["coordinates"] for x, _ in polygon[0])  # not crossing
    found = rows(client, coordinator, crisis["id"])
    expected = {"taveuni_east": 50, "vanua_levu_east": 50, "vanua_balavu": 220, "vanua_levu": 50}
    assert {name: found[people[name]]["ring_km"] for name in expected} == expected
    for name in expected:
        at = {"taveuni_east": TAVEUNI_EAST, "vanua_levu_east": VANUA_LEVU_EAST, "vanua_balavu": VANUA_BALAVU,
              "vanua_levu": VANUA_LEVU}[name]
        row = found[people[name]]
        assert (row["zone"], row["certainty"]) == ("ring", "high")
        assert row["distance_km"] == pytest.approx(point_km(db, centre, at) - radius, abs=0.05)
    assert people["lakeba"] not in found
    # City-level precision: 25 km nearer than its point, so within the outer ring.
    possible = found[people["lakeba_imprecise"]]
    assert (possible["zone"], possible["ring_km"], possible["certainty"]) == ("ring", 220, "possible")
    assert possible["distance_km"] == pytest.approx(point_km(db, centre, LAKEBA) - radius - 25, abs=0.05)
    assert crisis["latest_run"]["counts"]["total"] == 5


def test_a_ring_reaching_west_across_the_line_lists_the_people_there(client, desk, coordinator, db,
                                                                    celery_worker):
    centre, radius = (-17.23, -178.94), 10  # on Vanua Balavu, east of the line
    people = {
        "vanua_balavu": fiji(client, desk, VANUA_BALAVU, "P6610001A"),
        "cicia": fiji(client, desk, CICIA, "P6610002A"),
        "taveuni_west": fiji(client, desk, TAVEUNI_WEST, "P6610003A"),
        "koro": fiji(client, desk, KORO, "P6610004A"),
        "vanua_levu_imprecise": imprecise(client, desk, VANUA_LEVU, 10_000, "P6610005A"),
        "viti_levu": fiji(client, desk, VITI_LEVU, "P6610006A"),  # 322 km: beyond the rings
        "futuna": register(client, desk, *FUTUNA, host="WF", passport_number="P6610007A"),  # 329 km
    }
    crisis = declare(client, coordinator, circle(*centre, radius), zones=[100, 200])
    assert all(x < 0 for polygon in crisis["area"]["coordinates"] for x, _ in polygon[0])
    found = rows(client, coordinator, crisis["id"])
    assert set(found) == {people[k] for k in ("vanua_balavu", "cicia", "taveuni_west", "koro",
                                              "vanua_levu_imprecise")}
    assert found[people["vanua_balavu"]]["zone"] == "inside"
    for name, at, ring in (("cicia", CICIA, 100), ("taveuni_west", TAVEUNI_WEST, 200), ("koro", KORO, 200)):
        row = found[people[name]]
        assert (row["zone"], row["ring_km"], row["certainty"]) == ("ring", ring, "high"), name
        assert row["distance_km"] == pytest.approx(point_km(db, centre, at) - radius, abs=0.05), name
    possible = found[people["vanua_levu_imprecise"]]
    assert (possible["ring_km"], possible["certainty"]) == (200, "possible")
    assert possible["distance_km"] == pytest.approx(point_km(db, centre, VANUA_LEVU) - radius - 10, abs=0.05)


def test_an_area_across_the_line_lists_both_sides_and_nobody_far_away_at_its_latitude(client, desk, coordinator,
                                                                                      db, celery_worker):
    area = {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[179.5, -17.5], [-179.0, -17.5], [-179.0, -16.0], [179.5, -16.0], [179.5, -17.5]]]}}
    people = {
        "taveuni_west": fiji(client, desk, TAVEUNI_WEST, "P6620001A"),
        "taveuni_east": fiji(client, desk, TAVEUNI_EAST, "P6620002A"),
        "vanua_levu_east": fiji(client, desk, VANUA_LEVU_EAST, "P6620003A"),
        "vanua_levu": fiji(client, desk, VANUA_LEVU, "P6620004A"),  # ring, west
        "koro": fiji(client, desk, KORO, "P6620005A"),  # ring, west
        "vanua_balavu": fiji(client, desk, VANUA_BALAVU, "P6620006A"),  # ring, east
        "lakeba": fiji(client, desk, LAKEBA, "P6620007A"),  # ring, east
        "viti_levu": fiji(client, desk, VITI_LEVU, "P6620008A"),  # 160 km west: beyond
    }
    far = [register(client, desk, *TOAMASINA, host="MG", passport_number="P6620011A"),
           register(client, desk, *PAPEETE, host="PF", passport_number="P6620012A"),
           register(client, desk, *SANTA_CRUZ, host="BO", passport_number="P6620013A"),
           register(client, desk, *PORT_VILA, host="VU", passport_number="P6620014A")]
    crisis = declare(client, coordinator, area, zones=[100])
    found = rows(client, coordinator, crisis["id"])
    inside = {"taveuni_west", "taveuni_east", "vanua_levu_east"}
    ring = {"vanua_levu": VANUA_LEVU, "koro": KORO, "vanua_balavu": VANUA_BALAVU, "lakeba": LAKEBA}
    assert set(found) == {people[k] for k in inside | set(ring)}
    assert not set(far) & set(found) and people["viti_levu"] not in found
    assert {found[people[k]]["zone"] for k in inside} == {"inside"}
    for name, at in ring.items():
        row = found[people[name]]
        assert (row["zone"], row["ring_km"]) == ("ring", 100), name
        assert row["distance_km"] == pytest.approx(area_km(db, crisis["area"], at), abs=0.05), name


def test_an_area_ending_on_the_line_is_a_ring_across_it_never_inside(client, desk, coordinator, db,
                                                                    celery_worker):
    area = {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [
        [[179.6, -17.1], [180.0, -17.1], [180.0, -16.6], [179.6, -16.6], [179.6, -17.1]]]}}
    west = fiji(client, desk, TAVEUNI_WEST, "P6630001A")
    east = fiji(client, desk, TAVEUNI_EAST, "P6630002A")
    crisis = declare(client, coordinator, area, zones=[25])
    found = rows(client, coordinator, crisis["id"])
    assert set(found) == {west, east}
    assert found[west]["zone"] == "inside"
    assert (found[east]["zone"], found[east]["ring_km"]) == ("ring", 25)
    assert found[east]["distance_km"] == pytest.approx(area_km(db, crisis["area"], TAVEUNI_EAST), abs=0.05)
    assert found[east]["distance_km"] > 7


def test_countries_across_the_line_count_for_country_only_people_and_roster_points(client, desk, coordinator,
                                                                                  db, celery_worker):
    centre, radius = (-16.2, 179.7), 20  # off Vanua Levu's north coast, west of the line
    wallis = register(client, desk, None, None, host="WF", passport_number="P6640001A")  # country only
    fijian = register(client, desk, None, None, host="FJ", passport_number="P6640002A")
    tongan = register(client, desk, None, None, host="TO", passport_number="P6640003A")  # ~480 km: beyond
    crisis = declare(client, coordinator, circle(*centre, radius), zones=[100, 400])
    found = rows(client, coordinator, crisis["id"])
    assert set(found) == {wallis, fijian}
    assert (found[wallis]["certainty"], found[wallis]["zone"], found[wallis]["ring_km"]) == (
        "country_only", "ring", 400)
    assert found[wallis]["distance_km"] == pytest.approx(country_km(db, "WF", centre, radius), abs=0.1)
    assert (found[fijian]["certainty"], found[fijian]["zone"]) == ("country_only", "inside")
    assert tongan not in found

    points = {}
    for name, country, at in (("labasa", "FJ", LABASA), ("futuna", "WF", FUTUNA), ("tonga", "TO", NUKUALOFA)):
        response = client.post("/api/v1/assembly-points", headers=coordinator, json={
            "name": f"{name} shelter", "kind": "shelter", "capacity": 50, "country": country,
            "location": {"lat": at[0], "lon": at[1]}, "active": True})
        assert response.status_code == 201, response.get_json()
        points[name] = response.get_json()["id"]
    roster = build(client, coordinator, crisis["id"])
    considered = {p["assembly_point_id"] for p in roster["counts"]["by_assembly_point"]}
    assert considered == {points["labasa"], points["futuna"]}  # Tonga is beyond the 400 km ring


def _covers(boxes, x, y) -> bool:
    return any(x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9 for x0, y0, x1, y1 in boxes)


def test_candidate_boxes_wrap_at_the_line_and_stay_few_and_narrow():
    from registry.crises.exposure import MAX_CANDIDATE_ARCS, candidate_boxes
    # An ordinary area: one box, its extent grown by the margin (what the run always searched).
    assert candidate_boxes([(55.0, 25.0, 55.5, 25.4)], 1.0) == [(54.0, 24.0, 56.5, 26.4)]
    # An area across the line (stored as two parts touching ±180°): two narrow boxes, not the globe's width.
    boxes = candidate_boxes([(179.5, -17.5, 180.0, -16.0), (-180.0, -17.5, -179.0, -16.0)], 2.0)
    assert sorted(boxes) == [(-180.0, -19.5, -177.0, -14.0), (177.5, -19.5, 180.0, -14.0)]
    # An area west of the line whose margin passes it: a box on each side.
    boxes = candidate_boxes([(179.4, -16.8, 179.7, -16.3)], 1.0)
    assert sorted(boxes) == [(-180.0, -17.8, pytest.approx(-179.3), -15.3), (178.4, -17.8, 180.0, -15.3)]
    # Many parts far apart: a bounded number of boxes, all in range, covering every part's grown extent.
    parts = [(float(x), float(y), x + 0.5, y + 0.5) for x in range(-180, 180, 7) for y in (-40, 0, 35)]
    boxes = candidate_boxes(parts, 0.3)
    assert len(boxes) <= MAX_CANDIDATE_ARCS + 1
    assert all(-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90 for x0, y0, x1, y1 in boxes)
    for x0, y0, x1, y1 in parts:
        for x, y in ((x0 - 0.3, y0 - 0.3), (x1 + 0.3, y1 + 0.3), (x0 - 0.3, y1 + 0.3)):
            assert _covers(boxes, (x + 180) % 360 - 180, y)
    # Two clusters on either side of the globe stay two boxes.
    assert len(candidate_boxes([(10.0, 0.0, 11.0, 1.0), (-170.0, 0.0, -169.0, 1.0)], 1.0)) == 2
    # A margin that wraps all the way round: one box, the whole width.
    assert candidate_boxes([(-100.0, 10.0, 100.0, 20.0)], 90.0) == [(-180.0, -80.0, 180.0, 90.0)]
