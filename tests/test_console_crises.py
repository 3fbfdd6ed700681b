"""The crisis pages of the console (SPEC §9, §4.1), through the Flask client: the list, declaring (every area
format, bad inputs as 422 beside their fields, CSRF), a crisis with its exposed (roles, reach, filters acting
on the list and the map, versions and diff, downloads with a purpose, the purpose recorded for reads) and
building a roster from it. The exposure runs and roster builds are done by the real worker."""
from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.console_helpers import csrf_of
from tests.test_console_rosters import console_client, events, field_error, page_of
from tests.test_crises import DUBAI, SQUARE, circle, declare, register
from tests.test_imports import wait_for_job
from tests.test_rosters import at, make_point

CAP = ('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>AE-NCEMA-1</identifier>'
       '<sender>ncema</sender><sent>2026-11-28T06:00:00+04:00</sent><status>Actual</status><msgType>Alert'
       '</msgType><scope>Public</scope><info><category>Met</category><event>Flood</event><urgency>Immediate'
       '</urgency><severity>Severe</severity><certainty>Observed</certainty><area><areaDesc>Dubai</areaDesc>'
       '<polygon>25.1,55.1 25.1,55.4 25.35,55.4 25.35,55.1 25.1,55.1</polygon></area></info></alert>')
USGS = {"type": "Feature", "id": "us7000test", "properties": {"mag": 6.1, "place": "Dubai"},
        "geometry": {"type": "Point", "coordinates": [55.2708, 25.2048, 10.0]}}
GDACS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"eventtype": "FL"}, "geometry": {"type": "Point", "coordinates": [55.27, 25.2]}},
    {"type": "Feature", "properties": {"Class": "Poly_Affected"},
     "geometry": {"type": "Polygon", "coordinates": [SQUARE]}}]}
SOHAR = (24.3475, 56.7096)


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


def _form(**changes) -> dict:
    form = {"name": "Console flood", "kind": "flood", "severity": "high", "zones_km": "25, 100",
            "area_type": "circle", "center_lat": str(DUBAI[0]), "center_lon": str(DUBAI[1]), "radius_km": "15",
            "vertices": "", "area_format": "geojson", "area_text": "", "point_radius_km": ""}
    return form | changes


def _declare(browser, **changes):
    token = csrf_of(browser.get("/console/crises/new").get_data(as_text=True))
    return browser.post("/console/crises/new", data={"csrf_token": token, **_form(**changes)})


def _crisis_id(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    found = re.fullmatch(r".*/console/crises/([0-9a-f-]{36})", response.headers["Location"])
    assert found, response.headers["Location"]
    return found.group(1)


def _finish_run(browser, db, crisis_id) -> None:
    from registry.crises.models import ExposureRun
    db.session.rollback()
    run = db.session.query(ExposureRun).filter_by(crisis_id=uuid.UUID(crisis_id)).order_by(
        ExposureRun.created_at.desc()).first()
    assert wait_for_job(browser, {}, str(run.job_id))["status"] == "succeeded"


@pytest.fixture
def scene(client, desk, coordinator, db, celery_worker):
    """Around Dubai: a worker inside a 30 km circle, a medical case inside, one 50 km out (a ring), one with
    only a country; an Omani in Sohar (170 km: the 200 km ring)."""
    people = {
        "inside": register(client, desk, *at(3), family_name="Insideone", vulnerabilities=[], deployment={"city": "Dubai"}),
        "medical": register(client, desk, *at(5), family_name="Medicalcase", vulnerabilities=["chronic_illness"],
                            date_of_birth="1961-07-23", deployment={"city": "Dubai"}),
        "ring": register(client, desk, *at(50), family_name="Ringperson", vulnerabilities=[],
                         deployment={"city": "Sharjah"}),
        "omani": register(client, desk, SOHAR[0] + 0.01, SOHAR[1] - 0.01, host="OM", family_name="Soharperson",
                          vulnerabilities=[], deployment={"city": "Sohar"}),
    }
    crisis = declare(client, coordinator, circle(*DUBAI, 30), zones=[50, 200], name="Gulf floods")
    return {"people": people, "crisis": crisis, "coordinator": coordinator}


def crisis_url(scene) -> str:
    return f"/console/crises/{scene['crisis']['id']}"


# ---------------------------------------------------------------------- the list

def test_the_list_shows_the_crises_with_counts_and_declaring_only_for_coordinators(app, db, scene):
    browser, user = console_client(app, db, "coordinator")
    response = browser.get("/console/crises")
    assert response.status_code == 200
    doc = page_of(response)
    row = doc.xpath(f'//tr[@data-crisis="{scene["crisis"]["id"]}"]')[0]
    cells = [c.text_content().strip() for c in row.findall("td")]
    assert "Gulf floods" in row.text_content() and "flood" in cells and "high" in cells and "active" in cells
    assert cells[-3:] == ["4", "2", "2"]
    assert doc.xpath(f'//a[@href="/console/crises/{scene["crisis"]["id"]}"]')
    assert doc.xpath('//a[@href="/console/crises/new"]')
    assert events(db, "console.crises")[-1].actor_id == user.id

    oman, _ = console_client(app, db, "embassy", ["OM"])
    doc = page_of(oman.get("/console/crises"))
    cells = [c.text_content().strip() for c in doc.xpath(f'//tr[@data-crisis="{scene["crisis"]["id"]}"]/td')]
    assert cells[-3:] == ["1", "0", "1"]  # their jurisdiction's only
    assert not doc.xpath('//a[@href="/console/crises/new"]')


@pytest.mark.parametrize("role", ["desk", "auditor"])
def test_desk_and_auditors_may_not_open_the_crisis_pages(app, db, scene, role):
    browser, _ = console_client(app, db, role)
    assert browser.get("/console/crises").status_code == 403
    assert browser.get(crisis_url(scene)).status_code == 403
    assert browser.get("/console/crises/new").status_code == 403


def test_an_unknown_crisis_is_404(app, db):
    browser, _ = console_client(app, db, "coordinator")
    assert browser.get(f"/console/crises/{uuid.uuid4()}").status_code == 404
    assert browser.get("/console/crises/not-a-uuid").status_code == 404


# ---------------------------------------------------------------------- declaring

def test_an_embassy_officer_may_not_declare(app, db):
    browser, _ = console_client(app, db, "embassy", ["AE"])
    assert browser.get("/console/crises/new").status_code == 403
    token = csrf_of(browser.get("/console/").get_data(as_text=True))
    assert browser.post("/console/crises/new", data={"csrf_token": token, **_form()}).status_code == 403


def test_declaring_without_the_csrf_token_is_refused(app, db):
    from registry.crises.models import Crisis
    browser, _ = console_client(app, db, "coordinator")
    assert browser.post("/console/crises/new", data=_form()).status_code == 403
    db.session.rollback()
    assert db.session.query(Crisis).count() == 0


@pytest.mark.parametrize("changes", [
    {},  # a circle
    {"area_type": "polygon", "vertices": "25.1, 55.1\n25.1, 55.4\n25.35, 55.4\n25.35, 55.1"},
    {"area_type": "document", "area_format": "geojson",
     "area_text": json.dumps({"type": "Polygon", "coordinates": [SQUARE]})},
    {"area_type": "document", "area_format": "cap", "area_text": CAP, "severity": ""},
    {"area_type": "document", "area_format": "usgs", "area_text": json.dumps(USGS), "point_radius_km": "20"},
    {"area_type": "document", "area_format": "gdacs", "area_text": json.dumps(GDACS)},
], ids=["circle", "polygon", "geojson", "cap", "usgs", "gdacs"])
def test_declaring_in_every_form_finds_the_national_inside(app, db, client, desk, celery_worker, changes):
    inside = register(client, desk, *DUBAI, passport_number="P3000001A")
    browser, user = console_client(app, db, "coordinator")
    crisis_id = _crisis_id(_declare(browser, **changes))
    page = browser.get(f"/console/crises/{crisis_id}")  # the run may still be going: the page says so
    assert page.status_code == 200 and "Console flood" in page.get_data(as_text=True)
    _finish_run(browser, db, crisis_id)
    assert browser.get(f"/console/crises/{crisis_id}/run.json").get_json() == {
        "status": "succeeded", "version": 1, "progress": 1.0}
    doc = page_of(browser.get(f"/console/crises/{crisis_id}"))
    assert doc.xpath(f'//table[@id="people"]//tr[@data-national="{inside}"]')
    assert "succeeded" in doc.get_element_by_id("run-status").text_content()
    declared = [e for e in events(db, "console.crisis_create") if e.outcome == "ok"]
    assert declared[-1].actor_id == user.id and declared[-1].object_ids == [uuid.UUID(crisis_id)]
    if changes.get("area_format") == "cap":
        assert "high" in doc.get_element_by_id("run").getprevious().text_content()  # Severe → high


def test_declaring_by_uploading_a_file(app, db, celery_worker):
    import io
    browser, _ = console_client(app, db, "coordinator")
    token = csrf_of(browser.get("/console/crises/new").get_data(as_text=True))
    data = {"csrf_token": token, **_form(area_type="document", area_format="gdacs"),
            "area_file": (io.BytesIO(json.dumps(GDACS).encode()), "gdacs.geojson")}
    crisis_id = _crisis_id(browser.post("/console/crises/new", data=data, content_type="multipart/form-data"))
    _finish_run(browser, db, crisis_id)


BOWTIE = "25.1, 55.1\n25.35, 55.4\n25.1, 55.4\n25.35, 55.1"


@pytest.mark.parametrize("changes, field, text", [
    ({"name": ""}, "name", "empty"),
    ({"kind": "meteor"}, "kind", "Must be one of"),
    ({"severity": ""}, "severity", "Missing data"),
    ({"zones_km": "100, 25"}, "zones_km", "ascending"),
    ({"zones_km": "ten"}, "zones_km", "numbers"),
    ({"center_lat": "95"}, "center_lat", "-90..90"),
    ({"center_lon": "east"}, "center_lon", "number"),
    ({"radius_km": "0"}, "radius_km", "above 0"),
    ({"radius_km": ""}, "radius_km", "Give"),
    ({"area_type": "polygon", "vertices": BOWTIE}, "vertices", "self-intersection"),
    ({"area_type": "polygon", "vertices": "25.1, 55.1\n25.2, 55.2"}, "vertices", "at least 3"),
    ({"area_type": "polygon", "vertices": "25.1, 55.1\nnorth\n25.2, 55.2"}, "vertices", "Line 2"),
    ({"area_type": "polygon", "vertices": "\n".join(f"25.{i % 9}, 55.{i % 7}" for i in range(200_001))},
     "vertices", "at most 200000"),
    ({"area_type": "document", "area_format": "shapefile", "area_text": "{}"}, "area_format", "Unknown format"),
    ({"area_type": "document", "area_text": "{not json"}, "area_text", "Not JSON"),
    ({"area_type": "document", "area_text": ""}, "area_text", "Paste"),
    ({"area_type": "document", "area_text": json.dumps({"type": "Point", "coordinates": [55, 25]})}, "area_text",
     "Not a Polygon"),
    ({"area_type": "document", "area_format": "cap", "area_text": "<alert>"}, "area_text", "well-formed"),
    ({"area_type": "document", "area_format": "usgs", "area_text": json.dumps(USGS)}, "point_radius_km", "radius"),
    ({"area_type": "document", "area_format": "geojson",
      "area_text": json.dumps({"type": "Polygon", "coordinates": [[[55 + i / 1e6, 25] for i in range(450_000)]]})},
     "area_text", "vertices"),
    ({"area_type": "sketch"}, "area_type", "Choose"),
], ids=["name", "kind", "severity", "zones-order", "zones-text", "lat", "lon-text", "radius-zero", "radius-missing",
        "bowtie", "two-vertices", "bad-line", "too-many-vertices", "unknown-format", "bad-json", "empty-document",
        "point-geojson", "bad-cap", "usgs-without-radius", "too-large-document", "area-type"])
def test_bad_declarations_come_back_as_422_beside_their_field(app, db, changes, field, text):
    from registry.crises.models import Crisis
    browser, _ = console_client(app, db, "coordinator")
    response = _declare(browser, **changes)
    assert response.status_code == 422, response.status_code
    doc = page_of(response)
    if field == "area_type":
        assert text in doc.get_element_by_id("area_type-error").text_content()
    else:
        assert text in field_error(doc, field), field_error(doc, field)
    # What was typed stays.
    if field == "name":
        assert doc.get_element_by_id("center_lat").get("value") == str(DUBAI[0])
    db.session.rollback()
    assert db.session.query(Crisis).count() == 0


# ---------------------------------------------------------------------- a crisis

def test_a_coordinator_sees_the_exposed_without_hidden_fields_and_the_read_is_recorded(app, db, scene):
    browser, user = console_client(app, db, "coordinator")
    response = browser.get(crisis_url(scene))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    doc = page_of(response)
    assert "Gulf floods" in doc.xpath("//main")[0].text_content()
    assert f'href="/console/crises/{scene["crisis"]["id"]}/calls"' in html
    people = doc.get_element_by_id("people").text_content()
    for name in ("Insideone", "Medicalcase", "Ringperson", "Soharperson"):
        assert name in people
    assert people.index("Insideone") < people.index("Ringperson") < people.index("Soharperson")  # nearest first
    assert "chronic" not in html and "1961-07-23" not in html  # coordinators see the priority class only
    medical = doc.xpath(f'//tr[@data-national="{scene["people"]["medical"]}"]')[0].text_content()
    assert "medical or disability" in medical
    assert doc.get_element_by_id("vulnerability") is None if False else not doc.xpath('//select[@id="vulnerability"]')
    assert "4" in doc.get_element_by_id("exposed-total").text_content()
    zone_counts = doc.get_element_by_id("counts-zone").text_content()
    assert "inside the area" in zone_counts and "ring to 200 km" in zone_counts
    assert "Sohar" in doc.get_element_by_id("counts-city").text_content()
    event = events(db, "console.crisis")[-1]
    assert event.actor_id == user.id and event.purpose == "crisis response: Gulf floods"
    assert {uuid.UUID(v) for v in scene["people"].values()} <= set(event.object_ids)
    assert event.result_count == 4


def test_an_embassy_officer_sees_the_crisis_with_their_jurisdictions_people_only(app, db, scene):
    # The API answers a crisis to every embassy officer (crises are not in a jurisdiction); its people are.
    oman, _ = console_client(app, db, "embassy", ["OM"])
    response = oman.get(crisis_url(scene))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Soharperson" in html
    for name in ("Insideone", "Medicalcase", "Ringperson"):
        assert name not in html
    assert "1" in page_of(response).get_element_by_id("exposed-total").text_content()
    points = oman.get(f"{crisis_url(scene)}/map.json").get_json()
    assert sum(g[2] for g in points["groups"]) == 1
    assert not page_of(response).xpath(f'//form[@action="{crisis_url(scene)}/rosters"]')  # no building


def test_filters_narrow_the_list_the_counts_and_the_map(app, db, scene):
    browser, _ = console_client(app, db, "admin")  # admins may filter by vulnerability
    def names(**filters):
        doc = page_of(browser.get(crisis_url(scene), query_string=filters))
        table = doc.xpath('//table[@id="people"]')
        return {n for n in ("Insideone", "Medicalcase", "Ringperson", "Soharperson")
                if table and n in table[0].text_content()}
    assert names(zone="inside") == {"Insideone", "Medicalcase"}
    assert names(zone="ring") == {"Ringperson", "Soharperson"}
    assert names(city="sharjah") == {"Ringperson"}
    assert names(priority="1") == {"Medicalcase"}
    assert names(vulnerability="chronic_illness") == {"Medicalcase"}
    assert names(zone="ring", city="Sohar") == {"Soharperson"}
    assert names(certainty="country_only") == set()
    # Welfare from any source (here the hotline API; SMS replies and check-ins record through the same service).
    marked = app.test_client().patch(
        f"/api/v1/crises/{scene['crisis']['id']}/welfare/{scene['people']['ring']}?purpose=test+welfare",
        json={"welfare_status": "needs_evacuation"}, headers=scene["coordinator"])
    assert marked.status_code == 200, marked.get_json()
    assert names(welfare_status="needs_evacuation") == {"Ringperson"}
    assert names(welfare_status="unknown") == {"Insideone", "Medicalcase", "Soharperson"}
    assert names(welfare_status="safe") == set()
    doc = page_of(browser.get(crisis_url(scene), query_string={"zone": "inside"}))
    assert doc.get_element_by_id("list-total").text_content().startswith("2 people")
    map_url = doc.get_element_by_id("crisis-map").get("data-points-url")
    assert "zone=inside" in map_url
    points = browser.get(map_url).get_json()
    assert sum(g[2] for g in points["groups"]) == 2 and {g[3] for g in points["groups"]} == {"inside"}
    mapped = events(db, "console.crisis_map")[-1]
    assert (mapped.purpose, mapped.result_count, mapped.details["filters"]) == ("crisis response: Gulf floods", 2,
                                                                               ["zone"])
    assert "Insideone" not in browser.get(map_url).get_data(as_text=True)  # counts and positions, no names
    assert browser.get(f"{crisis_url(scene)}/map.json", query_string={"city": "Sohar"}).get_json()["groups"][0][2] == 1
    area = browser.get(f"{crisis_url(scene)}/area.json").get_json()
    assert area["area"]["type"] in ("Polygon", "MultiPolygon") and [r["km"] for r in area["rings"]] == [50, 200]
    # A bad filter: 422 beside it, never a 500.
    bad = browser.get(crisis_url(scene), query_string={"zone": "nearby"})
    assert bad.status_code == 422 and "One of" in field_error(page_of(bad), "zone")
    bad = browser.get(crisis_url(scene), query_string={"welfare_status": "fine"})
    assert bad.status_code == 422 and "welfare" in field_error(page_of(bad), "welfare_status")
    assert browser.get(f"{crisis_url(scene)}/map.json", query_string={"priority": "9"}).status_code == 422


def test_a_coordinator_may_not_filter_by_vulnerability(app, db, scene):
    browser, _ = console_client(app, db, "coordinator")
    assert browser.get(crisis_url(scene), query_string={"vulnerability": "chronic_illness"}).status_code == 403


def test_the_list_comes_in_pages(app, db, scene, monkeypatch):
    from registry.console.crises import detail
    monkeypatch.setattr(detail, "PAGE_ROWS", 2)
    browser, _ = console_client(app, db, "coordinator")
    first = page_of(browser.get(crisis_url(scene)))
    assert len(first.xpath('//table[@id="people"]/tbody/tr')) == 2
    second = page_of(browser.get(first.get_element_by_id("next-page").get("href")))
    people = second.get_element_by_id("people").text_content()
    assert "Ringperson" in people and "Soharperson" in people and "Insideone" not in people
    assert browser.get(crisis_url(scene), query_string={"cursor": "bad"}).status_code == 400


def test_versions_and_the_diff_between_them(app, db, scene, coordinator, client):
    changed = client.patch(f"/api/v1/crises/{scene['crisis']['id']}", headers=coordinator,
                           json={"area": circle(*DUBAI, 60)})
    assert changed.status_code == 200
    assert wait_for_job(client, coordinator, changed.get_json()["latest_run"]["job_id"])["status"] == "succeeded"
    browser, _ = console_client(app, db, "coordinator")
    doc = page_of(browser.get(crisis_url(scene), query_string={"from": 1, "to": 2}))
    assert len(doc.xpath('//table[@id="versions-table"]/tbody/tr')) == 2
    # 60 km instead of 30: the person 50 km from the centre is now inside; Sohar stays in the 200 km ring.
    assert "0 added, 0 removed, 1 changed" in " ".join(doc.get_element_by_id("diff-counts").text_content().split())
    changed_rows = doc.get_element_by_id("diff-changed").text_content()
    assert "Ringperson" in changed_rows and "Soharperson" not in changed_rows
    missing = page_of(browser.get(crisis_url(scene), query_string={"from": 1, "to": 7}))
    assert "version 7 is missing" in missing.get_element_by_id("diff").text_content()


def _export(browser, url, **form):
    token = csrf_of(browser.get(url).get_data(as_text=True))
    return browser.post(f"{url}/export", data={"csrf_token": token, **form})


def test_a_download_asks_for_a_purpose_and_holds_the_filtered_rows(app, db, scene):
    browser, user = console_client(app, db, "coordinator")
    refused = _export(browser, crisis_url(scene), format="csv", purpose="")
    assert refused.status_code == 422 and "characters" in field_error(page_of(refused), "purpose")
    response = _export(browser, crisis_url(scene), format="csv", purpose="evacuation planning", zone="inside")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert len(lines) == 3 and "vulnerabilities" not in lines[0]
    done = events(db, "console.crisis_export")[-1]
    assert (done.actor_id, done.purpose, done.result_count) == (user.id, "evacuation planning", 2)
    geo = _export(browser, crisis_url(scene), format="geojson", purpose="evacuation planning")
    assert len(json.loads(geo.get_data(as_text=True))["features"]) == 4
    oman, _ = console_client(app, db, "embassy", ["OM"])
    mine = _export(oman, crisis_url(scene), format="csv", purpose="consular follow-up").get_data(as_text=True)
    assert len(mine.strip().splitlines()) == 2 and "Soharperson" in mine
    assert browser.post(f"{crisis_url(scene)}/export", data={"format": "csv", "purpose": "x" * 10}).status_code == 403


def test_a_coordinator_builds_a_roster_from_the_crisis(app, db, scene, coordinator, client):
    point = make_point(client, coordinator, "Dubai shelter", *DUBAI, 10)
    browser, _ = console_client(app, db, "coordinator")
    token = csrf_of(browser.get(crisis_url(scene)).get_data(as_text=True))
    bad = browser.post(f"{crisis_url(scene)}/rosters", data={"csrf_token": token, "vehicle_capacity": "0",
                                                            "max_distance_km": "far"})
    assert bad.status_code == 422
    assert "A number" in field_error(page_of(bad), "roster_max_distance_km")
    bad = browser.post(f"{crisis_url(scene)}/rosters", data={"csrf_token": token, "vehicle_capacity": "0",
                                                            "max_distance_km": "60"})
    assert bad.status_code == 422 and field_error(page_of(bad), "roster_vehicle_capacity")
    response = browser.post(f"{crisis_url(scene)}/rosters", data={
        "csrf_token": token, "vehicle_capacity": "3", "max_distance_km": "60", "assembly_point_ids": [point]})
    assert response.status_code == 303
    roster_id = re.fullmatch(r".*/console/rosters/([0-9a-f-]{36})", response.headers["Location"]).group(1)
    assert browser.get(f"/console/rosters/{roster_id}").status_code == 200
    embassy, _ = console_client(app, db, "embassy", ["AE"])
    token = csrf_of(embassy.get(crisis_url(scene)).get_data(as_text=True))
    assert embassy.post(f"{crisis_url(scene)}/rosters", data={"csrf_token": token}).status_code == 403
