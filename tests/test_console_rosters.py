"""The roster page and the assembly points page of the console (SPEC §9), through the Flask client: who may
open them, what each role sees, downloads that ask for a purpose, forms with errors beside their fields,
CSRF, and the import job run by the real worker."""
from __future__ import annotations

import io
import re
import uuid

import lxml.html
import pytest
from pdfminer.high_level import extract_text
from sqlalchemy import select

from tests.conftest import count
from tests.console_helpers import csrf_of, make_console_user, sign_in
from tests.test_crises import DUBAI, circle, declare, register
from tests.test_imports import wait_for_job
from tests.test_rosters import at, build, make_point

SOHAR = (24.3475, 56.7096)  # Oman, 170 km from Dubai
POINTS_PAGE = "/console/assembly-points"
ROSTER_REQUEST = {"vehicle_capacity": 3, "max_distance_km": 60}


def make_scene(client, desk, coordinator, *, build_roster: bool = True) -> dict:
    """Four people around Dubai (one with a medical need, born 1961-07-23; an elderly worker; a worker), one
    without a location, one in Sohar (Oman); a 2-place shelter in Dubai and a 5-place school in Sohar; a
    roster of 3-seat vehicles within 60 km: the medical case and the elderly worker in Dubai, the other
    worker without a place (no capacity), the unlocated one without a place (location unknown), the Omani
    in Sohar."""
    people = {
        "medical": register(client, desk, *at(5), family_name="Medicalcase", given_names="Ana",
                            vulnerabilities=["chronic_illness"], date_of_birth="1961-07-23"),
        "worker_a": register(client, desk, *at(3), family_name="Workerone", vulnerabilities=[],
                             date_of_birth="1950-03-01"),  # elderly: before the other worker
        "worker_b": register(client, desk, *at(4), family_name="Workertwo", vulnerabilities=[]),
        "unlocated": register(client, desk, None, None, family_name="Nolocation", vulnerabilities=[],
                              deployment={"city": None}),
        "omani": register(client, desk, SOHAR[0] + 0.01, SOHAR[1] - 0.01, host="OM", family_name="Soharperson",
                          vulnerabilities=[], deployment={"city": "Sohar"}),
    }
    points = {"dubai": make_point(client, coordinator, "Dubai shelter", *DUBAI, 2),
              "sohar": client.post("/api/v1/assembly-points", headers=coordinator, json={
                  "name": "Sohar school", "kind": "school", "capacity": 5, "country": "OM",
                  "location": {"lat": SOHAR[0], "lon": SOHAR[1]}}).get_json()["id"]}
    crisis = declare(client, coordinator, circle(*DUBAI, 200), name="Gulf floods")
    scene = {"people": people, "points": points, "crisis": crisis, "roster_request": ROSTER_REQUEST | {
        "assembly_point_ids": list(points.values())}}
    if build_roster:
        scene["roster"] = build(client, coordinator, crisis["id"], **scene["roster_request"])
    return scene


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


@pytest.fixture
def scene(client, desk, coordinator, db, celery_worker):
    return make_scene(client, desk, coordinator)


def console_client(app, db, role, jurisdiction=()):
    """A browser-like client signed in as a new user of ``role``: (client, user)."""
    user, username = make_console_user(db, role, jurisdiction)
    browser = app.test_client()
    assert sign_in(browser, username).status_code == 303
    return browser, user


def page_of(response) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.get_data(as_text=True))


def field_error(doc, field_id: str) -> str:
    """The error shown beside a field: the field is marked invalid and described by it."""
    field = doc.get_element_by_id(field_id)
    assert field.get("aria-invalid") == "true", f"{field_id} is not marked invalid"
    described = field.get("aria-describedby", "").split()
    assert f"{field_id}-error" in described
    return doc.get_element_by_id(f"{field_id}-error").text_content().strip()


def events(db, action):
    from registry.audit.models import AuditEvent
    db.session.rollback()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def roster_url(scene) -> str:
    return f"/console/rosters/{scene['roster']['id']}"


# ---------------------------------------------------------------------- the roster page

def test_a_coordinator_sees_capacity_vehicles_reasons_and_people_without_hidden_fields(app, db, scene):
    browser, user = console_client(app, db, "coordinator")
    response = browser.get(roster_url(scene))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    doc = page_of(response)
    assert f'href="/console/crises/{scene["crisis"]["id"]}"' in html and "Gulf floods" in html
    assert "succeeded" in doc.get_element_by_id("roster-status").text_content()
    capacity = {row.get("data-point"): [c.text_content().strip() for c in row.findall("td")]
                for row in doc.get_element_by_id("capacity").iter("tr") if row.get("data-point")}
    dubai, sohar = capacity[scene["points"]["dubai"]], capacity[scene["points"]["sohar"]]
    assert "2 of 2" in " ".join(dubai) and "1 of 5" in " ".join(sohar)
    meter = doc.xpath(f'//tr[@data-point="{scene["points"]["dubai"]}"]//meter')[0]
    assert (meter.get("value"), meter.get("max")) == ("2", "2")
    reasons = {row.get("data-reason"): row.findall("td")[-1].text_content().strip()
               for row in doc.get_element_by_id("reasons").iter("tr") if row.get("data-reason")}
    assert reasons == {"no_capacity_in_reach": "1", "location_unknown": "1"}
    unassigned = doc.get_element_by_id("unassigned").text_content()
    assert "Workertwo" in unassigned and "Nolocation" in unassigned and "Medicalcase" not in unassigned
    people = doc.get_element_by_id("people").text_content()  # the first point with people: Dubai, priority first
    assert people.index("Medicalcase") < people.index("Workerone") and "Soharperson" not in people
    # No hidden field of a coordinator's: no medical detail, no date of birth.
    assert "chronic_illness" not in html and "chronic illness" not in html
    assert "1961-07-23" not in html and "1950-03-01" not in html
    # The other point's people, by choosing it.
    sohar_people = page_of(browser.get(roster_url(scene), query_string={"point": scene["points"]["sohar"]}))
    assert "Soharperson" in sohar_people.get_element_by_id("people").text_content()
    # Read inside the crisis: recorded with the crisis's purpose, naming the people shown.
    event = events(db, "console.roster")[0]
    assert event.actor_id == user.id and event.purpose == "crisis response: Gulf floods"
    assert {uuid.UUID(scene["people"][k]) for k in ("medical", "worker_a", "worker_b", "unlocated")} <= \
        set(event.object_ids)


def test_the_lists_come_in_pages(app, db, scene, monkeypatch):
    import registry.console.rosters
    monkeypatch.setattr(registry.console.rosters, "PAGE_ROWS", 1)
    browser, _ = console_client(app, db, "coordinator")
    first = page_of(browser.get(roster_url(scene)))
    assert "Medicalcase" in first.get_element_by_id("people").text_content()
    assert "Workerone" not in first.get_element_by_id("people").text_content()
    unassigned = {"Workertwo", "Nolocation"}  # both standard, inside the area: in household id order
    on_first = {name for name in unassigned if name in first.get_element_by_id("unassigned").text_content()}
    assert len(on_first) == 1
    more_people = first.xpath('//a[starts-with(normalize-space(), "Next 1 at Dubai shelter")]')[0].get("href")
    second = page_of(browser.get(more_people))
    assert "Workerone" in second.get_element_by_id("people").text_content()
    assert not second.xpath('//a[starts-with(normalize-space(), "Next 1 at")]')  # the last page
    more_unassigned = second.xpath('//a[starts-with(normalize-space(), "Next 1 not assigned")]')[0].get("href")
    third = page_of(browser.get(more_unassigned))
    assert (unassigned - on_first).pop() in third.get_element_by_id("unassigned").text_content()
    assert "Workerone" in third.get_element_by_id("people").text_content()  # the other list keeps its page
    assert browser.get(roster_url(scene), query_string={"cursor": "not-a-cursor"}).status_code == 400


def test_an_admin_sees_the_casework_fields(app, db, scene):
    browser, _ = console_client(app, db, "admin")
    html = browser.get(roster_url(scene)).get_data(as_text=True)
    assert "chronic illness" in html and "1961-07-23" in html


def test_an_embassy_officer_sees_only_their_jurisdictions_people_and_counts(app, db, scene):
    oman, _ = console_client(app, db, "embassy", ["OM"])
    response = oman.get(roster_url(scene))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Soharperson" in html
    for name in ("Medicalcase", "Workerone", "Workertwo", "Nolocation"):
        assert name not in html
    doc = page_of(response)
    capacity = {row.get("data-point"): " ".join(c.text_content() for c in row.findall("td"))
                for row in doc.get_element_by_id("capacity").iter("tr") if row.get("data-point")}
    assert "0 of 2" in capacity[scene["points"]["dubai"]] and "1 of 5" in capacity[scene["points"]["sohar"]]
    assert doc.get_element_by_id("unassigned-total").text_content().strip() == "0"
    # Another point's list (Dubai's people are not theirs) is empty, not revealed.
    dubai = oman.get(roster_url(scene), query_string={"point": scene["points"]["dubai"]}).get_data(as_text=True)
    assert "Medicalcase" not in dubai and "Workerone" not in dubai
    # The embassy of the Emirates sees its four, not the Omani.
    emirates, _ = console_client(app, db, "embassy", ["AE"])
    html = emirates.get(roster_url(scene)).get_data(as_text=True)
    assert "Workertwo" in html and "Medicalcase" in html and "Soharperson" not in html


@pytest.mark.parametrize("role", ["desk", "auditor"])
def test_desk_and_auditors_may_not_open_a_roster(app, db, scene, role):
    browser, _ = console_client(app, db, role)
    assert browser.get(roster_url(scene)).status_code == 403
    assert browser.post(f"{roster_url(scene)}/export", data={
        "csrf_token": csrf_of(browser.get("/console/").get_data(as_text=True)), "purpose": "manifests",
        "format": "pdf"}).status_code == 403


def test_an_unknown_roster_is_404(app, db):
    browser, _ = console_client(app, db, "coordinator")
    assert browser.get(f"/console/rosters/{uuid.uuid4()}").status_code == 404
    assert browser.get("/console/rosters/not-a-uuid").status_code == 404


def _export(browser, url, **form):
    token = csrf_of(browser.get(url).get_data(as_text=True))
    return browser.post(f"{url}/export", data={"csrf_token": token, **form})


def test_a_download_asks_for_a_purpose_then_gives_the_pdf_and_is_audited(app, db, scene):
    browser, user = console_client(app, db, "coordinator")
    url = roster_url(scene)
    refused = _export(browser, url, format="pdf", paper="a4", purpose="")
    assert refused.status_code == 422 and refused.mimetype == "text/html"
    assert "3-200" in field_error(page_of(refused), "purpose") or "characters" in field_error(page_of(refused),
                                                                                              "purpose")
    assert _export(browser, url, format="pdf", paper="a4", purpose="ab").status_code == 422
    assert [e.outcome for e in events(db, "console.roster_export")] == ["invalid", "invalid"]

    response = _export(browser, url, format="pdf", paper="letter", purpose="bus manifests for Dubai")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = extract_text(io.BytesIO(response.data))
    assert "Medicalcase" in text and "Soharperson" in text
    done = events(db, "console.roster_export")[-1]
    assert (done.outcome, done.actor_id, done.purpose) == ("ok", user.id, "bus manifests for Dubai")
    assert done.details["format"] == "pdf" and done.result_count == 5

    # One point's manifests only.
    one = _export(browser, url, format="pdf", paper="a4", purpose="Dubai shelter manifests",
                  assembly_point_id=scene["points"]["dubai"])
    text = extract_text(io.BytesIO(one.data))
    assert "Medicalcase" in text and "Soharperson" not in text and "Workertwo" not in text


def test_an_embassy_officers_download_holds_their_jurisdiction_only(app, db, scene):
    oman, _ = console_client(app, db, "embassy", ["OM"])
    response = _export(oman, roster_url(scene), format="csv", purpose="consular follow-up")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert len(lines) == 2 and "Soharperson" in lines[1]


def test_a_download_without_its_csrf_token_is_refused(app, db, scene):
    browser, _ = console_client(app, db, "coordinator")
    response = browser.post(f"{roster_url(scene)}/export", data={"purpose": "bus manifests", "format": "pdf"})
    assert response.status_code == 403 and not response.data.startswith(b"%PDF")


def test_a_large_download_is_a_job_whose_file_the_page_links(app, db, scene):
    browser, _ = console_client(app, db, "coordinator")
    inline = app.config["REGISTRY_EXPORT_INLINE_ROWS"]
    app.config["REGISTRY_EXPORT_INLINE_ROWS"] = 2
    try:
        response = _export(browser, roster_url(scene), format="csv", purpose="all manifests")
    finally:
        app.config["REGISTRY_EXPORT_INLINE_ROWS"] = inline
    assert response.status_code == 303
    job_id = re.search(r"export_job=([0-9a-f-]{36})", response.headers["Location"]).group(1)
    assert wait_for_job(browser, {}, job_id)["status"] == "succeeded"
    doc = page_of(browser.get(response.headers["Location"]))
    link = doc.get_element_by_id("export-download")
    assert link.get("href") == f"/api/v1/jobs/{job_id}/download"
    download = browser.get(link.get("href"))
    assert download.status_code == 200 and len(download.get_data(as_text=True).strip().splitlines()) == 6
    assert events(db, "console.roster_export")[-1].purpose == "all manifests"


def test_the_diff_against_an_earlier_roster(app, db, scene, client, coordinator):
    client.patch(f"/api/v1/assembly-points/{scene['points']['dubai']}", headers=coordinator, json={"capacity": 3})
    second = build(client, coordinator, scene["crisis"]["id"], **scene["roster_request"])
    browser, _ = console_client(app, db, "coordinator")
    page = page_of(browser.get(f"/console/rosters/{second['id']}"))
    options = [o.get("value") for o in page.get_element_by_id("compare").iter("option")]
    assert options == [scene["roster"]["id"]]  # the earlier rosters of the crisis
    diff = page_of(browser.get(f"/console/rosters/{second['id']}", query_string={"compare": scene["roster"]["id"]}))
    changed = diff.get_element_by_id("diff-changed").text_content()
    assert "Workertwo" in changed and "no capacity in reach" in changed and "Dubai shelter" in changed
    assert diff.get_element_by_id("diff-counts").text_content().split() == ["0", "added,", "0", "removed,", "1",
                                                                            "changed"]


# ---------------------------------------------------------------------- assembly points

POINT_FORM = {"name": "Embassy of the Philippines, Abu Dhabi", "kind": "embassy", "country": "AE",
              "lat": "24.4539", "lon": "54.3773", "capacity": "400", "active": "on"}


def _post_point(browser, path=POINTS_PAGE, **changes):
    token = csrf_of(browser.get(POINTS_PAGE).get_data(as_text=True))
    return browser.post(path, data={"csrf_token": token, **{k: v for k, v in {**POINT_FORM, **changes}.items()
                                                             if v is not None}})


def test_a_coordinator_adds_a_point_and_bad_fields_get_their_errors_beside_them(app, db):
    browser, _ = console_client(app, db, "coordinator")
    bad = _post_point(browser, capacity="-5", name="")
    assert bad.status_code == 422
    doc = page_of(bad)
    assert "greater than or equal to 0" in field_error(doc, "capacity")
    assert field_error(doc, "name")
    assert doc.get_element_by_id("lat").get("value") == "24.4539"  # the form keeps what was typed
    assert "not a number" in field_error(page_of(_post_point(browser, capacity="many")), "capacity").lower() or \
        "integer" in field_error(page_of(_post_point(browser, capacity="many")), "capacity").lower()
    elsewhere = _post_point(browser, country="QA")
    assert elsewhere.status_code == 422 and "not in Qatar" in field_error(page_of(elsewhere), "lat")
    assert field_error(page_of(_post_point(browser, country="XX")), "country")
    assert count(db, "assembly_points") == 0

    saved = _post_point(browser)
    assert saved.status_code == 303
    listing = browser.get(saved.headers["Location"])
    row = page_of(listing).xpath("//tr[@data-lat]")[0]
    assert (row.get("data-lat"), row.get("data-lon")) == ("24.4539", "54.3773")
    assert "Embassy of the Philippines, Abu Dhabi" in row.text_content() and "400" in row.text_content()
    assert [e.outcome for e in events(db, "console.create_assembly_point")][-1] == "ok"


def test_a_coordinator_edits_a_point_with_the_same_checks(app, db):
    browser, _ = console_client(app, db, "coordinator")
    _post_point(browser)
    from registry.assembly_points.models import AssemblyPoint
    point_id = db.session.scalar(select(AssemblyPoint.id))
    edit = f"{POINTS_PAGE}/{point_id}"
    form = page_of(browser.get(edit))
    assert form.get_element_by_id("capacity").get("value") == "400"
    bad = _post_point(browser, edit, capacity="2000000")
    assert bad.status_code == 422 and field_error(page_of(bad), "capacity")
    changed = _post_point(browser, edit, capacity="250", active=None, name="Embassy, Abu Dhabi")
    assert changed.status_code == 303
    db.session.rollback()
    point = db.session.get(AssemblyPoint, point_id)
    assert (point.name, point.capacity, point.active) == ("Embassy, Abu Dhabi", 250, False)
    assert browser.get(f"{POINTS_PAGE}/{uuid.uuid4()}").status_code == 404


def test_the_list_filters_by_country_and_active(app, db, client, coordinator):
    make_point(client, coordinator, "Dubai shelter", *DUBAI, 20)
    make_point(client, coordinator, "Closed shelter", *at(1), 20, active=False)
    client.post("/api/v1/assembly-points", headers=coordinator, json={
        "name": "Sohar school", "kind": "school", "capacity": 5, "country": "OM",
        "location": {"lat": SOHAR[0], "lon": SOHAR[1]}})
    browser, _ = console_client(app, db, "admin")

    def names(**query):
        response = browser.get(POINTS_PAGE, query_string=query)
        assert response.status_code == 200
        return sorted(r.findall("td")[0].text_content().strip() for r in page_of(response).xpath("//tr[@data-lat]"))

    assert names() == ["Closed shelter", "Dubai shelter", "Sohar school"]
    assert names(country="OM") == ["Sohar school"]
    assert names(country="AE", active="true") == ["Dubai shelter"]
    assert names(active="false") == ["Closed shelter"]
    bad = browser.get(POINTS_PAGE, query_string={"country": "Narnia"})
    assert bad.status_code == 422 and field_error(page_of(bad), "filter-country")


@pytest.mark.parametrize("role", ["desk", "embassy", "auditor"])
def test_other_roles_may_not_manage_assembly_points(app, db, role):
    browser, _ = console_client(app, db, role, ["AE"] if role == "embassy" else ())
    assert browser.get(POINTS_PAGE).status_code == 403
    token = csrf_of(browser.get("/console/").get_data(as_text=True))
    assert browser.post(POINTS_PAGE, data={"csrf_token": token, **POINT_FORM}).status_code == 403
    assert count(db, "assembly_points") == 0


def test_a_point_form_without_its_csrf_token_is_refused(app, db):
    browser, _ = console_client(app, db, "coordinator")
    assert browser.post(POINTS_PAGE, data=POINT_FORM).status_code == 403
    assert count(db, "assembly_points") == 0


def test_an_imported_file_is_read_by_the_worker_and_its_rejected_rows_shown(app, db, celery_worker):
    browser, _ = console_client(app, db, "coordinator")
    token = csrf_of(browser.get(POINTS_PAGE).get_data(as_text=True))
    nothing = browser.post(f"{POINTS_PAGE}/import", data={"csrf_token": token}, content_type="multipart/form-data")
    assert nothing.status_code == 422 and field_error(page_of(nothing), "file")
    data = (b"name,kind,lat,lon,capacity,country,active\n"
            b"Dubai shelter,shelter,25.2048,55.2708,40,AE,true\n"
            b"Sohar school,school,24.3475,56.7096,30,OM,\n"
            b"Nowhere,shelter,25.2048,55.2708,-3,AE,true\n"
            b"In Qatar,port,25.2854,51.531,10,AE,true\n")
    response = browser.post(f"{POINTS_PAGE}/import", data={"csrf_token": token, "file": (io.BytesIO(data),
                                                                                          "points.csv")},
                            content_type="multipart/form-data")
    assert response.status_code == 303
    job_id = re.search(r"import_job=([0-9a-f-]{36})", response.headers["Location"]).group(1)
    assert wait_for_job(browser, {}, job_id)["status"] == "succeeded"
    doc = page_of(browser.get(response.headers["Location"]))
    result = doc.get_element_by_id("import-result").text_content()
    assert "2 created" in result and "2 rejected" in result
    rejected = [[c.text_content().strip() for c in r.findall("td")]
                for r in doc.xpath('//table[@id="import-errors"]/tbody/tr')]
    assert [(r[0], r[1]) for r in rejected] == [("4", "capacity"), ("5", "location")]
    assert count(db, "assembly_points") == 2


def test_a_points_file_larger_than_a_json_body_is_taken_as_an_upload(app, db, celery_worker):
    """The console's upload has the API upload's size limit, not the small limit of a JSON body."""
    browser, _ = console_client(app, db, "coordinator")
    token = csrf_of(browser.get(POINTS_PAGE).get_data(as_text=True))
    long_name = b"Shelter of the municipal sports hall and the school beside it - gate " * 2
    rows = b"".join(b"%s%d,shelter,25.2048,55.2708,40,AE,true\n" % (long_name, n) for n in range(1600))
    data = b"name,kind,lat,lon,capacity,country,active\n" + rows
    assert len(data) > app.config["REGISTRY_MAX_BODY_BYTES"]
    response = browser.post(f"{POINTS_PAGE}/import", data={"csrf_token": token, "file": (io.BytesIO(data),
                                                                                          "points.csv")},
                            content_type="multipart/form-data")
    assert response.status_code == 303, response.status_code
    job_id = re.search(r"import_job=([0-9a-f-]{36})", response.headers["Location"]).group(1)
    job = wait_for_job(browser, {}, job_id)
    assert job["status"] == "succeeded", job
    assert count(db, "assembly_points") == 1600, job["result"]
