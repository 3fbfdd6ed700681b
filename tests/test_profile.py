"""The migration-profile report (SPEC §11): its tables with the API's suppression, as XLSX and PDF (charts), on
the command line and as a job whose file only its creator downloads; an embassy officer's covers their
jurisdiction; bad input is a 422 naming the field."""
from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook
from pdfminer.high_level import extract_pages, extract_text
from pdfminer.layout import LTFigure, LTImage
from sqlalchemy import text

from tests.test_imports import wait_for_job
from tests.test_statistics import register

PROFILE = "/api/v1/statistics/profile"
YEAR = date.today().year
STOCK_TABLES = {"destination": "host_country", "sex": "sex", "age": "age_band", "occupation": "occupation",
                "destination_sex": "host_country,sex", "age_sex": "age_band,sex"}
SHEETS = ["Cover", "destination", "sex", "age", "occupation", "destination_sex", "age_sex", "departures", "returns",
          "repatriations"]


@pytest.fixture
def people(client, desk, db):
    """Departed on 1 January this year: Saudi Arabia 25 women, 5 men; the Emirates 12 women, 14 men; Qatar 3
    women. Totals: women 40, men 19, 59 in all."""
    start = f"{YEAR}-01-01"
    for host, sex, n in (("SA", "F", 25), ("SA", "M", 5), ("AE", "F", 12), ("AE", "M", 14), ("QA", "F", 3)):
        for _ in range(n):
            register(client, desk, host, sex, start=start, occupation="9111" if sex == "F" else "8322")


def sheet_rows(sheet) -> dict:
    """Code (or the row's label when it has none: "Total") → the row's printed values, below the heading row."""
    found = {}
    for row in sheet.iter_rows(min_row=6, values_only=True):
        if row[1] is None:
            break
        found[row[0] or row[1]] = list(row[2:])
    return found


def assert_same_as_api(sheet, answer) -> None:
    """Each cell and total of a statistics answer, printed in ``sheet``: the count, or "x" where suppressed."""
    rows = sheet_rows(sheet)
    dims = answer["dimensions"]
    headings = [cell.value for cell in sheet[5]][2:]
    sexes = {"Female": "F", "Male": "M", "Other (X)": "X", "Unknown": "unknown", "Total": None, "People": None}
    columns = [sexes[h] for h in headings]
    for cell in answer["cells"] + answer["totals"]:
        row = rows[cell[dims[0]] if cell[dims[0]] is not None else "Total"]
        printed = row[columns.index(cell[dims[1]] if len(dims) > 1 else None)]
        assert printed == ("x" if cell["suppressed"] else cell["count"]), (sheet.title, cell, printed)
    note = [r[0] for r in sheet.iter_rows(values_only=True) if r and str(r[0]).startswith("Cells suppressed")]
    assert note == [f"Cells suppressed in this table: {answer['suppression']['suppressed_cells']}."]


def assert_no_small_number(workbook) -> None:
    """Every printed count of every table is 0, at least the threshold, or the suppression mark."""
    for name in SHEETS[1:]:
        for values in sheet_rows(workbook[name]).values():
            for value in values:
                if value is None:
                    continue
                assert value == "x" or (isinstance(value, int) and (value == 0 or value >= 10)), (name, values)


def cli(app, tmp_path, fmt: str):
    output = tmp_path / f"profile.{fmt}"
    result = app.test_cli_runner().invoke(args=["profile", "--year", str(YEAR), "--format", fmt,
                                                "--output", str(output)])
    assert result.exit_code == 0, result.output
    return output


def test_the_cli_writes_the_xlsx_tables_with_small_counts_suppressed_as_the_api_does(app, tmp_path, people, client,
                                                                                    make_user, db):
    workbook = load_workbook(cli(app, tmp_path, "xlsx"))
    assert workbook.sheetnames == SHEETS
    cover = {row[0]: row[1] for row in workbook["Cover"].iter_rows(values_only=True) if row and row[0]}
    assert cover["Year"] == YEAR and cover["Suppression threshold"] == 10 and "hypercube" in cover[
        "Suppression method"]
    assert cover["Scope"] == "Nationals abroad in every host country" and cover["Generated (UTC)"]
    assert cover["Suppressed cells are shown as"] == "x"
    sex = sheet_rows(workbook["sex"])
    assert sex["F"] == [40] and sex["M"] == [19] and sex["Total"] == [59]
    destination = sheet_rows(workbook["destination"])
    assert destination["SA"] == [30] and destination["QA"] == ["x"]  # 3 women in Qatar: never printed
    assert workbook["destination"]["B6"].value == "Saudi Arabia"  # names, largest published first
    # Every stock table hides the same cells and totals as GET /statistics/stocks, and prints the same numbers.
    _, analyst = make_user("analyst")
    for sheet, by in STOCK_TABLES.items():
        answer = client.get("/api/v1/statistics/stocks", query_string={"by": by}, headers=analyst).get_json()
        assert_same_as_api(workbook[sheet], answer)
    for kind in ("departures", "returns", "repatriations"):  # and the flows as GET /statistics/flows
        answer = client.get("/api/v1/statistics/flows", query_string={
            "kind": kind, "from": f"{YEAR}-01-01", "to": date.today().isoformat()}, headers=analyst).get_json()
        assert_same_as_api(workbook[kind], answer)
    by_sex = sheet_rows(workbook["destination_sex"])
    assert by_sex["SA"][1] == "x" and by_sex["QA"][0] == "x"
    departures = sheet_rows(workbook["departures"])
    assert departures[f"{YEAR}-01"] == [59] and len(departures) == date.today().month + 1
    occupation = sheet_rows(workbook["occupation"])
    assert occupation["9"] == [40] and occupation["8"] == [19]  # ISCO-08 major groups, with their titles
    assert workbook["occupation"]["B7"].value == "9 Elementary occupations"
    assert_no_small_number(workbook)
    footnotes = [row[0] for row in workbook["destination"].iter_rows(values_only=True) if row and row[0]
                 and str(row[0]).startswith("x: suppressed")]
    assert footnotes and "threshold 10" in footnotes[0] and "hypercube" in footnotes[0]
    # The command is audited, as the service.
    events = "SELECT count(*) FROM audit_events WHERE action = 'statistics.profile'"
    assert db.session.execute(text(events)).scalar() == 1


def test_the_cli_writes_the_pdf_with_titles_numbers_and_charts_without_suppressed_values(app, tmp_path, people):
    output = cli(app, tmp_path, "pdf")
    words = " ".join(extract_text(output).split())
    assert f"Migration profile {YEAR}" in words
    for title in ("Nationals abroad by destination", "Nationals abroad by age band and sex",
                  "Departures by month", "Crisis repatriations by month", "Saudi Arabia", "United Arab Emirates"):
        assert title in words
    # Table 1 (destinations): Saudi Arabia's 30, the Emirates and Qatar suppressed, the total 59.
    assert "Saudi Arabia United Arab Emirates Qatar Total People 30 x x 59" in words
    assert "Sex Female Male Total People 40 19 59" in words
    assert "2 destinations with a suppressed count are left out" in words
    assert "threshold 10" in words
    images = [item for page in extract_pages(output) for element in page if isinstance(element, LTFigure)
              for item in element if isinstance(item, LTImage)]
    assert len(images) >= 3  # destinations, the age pyramid, occupations, the monthly lines


def test_a_profile_job_builds_a_file_only_its_creator_downloads(client, make_user, people, celery_worker, db):
    _, analyst = make_user("analyst")
    response = client.post(PROFILE, json={"year": YEAR, "format": "xlsx"}, headers=analyst)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    assert response.headers["Location"] == f"/api/v1/jobs/{job_id}"
    job = wait_for_job(client, analyst, job_id)
    assert job["status"] == "succeeded", job
    assert job["result"]["download_url"] == f"/api/v1/jobs/{job_id}/download"
    assert job["result"]["filename"] == f"migration-profile-{YEAR}.xlsx"
    download = client.get(job["result"]["download_url"], headers=analyst)
    assert download.status_code == 200 and download.mimetype.endswith("spreadsheetml.sheet")
    workbook = load_workbook(io.BytesIO(download.data))
    assert sheet_rows(workbook["sex"])["Total"] == [59] and sheet_rows(workbook["destination"])["QA"] == ["x"]
    assert_no_small_number(workbook)
    _, another = make_user("analyst")
    assert client.get(job["result"]["download_url"], headers=another).status_code == 404
    actions = db.session.execute(text("SELECT action FROM audit_events WHERE object_ids @> ARRAY[CAST(:j AS uuid)]"),
                                 {"j": job_id}).scalars().all()
    assert len(actions) >= 2  # the request and the download


def test_a_pdf_profile_job(client, make_user, people, celery_worker):
    _, coordinator = make_user("coordinator")
    response = client.post(PROFILE, json={"year": YEAR, "format": "pdf", "purpose": "annual profile"},
                           headers=coordinator)
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, coordinator, response.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    download = client.get(job["result"]["download_url"], headers=coordinator)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert "Nationals abroad by destination" in " ".join(extract_text(io.BytesIO(download.data)).split())


def test_an_embassy_officers_profile_has_only_their_countries(client, make_user, people, celery_worker):
    _, officer = make_user("embassy", ["AE"])
    response = client.post(PROFILE, json={"year": YEAR, "format": "xlsx"}, headers=officer)
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, officer, response.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["filename"] == f"migration-profile-{YEAR}-AE.xlsx"
    workbook = load_workbook(io.BytesIO(client.get(job["result"]["download_url"], headers=officer).data))
    assert set(sheet_rows(workbook["destination"])) == {"AE", "Total"}
    assert sheet_rows(workbook["destination"])["Total"] == [26]
    assert sheet_rows(workbook["sex"]) == {"F": [12], "M": [14], "Total": [26]}
    cover = {row[0]: row[1] for row in workbook["Cover"].iter_rows(values_only=True) if row and row[0]}
    assert cover["Scope"] == "Nationals in the jurisdiction of AE"


@pytest.mark.parametrize("body, field", [
    ({"year": 1989, "format": "xlsx"}, "year"),
    ({"year": YEAR + 1, "format": "pdf"}, "year"),
    ({"year": str(YEAR), "format": "pdf"}, "year"),
    ({"format": "pdf"}, "year"),
    ({"year": YEAR, "format": "docx"}, "format"),
    ({"year": YEAR}, "format"),
    ({"year": YEAR, "format": "pdf", "colour": "red"}, "colour"),
])
def test_bad_input_is_a_422_naming_the_field_and_queues_nothing(client, make_user, db, body, field):
    _, analyst = make_user("analyst")
    response = client.post(PROFILE, json=body, headers=analyst)
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json" and field in response.get_json()["errors"]
    assert db.session.execute(text("SELECT count(*) FROM jobs")).scalar() == 0


def test_roles_without_statistics_may_not_ask_for_a_profile(client, make_user):
    for role in ("desk", "auditor"):
        _, headers = make_user(role)
        assert client.post(PROFILE, json={"year": YEAR, "format": "pdf"}, headers=headers).status_code == 403


def test_a_year_with_nobody_abroad_is_a_report_of_zeros_without_charts(app, tmp_path, db):
    output = tmp_path / "empty.pdf"
    result = app.test_cli_runner().invoke(args=["profile", "--year", "1995", "--format", "pdf",
                                                "--output", str(output)])
    assert result.exit_code == 0, result.output
    words = " ".join(extract_text(output).split())
    assert "Migration profile 1995" in words and "Nothing published to draw" in words
    assert "Stocks counted at the end of 1995-12-31" in words


def test_age_bands_are_printed_as_years():
    from registry.statistics.profile import _Labels
    assert [_Labels.age(c) for c in ("00-04", "05-09", "60-64", "65+", "unknown")] == [
        "0–4", "5–9", "60–64", "65+", "Unknown"]


def test_the_cli_refuses_a_year_out_of_range(app, tmp_path, db):
    result = app.test_cli_runner().invoke(args=["profile", "--year", "1950", "--format", "pdf",
                                                "--output", str(tmp_path / "p.pdf")])
    assert result.exit_code == 2 and "1990" in result.output and not (tmp_path / "p.pdf").exists()
