"""Roster exports (SPEC §4.3, §6a, §6b): every format read back by an independent reader and checked for
the same people and numbers; the role's columns; the caller's jurisdiction; purpose; large exports built
by the worker, downloaded by their requester only, expiring; ``registry export``."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
import shapely
from lxml import etree
from pdfminer.high_level import extract_text
from pdfminer.pdfpage import PDFPage

from tests.test_imports import wait_for_job
from tests.test_rosters import build, coordinator, dubai, entries  # noqa: F401  (fixtures)

PFIF_XSD = Path(__file__).with_name("data") / "pfif-1.4.xsd"
KML = "{http://www.opengis.net/kml/2.2}"
PFIF = "{http://zesty.ca/pfif/1.4}"


@pytest.fixture
def roster(client, coordinator, dubai):  # noqa: F811
    built = build(client, coordinator, dubai["crisis"]["id"], vehicle_capacity=3, max_distance_km=60)
    rows = entries(client, coordinator, built["id"])
    return {**dubai, "roster": built, "rows": rows}


def export(client, headers, roster_id, fmt, **query):
    response = client.get(f"/api/v1/rosters/{roster_id}/export", headers=headers,
                          query_string={"format": fmt, "purpose": "bus manifests", **query})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["Cache-Control"] == "no-store"
    return response


def placed(rows):
    return {k: r for k, r in rows.items() if r["assembly_point_id"]}


def test_csv_and_hxl_carry_every_national_with_their_place_or_reason(client, coordinator, roster):
    rows = roster["rows"]
    response = export(client, coordinator, roster["roster"]["id"], "csv")
    assert response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["national_id"] for r in table} == set(rows) and len(table) == len(rows)
    for line in table:
        entry = rows[line["national_id"]]
        assert line["assembly_point"] == (entry["assembly_point"] or "")
        assert line["vehicle"] == (str(entry["vehicle"]) if entry["vehicle"] else "")
        assert line["unassigned_reason"] == (entry["unassigned_reason"] or "")
        assert line["priority"] == str(entry["priority"]) and line["household_id"] == entry["household_id"]
        assert line["welfare_status"] == "unknown" and line["zone"] == entry["zone"]
        assert float(line["distance_km"]) == pytest.approx(entry["distance_km"])
    # The manifest order: by point, vehicle and seat; the unplaced last.
    assert [bool(line["assembly_point"]) for line in table] == sorted((bool(line["assembly_point"]) for line in table),
                                                                      reverse=True)
    worker0 = next(line for line in table if line["national_id"] == roster["people"]["worker0"])
    assert worker0["family_name"] == "'=Worker0"  # never a formula in a spreadsheet
    assert worker0["phones"] == "+971501234560"
    # A coordinator's file has no medical detail nor birth dates; an embassy officer's has.
    assert "vulnerabilities" not in table[0] and "date_of_birth" not in table[0]

    hxl = list(csv.reader(io.StringIO(export(client, coordinator, roster["roster"]["id"], "hxl")
                                      .get_data(as_text=True))))
    header, tags, body = hxl[0], hxl[1], hxl[2:]
    assert header == list(table[0].keys()) and all(tag.startswith("#") for tag in tags)
    assert dict(zip(header, tags))["national_id"] == "#meta+id"
    assert dict(zip(header, tags))["phones"] == "#contact+phone"
    assert {line[0] for line in body} == set(rows)


def test_an_embassy_officer_exports_their_jurisdiction_with_casework_columns(client, make_user, roster):
    _, ae = make_user("embassy", ["AE"])
    _, qa = make_user("embassy", ["QA"])
    table = list(csv.DictReader(io.StringIO(export(client, ae, roster["roster"]["id"], "csv").get_data(as_text=True))))
    assert len(table) == len(roster["rows"]) and "vulnerabilities" in table[0]
    medical = next(line for line in table if line["national_id"] == roster["people"]["medical"])
    assert medical["vulnerabilities"] == "chronic_illness" and medical["native_name"] == "مريم المدني"
    for fmt in ("csv", "geojson", "pfif"):
        body = export(client, qa, roster["roster"]["id"], fmt).get_data(as_text=True)
        assert not any(national_id in body for national_id in roster["rows"]), fmt


def test_exports_need_a_purpose_and_a_known_format(client, coordinator, desk, roster):
    url = f"/api/v1/rosters/{roster['roster']['id']}/export"
    assert client.get(url, headers=coordinator, query_string={"format": "csv"}).status_code == 400
    bad = client.get(url, headers=coordinator, query_string={"format": "docx", "purpose": "bus manifests"})
    assert bad.status_code == 422 and "format" in bad.get_json()["errors"]
    assert client.get(url, headers=desk, query_string={"format": "csv", "purpose": "x" * 10}).status_code == 403


def test_the_export_is_in_the_audit_trail_with_its_purpose(client, coordinator, make_user, roster):
    export(client, coordinator, roster["roster"]["id"], "geojson")
    _, auditor = make_user("auditor")
    events = client.get("/api/v1/audit", headers=auditor,
                        query_string={"object_id": roster["roster"]["id"], "action": "rosters.export_roster"})
    items = events.get_json()["items"]
    assert items and items[0]["purpose"] == "bus manifests" and items[0]["result_count"] == len(roster["rows"])
    assert items[0]["details"]["format"] == "geojson" and "family_name" in items[0]["details"]["columns"]


def test_xlsx_has_a_sheet_per_point_with_frozen_headers_and_filters(client, coordinator, roster):
    data = export(client, coordinator, roster["roster"]["id"], "xlsx").get_data()
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Dubai shelter", "Sharjah school", "Not assigned"]
    seen = {}
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
        header = [cell.value for cell in sheet[1]]
        for values in sheet.iter_rows(min_row=2, values_only=True):
            line = dict(zip(header, values))
            seen[line["national_id"]] = (sheet.title, line)
    rows = roster["rows"]
    assert set(seen) == set(rows)
    for national_id, (title, line) in seen.items():
        assert title == (rows[national_id]["assembly_point"] or "Not assigned")
        assert line["vehicle"] == rows[national_id]["vehicle"] and line["priority"] == rows[national_id]["priority"]
    assert seen[roster["people"]["worker0"]][1]["family_name"] == "=Worker0"  # stored as text, not a formula


@pytest.mark.parametrize("paper, size", [("a4", (595, 842)), ("letter", (612, 792))])
def test_pdf_manifests_have_a_page_group_per_vehicle_on_a4_and_letter(client, coordinator, roster, paper, size):
    data = export(client, coordinator, roster["roster"]["id"], "pdf", paper=paper).get_data()
    pages = list(PDFPage.get_pages(io.BytesIO(data)))
    # Dubai: vehicles 1 and 2; Sharjah: vehicle 1; the unplaced: one page each.
    assert len(pages) == 4
    for page in pages:
        width, height = page.mediabox[2] - page.mediabox[0], page.mediabox[3] - page.mediabox[1]
        assert sorted((round(width), round(height))) == sorted(size)
    texts = [extract_text(io.BytesIO(data), page_numbers=[n]) for n in range(len(pages))]
    for text, (point, vehicle) in zip(texts, [("Dubai shelter", 1), ("Dubai shelter", 2), ("Sharjah school", 1)]):
        assert point in text and f"Vehicle {vehicle}" in text
    rows = roster["rows"]
    dubai_first = [r for r in rows.values() if r["assembly_point"] == "Dubai shelter" and r["vehicle"] == 1]
    for row in dubai_first:
        assert row["national_id"] in texts[0]
    # The Arabic name is real text: pdfminer reads glyphs left to right, so right-to-left text comes reversed.
    assert "مريم المدني".replace(" ", "")[::-1] in texts[0].replace(" ", "")
    assert "Not assigned" in texts[3] and "no capacity in reach" in texts[3]
    everything = "".join(texts)
    assert all(everything.count(national_id) == 1 for national_id in rows)


def test_geojson_is_rfc_7946_points_of_the_same_people_and_the_points(client, coordinator, roster):
    response = export(client, coordinator, roster["roster"]["id"], "geojson")
    assert response.mimetype == "application/geo+json"
    collection = json.loads(response.get_data())
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    people = [f for f in collection["features"] if f["properties"]["feature_type"] == "national"]
    points = {f["properties"]["name"]: f for f in collection["features"]
              if f["properties"]["feature_type"] == "assembly_point"}
    rows = roster["rows"]
    assert {f["properties"]["national_id"] for f in people} == set(rows)
    for feature in people:
        row = rows[feature["properties"]["national_id"]]
        if row["location"]:
            assert shapely.geometry.shape(feature["geometry"]).equals(
                shapely.Point(row["location"]["lon"], row["location"]["lat"]))
        assert feature["properties"]["vehicle"] == row["vehicle"]
    assert set(points) == {"Dubai shelter", "Sharjah school"}
    assert points["Dubai shelter"]["properties"]["assigned"] == 4
    assert shapely.geometry.shape(points["Sharjah school"]["geometry"]).equals(shapely.Point(55.4209, 25.3463))


def test_kml_has_a_folder_per_point_with_its_people(client, coordinator, roster):
    tree = etree.fromstring(export(client, coordinator, roster["roster"]["id"], "kml").get_data())
    folders = {f.findtext(f"{KML}name"): f for f in tree.iter(f"{KML}Folder")}
    assert list(folders) == ["Dubai shelter", "Sharjah school", "Not assigned"]
    placemarks = sum(len(f.findall(f"{KML}Placemark")) for f in folders.values())
    assert placemarks == len(roster["rows"]) + 2  # the people, and each point's own placemark
    rows = roster["rows"]
    for placemark in folders["Sharjah school"].findall(f"{KML}Placemark"):
        data = {d.get("name"): d.findtext(f"{KML}value") for d in placemark.iter(f"{KML}Data")}
        coordinates = placemark.findtext(f".//{KML}coordinates")
        if "national_id" in data:
            row = rows[data["national_id"]]
            lon, lat = map(float, coordinates.split(",")[:2])
            assert (lat, lon) == pytest.approx((row["location"]["lat"], row["location"]["lon"]), abs=1e-6)


def test_pfif_is_valid_pfif_1_4_with_a_welfare_note_per_person(client, coordinator, roster):
    people = roster["people"]
    url = f"/api/v1/rosters/{roster['roster']['id']}/entries/{people['elder']}"
    client.patch(url, json={"welfare_status": "safe"}, headers=coordinator)
    client.patch(url.replace(people["elder"], people["far"]), json={"welfare_status": "missing"}, headers=coordinator)
    document = etree.fromstring(export(client, coordinator, roster["roster"]["id"], "pfif").get_data())
    etree.XMLSchema(etree.parse(str(PFIF_XSD))).assertValid(document)
    persons = document.findall(f"{PFIF}person")
    ids = {p.findtext(f"{PFIF}person_record_id").split("/", 1)[1]: p for p in persons}
    assert set(ids) == set(roster["rows"])
    status = {key: person.findtext(f"{PFIF}note/{PFIF}status") for key, person in ids.items()}
    assert status[people["elder"]] == "believed_alive" and status[people["far"]] == "believed_missing"
    assert status[people["son"]] == "information_sought"
    assert ids[people["medical"]].findtext(f"{PFIF}family_name") == "Medical"


def test_large_exports_are_built_by_the_worker_for_their_requester_and_expire(app, client, coordinator, make_user,
                                                                               roster):
    url = f"/api/v1/rosters/{roster['roster']['id']}/export"
    inline, ttl = app.config["REGISTRY_EXPORT_INLINE_ROWS"], app.config["REGISTRY_EXPORT_TTL_SECONDS"]
    app.config["REGISTRY_EXPORT_INLINE_ROWS"] = 5
    try:
        accepted = client.get(url, headers=coordinator, query_string={"format": "csv", "purpose": "bus manifests"})
        assert accepted.status_code == 202 and accepted.headers["Location"].startswith("/api/v1/jobs/")
        job = wait_for_job(client, coordinator, accepted.get_json()["job_id"])
        assert job["status"] == "succeeded" and job["result"]["rows"] == len(roster["rows"])
        download = client.get(job["result"]["download_url"], headers=coordinator)
        assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
        table = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
        assert {line["national_id"] for line in table} == set(roster["rows"])
        # The file on disk is encrypted: no name in it.
        from registry.jobs.files import path_of
        with app.app_context():
            stored = path_of(job["id"]).read_bytes()
        assert b"Medical" not in stored and b"Worker1" not in stored
        # Someone else, even an admin, gets nothing.
        _, admin = make_user("admin")
        assert client.get(job["result"]["download_url"], headers=admin).status_code == 404
        # Past its time the file is gone: 410, and the housekeeping removes it from disk.
        app.config["REGISTRY_EXPORT_TTL_SECONDS"] = 0
        second = client.get(url, headers=coordinator, query_string={"format": "kml", "purpose": "bus manifests"})
        expired = wait_for_job(client, coordinator, second.get_json()["job_id"])
        assert client.get(expired["result"]["download_url"], headers=coordinator).status_code == 410
        from registry.jobs.files import purge_expired
        with app.app_context():
            assert purge_expired() >= 1 and not path_of(expired["id"]).exists()
    finally:
        app.config["REGISTRY_EXPORT_INLINE_ROWS"], app.config["REGISTRY_EXPORT_TTL_SECONDS"] = inline, ttl


def test_registry_export_writes_the_file_with_progress_and_audits_it(app, roster, tmp_path):
    from registry.extensions import db
    target = tmp_path / "roster.csv"
    result = app.test_cli_runner().invoke(args=["export", roster["roster"]["id"], "--format", "csv", "--purpose",
                                                "print for the bus company", "--role", "coordinator",
                                                "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert "exporting" in result.output and f"{len(roster['rows'])} rows written" in result.output
    table = list(csv.DictReader(target.open(encoding="utf-8")))
    assert {line["national_id"] for line in table} == set(roster["rows"]) and "vulnerabilities" not in table[0]
    assert target.stat().st_mode & 0o077 == 0
    with app.app_context():
        from sqlalchemy import text
        purpose = db.session.execute(text("SELECT purpose FROM audit_events WHERE action = 'rosters.export' "
                                          "ORDER BY id DESC LIMIT 1")).scalar()
    assert purpose == "print for the bus company"
    missing = app.test_cli_runner().invoke(args=["export", roster["roster"]["id"], "--format", "csv"])
    assert missing.exit_code != 0 and "--purpose" in missing.output


def test_one_assembly_points_manifests(client, coordinator, roster):
    sharjah = roster["points"]["sharjah"]
    table = list(csv.DictReader(io.StringIO(export(client, coordinator, roster["roster"]["id"], "csv",
                                                   assembly_point_id=sharjah).get_data(as_text=True))))
    wanted = {k for k, r in roster["rows"].items() if r["assembly_point_id"] == sharjah}
    assert {line["national_id"] for line in table} == wanted and len(wanted) == 3
    data = export(client, coordinator, roster["roster"]["id"], "pdf", assembly_point_id=sharjah).get_data()
    assert len(list(PDFPage.get_pages(io.BytesIO(data)))) == 1


def test_a_pdf_too_large_for_memory_is_refused_with_the_way_out(app, client, coordinator, roster):
    limit = app.config["REGISTRY_PDF_MAX_ROWS"]
    app.config["REGISTRY_PDF_MAX_ROWS"] = 5
    try:
        url = f"/api/v1/rosters/{roster['roster']['id']}/export"
        refused = client.get(url, headers=coordinator, query_string={"format": "pdf", "purpose": "bus manifests"})
        assert refused.status_code == 422 and "assembly_point_id" in refused.get_json()["errors"]
        one_point = client.get(url, headers=coordinator, query_string={
            "format": "pdf", "purpose": "bus manifests", "assembly_point_id": roster["points"]["sharjah"]})
        assert one_point.status_code == 200 and one_point.mimetype == "application/pdf"
    finally:
        app.config["REGISTRY_PDF_MAX_ROWS"] = limit
