"""Stocks and flows (SPEC §11): counts from the deployment and status history, small cells suppressed with
the cells that would give them away, in JSON, CSV, HXL and SDMX-CSV; who may ask, and the audit."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import national_body, owner_connection

STOCKS = "/api/v1/statistics/stocks"
FLOWS = "/api/v1/statistics/flows"


def register(client, desk, host: str, sex: str, born: str = "1990-04-12", start: str = "2025-01-15",
             occupation: str = "9111") -> str:
    body = national_body(passport_number=None, phones=[], email=None, sex=sex, date_of_birth=born,
                         vulnerabilities=[], location=None,
                         deployment={"host_country": host, "city": None, "occupation_isco": occupation,
                                     "contract_start": start, "contract_end": None, "legal_status": "documented"})
    response = client.post("/api/v1/nationals", json=body, headers=desk)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def people(client, desk, db):
    """Saudi Arabia: 25 women, 5 men; the Emirates: 12 women, 14 men; Qatar: 3 women."""
    ids = {}
    for host, sex, n in (("SA", "F", 25), ("SA", "M", 5), ("AE", "F", 12), ("AE", "M", 14), ("QA", "F", 3)):
        ids[(host, sex)] = [register(client, desk, host, sex) for _ in range(n)]
    return ids


def cells(answer) -> dict:
    dims = answer["dimensions"]
    return {tuple(c[d] for d in dims): c["count"] for c in answer["cells"]}


def totals(answer) -> dict:
    dims = answer["dimensions"]
    return {tuple(c[d] for d in dims): c["count"] for c in answer["totals"]}


def test_stocks_by_country_and_sex_suppress_small_cells_and_what_gives_them_away(client, make_user, people):
    _, analyst = make_user("analyst")
    response = client.get(STOCKS, query_string={"by": "host_country,sex"}, headers=analyst)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["dimensions"] == ["host_country", "sex"] and answer["at"] == date.today().isoformat()
    assert answer["suppression"]["threshold"] == 10 and "hypercube" in answer["suppression"]["method"]
    found, margins = cells(answer), totals(answer)
    # Small cells and totals are hidden: Saudi men (5), Qatari women (3), Qatar's total (3).
    assert found[("SA", "M")] is None and found[("QA", "F")] is None and margins[("QA", None)] is None
    # Published numbers are true ones; and a hidden one cannot be had by subtraction: Saudi women are hidden too
    # (else Saudi Arabia's 30 minus them gives the men), or Saudi Arabia's total is.
    assert found[("AE", "F")] in (12, None) and found[("AE", "M")] in (14, None)
    assert found[("SA", "F")] is None or margins[("SA", None)] is None
    assert margins.get((None, None)) in (59, None)
    hidden = [c for c in answer["cells"] + answer["totals"] if c["suppressed"]]
    assert all(c["count"] is None and c["reason"] in ("primary", "secondary") for c in hidden)
    assert {c["reason"] for c in hidden} == {"primary", "secondary"}
    # Missing values are a category, never null, in cells.
    assert all(c["sex"] in ("F", "M") for c in answer["cells"])


def test_a_national_returned_before_a_day_is_not_abroad_on_it(client, desk, make_user, people, db):
    _, analyst = make_user("analyst")
    returned = people[("AE", "M")][0]
    # Registered a month ago; returned today.
    with owner_connection() as conn:
        conn.execute("UPDATE nationals SET created_at = now() - interval '30 days'")
        conn.execute("UPDATE national_status_history SET since = since - interval '30 days'")
    assert client.patch(f"/api/v1/nationals/{returned}", json={"status": "returned"}, headers=desk).status_code == 200
    def abroad(**query):
        answer = client.get(STOCKS, query_string=query, headers=analyst).get_json()
        return totals(answer)[()] if answer["totals"] else 0

    # The grand total (no dimension): large enough to be published either way.
    assert abroad() == 58 and abroad(at=(date.today() - timedelta(days=10)).isoformat()) == 59
    # Before anyone was registered: nobody.
    assert abroad(at=(date.today() - timedelta(days=60)).isoformat()) == 0
    # A returned national's status history says when.
    history = db.session.execute(text("SELECT status FROM national_status_history WHERE national_id = :n ORDER BY "
                                      "since"), {"n": returned}).scalars().all()
    assert history == ["abroad", "returned"]


def test_departures_and_returns_by_month(client, desk, make_user, db):
    _, analyst = make_user("analyst")
    for month, n in (("2026-03", 12), ("2026-04", 4)):
        for _ in range(n):
            register(client, desk, "SA", "F", start=f"{month}-10")
    response = client.get(FLOWS, query_string={"kind": "departures", "by": "month,host_country",
                                               "from": "2026-01-01", "to": "2026-06-30"}, headers=analyst)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["dimensions"] == ["month", "host_country"] and answer["kind"] == "departures"
    found = cells(answer)
    assert found[("2026-04", "SA")] is None  # 4: suppressed
    assert found[("2026-03", "SA")] is None or totals(answer)[(None, "SA")] is None  # not derivable
    returns = client.get(FLOWS, query_string={"kind": "returns", "from": "2026-01-01", "to": "2030-01-01"},
                         headers=analyst).get_json()
    assert returns["cells"] == []  # nobody returned


def test_formats_csv_hxl_and_sdmx_csv(client, make_user, people):
    _, analyst = make_user("analyst")
    rows = {}
    for fmt in ("csv", "hxl", "sdmx-csv"):
        response = client.get(STOCKS, query_string={"by": "host_country,sex", "format": fmt}, headers=analyst)
        assert response.status_code == 200 and response.mimetype in ("text/csv", "application/vnd.sdmx.data+csv")
        rows[fmt] = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows["csv"][0] == ["host_country", "sex", "count", "suppressed"]
    assert ["SA", "M", "", "yes"] in rows["csv"] and ["total", "total", "", "yes"] not in rows["csv"][:0]
    assert rows["hxl"][1][:2] == ["#country+code", "#indicator+sex"] and rows["hxl"][1][-2:] == [
        "#population+num", "#meta+suppressed"]
    header = rows["sdmx-csv"][0]
    assert header == ["STRUCTURE", "STRUCTURE_ID", "ACTION", "HOST_COUNTRY", "SEX", "TIME_PERIOD", "OBS_VALUE",
                      "OBS_STATUS", "CONF_STATUS"]


def test_sdmx_csv_reads_back_with_sdmx1(client, make_user, people):
    """SDMX-CSV 2.0 read by the sdmx1 library against the data structure it describes."""
    sdmx = pytest.importorskip("sdmx")
    from sdmx.model import common
    from sdmx.model import v30 as model
    from sdmx.reader.csv import Reader
    _, analyst = make_user("analyst")
    body = client.get(STOCKS, query_string={"by": "host_country,sex", "format": "sdmx-csv"}, headers=analyst)
    structure = model.DataStructureDefinition(id="MIGRANT_STOCKS", maintainer=common.Agency(id="SAGIP"),
                                              version="1.0")
    for dimension in ("HOST_COUNTRY", "SEX"):
        structure.dimensions.getdefault(dimension)
    structure.dimensions.getdefault("TIME_PERIOD", cls=model.TimeDimension)
    structure.measures.getdefault("OBS_VALUE")
    for attribute in ("OBS_STATUS", "CONF_STATUS"):
        structure.attributes.getdefault(attribute)
    message = Reader().convert(io.BytesIO(body.get_data()), structure=structure)
    observations = {(o.key["HOST_COUNTRY"].value, o.key["SEX"].value): (
        o.value, o.attached_attribute["OBS_STATUS"].value, o.attached_attribute["CONF_STATUS"].value)
        for o in message.data[0].obs}
    assert isinstance(message, sdmx.message.DataMessage)
    assert observations[("SA", "M")] == ("", "O", "C")  # 5 men: suppressed, primary
    assert observations[("QA", "F")][1:] == ("O", "C")
    assert {k for k in observations if "_T" in k} >= {("_T", "_T"), ("SA", "_T"), ("_T", "F")}
    assert all(v[1] == "A" and int(v[0]) >= 10 for v in observations.values() if v[2] == "F")


def test_hxl_reads_back_with_libhxl(client, make_user, people):
    hxl = pytest.importorskip("hxl")
    _, analyst = make_user("analyst")
    body = client.get(STOCKS, query_string={"by": "host_country,sex", "format": "hxl"},
                      headers=analyst).get_data(as_text=True)
    dataset = hxl.data(io.BytesIO(body.encode()))
    assert [c.display_tag for c in dataset.columns] == ["#country+code", "#indicator+sex", "#population+num",
                                                        "#meta+suppressed"]
    values = {(row.get("#country+code"), row.get("#indicator+sex")): (row.get("#population+num"),
                                                                      row.get("#meta+suppressed")) for row in dataset}
    assert values[("SA", "M")][0] in ("", None) and values[("SA", "M")][1] == "yes"
    assert values[("AE", "M")] in (("14", "no"), ("", "yes"), (None, "yes"))


@pytest.mark.parametrize("query, field", [
    ({"by": "religion"}, "by"),
    ({"by": "sex,sex"}, "by"),
    ({"by": "sex,age_band,host_country,status"}, "by"),
    ({"at": "2999-01-01"}, "at"),
    ({"at": "yesterday"}, "at"),
    ({"format": "xls"}, "format"),
])
def test_bad_stock_queries_are_422_naming_the_field(client, make_user, query, field):
    _, analyst = make_user("analyst")
    response = client.get(STOCKS, query_string=query, headers=analyst)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize("query, field", [
    ({"from": "2026-01-01", "to": "2026-02-01"}, "kind"),
    ({"kind": "births", "from": "2026-01-01", "to": "2026-02-01"}, "kind"),
    ({"kind": "returns", "from": "2026-03-01", "to": "2026-02-01"}, "to"),
    ({"kind": "returns", "from": "2026-01-01", "to": "2026-02-01", "by": "month,status"}, "by"),
])
def test_bad_flow_queries_are_422_naming_the_field(client, make_user, query, field):
    _, analyst = make_user("analyst")
    response = client.get(FLOWS, query_string=query, headers=analyst)
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_who_may_ask_and_the_embassy_sees_its_jurisdiction_and_every_request_is_audited(client, make_user,
                                                                                        people, db):
    for role in ("desk", "auditor"):
        assert client.get(STOCKS, headers=make_user(role)[1]).status_code == 403
    _, emirates = make_user("embassy", ["AE"])
    answer = client.get(STOCKS, query_string={"by": "host_country"}, headers=emirates).get_json()
    assert set(cells(answer)) == {("AE",)} and cells(answer)[("AE",)] == 26
    analyst_id, analyst = make_user("analyst")
    assert client.get(STOCKS, query_string={"by": "sex", "purpose": "migration profile 2026"},
                      headers=analyst).status_code == 200
    event = db.session.execute(text("SELECT action, object_type, purpose, details FROM audit_events WHERE actor_id = "
                                    ":a ORDER BY id DESC LIMIT 1"), {"a": analyst_id}).one()
    assert event.object_type == "statistics" and event.purpose == "migration profile 2026"
    assert event.details["dimensions"] == ["sex"]
    # An analyst never reads a record.
    assert client.get("/api/v1/nationals", headers=analyst).status_code == 403
    assert client.get(f"/api/v1/nationals/{people[('SA', 'F')][0]}", headers=analyst).status_code == 403


def test_an_analyst_signs_in_to_the_console_and_reaches_no_record(app, db, people):
    from tests.test_console_rosters import console_client
    browser, _ = console_client(app, db, "analyst")
    home = browser.get("/console/")
    assert home.status_code == 200
    for page in ("/console/nationals", f"/console/nationals/{people[('SA', 'F')][0]}", "/console/map",
                 "/console/crises", "/console/audit"):
        assert browser.get(page).status_code in (403, 404), page


def test_the_dimensions_the_service_offers_are_those_the_database_computes():
    import importlib.util
    from pathlib import Path

    from registry.statistics.tables import DIMENSIONS
    path = next(Path(__file__).resolve().parent.parent.glob("migrations/versions/*_0021_statistics.py"))
    spec = importlib.util.spec_from_file_location("statistics_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert tuple(migration.DIMENSIONS) == DIMENSIONS


def test_stocks_by_region_use_the_m49_subregion_of_the_host_country(client, make_user, people):
    _, analyst = make_user("analyst")
    answer = client.get(STOCKS, query_string={"by": "region"}, headers=analyst).get_json()
    # Saudi Arabia, the Emirates and Qatar: all Western Asia (145).
    assert cells(answer) == {("145",): 59}
