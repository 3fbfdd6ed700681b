"""The imports page of the console (SPEC §9, §4.2), through the Flask client: who may open it, CSRF, bad files
refused beside the file field with nothing stored, a real import through the real worker with its rejected
rows and reasons, and jobs seen only by their creator (and admins)."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook

from registry.imports.rows import COLUMNS
from tests.conftest import count
from tests.console_helpers import csrf_of
from tests.test_console_rosters import console_client, events, field_error, page_of
from tests.test_imports import csv_bytes, row, wait_for_job

PAGE = "/console/imports"


def post_file(browser, data: bytes | None, filename: str = "workers.csv", token: str | None = None):
    if token is None:
        token = csrf_of(browser.get(PAGE).get_data(as_text=True))
    form = {"csrf_token": token}
    if data is not None:
        form["file"] = (io.BytesIO(data), filename)
    return browser.post(PAGE, data=form, content_type="multipart/form-data")


def job_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return re.search(r"job=([0-9a-f-]{36})", response.headers["Location"]).group(1)


def main_text(response) -> str:
    return page_of(response).xpath("//main")[0].text_content()


def table_rows(doc, table_id: str) -> list[list[str]]:
    return [[" ".join(c.text_content().split()) for c in r.findall("td")]
            for r in doc.xpath(f'//table[@id="{table_id}"]/tbody/tr')]


@pytest.mark.parametrize("role", ["desk", "admin"])
def test_desk_and_admin_open_the_page_with_the_form_and_the_template(app, db, role):
    browser, _ = console_client(app, db, role)
    response = browser.get(PAGE)
    assert response.status_code == 200
    doc = page_of(response)
    assert "Import" in main_text(response)
    field = doc.get_element_by_id("file")
    assert field.get("type") == "file" and doc.xpath('//label[@for="file"]')
    assert doc.xpath('//form[@enctype="multipart/form-data"]//input[@name="csrf_token"]')
    assert doc.xpath('//nav//a[@aria-current="page"]')[0].text_content() == "Imports"
    template = browser.get(doc.get_element_by_id("template-link").get("href"))
    assert template.status_code == 200 and template.mimetype == "text/csv"
    assert tuple(template.get_data(as_text=True).splitlines()[0].split(",")) == COLUMNS
    assert "attachment" in template.headers["Content-Disposition"]


@pytest.mark.parametrize("role, jurisdiction", [("coordinator", ()), ("embassy", ("AE",)), ("auditor", ())])
def test_other_roles_may_not_open_the_page_nor_upload(app, db, role, jurisdiction):
    browser, _ = console_client(app, db, role, jurisdiction)
    assert browser.get(PAGE).status_code == 403
    assert browser.get(f"{PAGE}/template.csv").status_code == 403
    token = csrf_of(browser.get("/console/").get_data(as_text=True))
    assert post_file(browser, csv_bytes([row()]), token=token).status_code == 403
    assert count(db, "jobs") == 0


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/console/login?next=/console/imports" in response.headers["Location"]


def test_an_upload_without_its_csrf_token_is_refused_and_nothing_is_stored(app, db):
    browser, _ = console_client(app, db, "desk")
    response = post_file(browser, csv_bytes([row()]), token="")
    assert response.status_code == 403
    assert count(db, "jobs") == 0 and count(db, "import_files") == 0


def _old_excel() -> bytes:
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600


@pytest.mark.parametrize("data, filename, says", [
    (None, "", "Choose a CSV or XLSX file"),
    (b"", "workers.csv", "empty"),
    (b"family_name,given_names\nSantos,Juan\n", "workers.txt", "ends in .txt"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png", "CSV or XLSX"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "workers.csv", "binary"),
    (_old_excel(), "workers.xlsx", "holds no XLSX workbook"),
    (_old_excel(), "workers.xls", "ends in .xls"),
    (b"PK\x03\x04not really a zip", "workers.xlsx", "not a readable XLSX"),
    (b"PK\x03\x04not really a zip", "workers.csv", "holds an XLSX workbook"),
    (b"family_name,given_names,sex,date_of_birth,nationality,host_country,colour\n"
     + b"Santos,Juan,M,1988-03-01,PH,QA,blue\n", "workers.csv", "Unknown columns: 'colour'"),
    (b"family_name,given_names,colour\nSantos,Juan,blue\n", "workers.csv", "Is the header row missing?"),
    (b"family_name,given_names,sex\nSantos,Juan,M\n", "workers.csv", "Missing required columns"),
    ("famil\xeda_name,given_names\nPe\xf1a,Juan\n".encode("latin-1"), "workers.csv", "UTF-8"),
])
def test_a_bad_file_is_refused_beside_the_field_and_nothing_is_stored(app, db, data, filename, says):
    browser, _ = console_client(app, db, "desk")
    response = post_file(browser, data, filename)
    assert response.status_code == 422
    doc = page_of(response)
    assert says in field_error(doc, "file")
    assert doc.get_element_by_id("file").get("aria-describedby").split() == ["file-error", "file-hint"]
    assert count(db, "jobs") == 0 and count(db, "import_files") == 0 and count(db, "outbox") == 0
    if data:  # the page never quotes the file's data rows
        assert "Santos" not in response.get_data(as_text=True) and "Pe\xf1a" not in response.get_data(as_text=True)


def test_a_file_over_the_upload_limit_is_refused_beside_the_field(app, db, monkeypatch):
    browser, _ = console_client(app, db, "desk")
    token = csrf_of(browser.get(PAGE).get_data(as_text=True))
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    response = post_file(browser, csv_bytes([row(passport_number=f"P{n:07d}A") for n in range(200)]), token=token)
    assert response.status_code == 413
    assert "larger than" in field_error(page_of(response), "file")
    assert count(db, "jobs") == 0 and count(db, "import_files") == 0


def test_a_good_xlsx_and_csv_pass_the_upload_checks(app):
    from registry.imports.services import check_upload
    workbook = Workbook()
    workbook.active.append(list(COLUMNS))
    workbook.active.append([row().get(c) for c in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with app.app_context():
        check_upload("Workers.XLSX", buffer.getvalue())
        check_upload("workers.csv", csv_bytes([row()]))
        check_upload("workers.csv", csv_bytes([row()]).decode().replace(",", ";").encode())


def test_an_import_runs_in_the_worker_and_its_rejected_rows_are_shown_with_their_reasons(app, db, celery_worker,
                                                                                         monkeypatch):
    browser, user = console_client(app, db, "desk")
    rows = [
        row(),                                                        # 2 created
        row(passport_number="P5550002A", nationality="XX"),          # 3 bad country
        row(passport_number="P5550003A", phones="12345", date_of_birth="2999-01-01"),  # 4 two reasons
        row(passport_number="P5550004A"),                            # 5 created
        row(passport_number="P5550001A", family_name="Again"),       # 6 same passport as row 2
        row(passport_number="P5550005A", family_name=""),            # 7 missing required
    ]
    response = post_file(browser, csv_bytes(rows))
    job_id = job_of(response)
    assert count(db, "jobs") == 1
    assert wait_for_job(browser, {}, job_id)["status"] == "succeeded"  # the API, with the session cookie

    shown = browser.get(response.headers["Location"])
    assert shown.status_code == 200
    doc = page_of(shown)
    assert "Import of workers.csv" in doc.get_element_by_id("job-heading").text_content()
    assert doc.get_element_by_id("created-count").text_content() == "2"
    assert doc.get_element_by_id("rejected-count").text_content() == "3"
    assert doc.get_element_by_id("duplicate-count").text_content() == "1"
    rejected = table_rows(doc, "rejected-rows")
    assert [r[0] for r in rejected] == ["3", "4", "7"]
    assert "nationality" in rejected[0][1]
    assert "phones" in rejected[1][1] and "date_of_birth" in rejected[1][1]
    assert "family_name: Must not be empty." in rejected[2][1]
    assert table_rows(doc, "duplicate-rows")[0][:2] == ["6", "Same passport as row 2."]
    assert not doc.xpath('//*[@id="import-job"]')  # finished: nothing left to follow
    html = shown.get_data(as_text=True)
    assert "Santos" not in html and "P5550002A" not in html and "+97450123456" not in html  # no personal data
    assert count(db, "nationals") == 2 and count(db, "import_files") == 0

    recent = table_rows(doc, "recent-imports")
    assert recent[0][0] == "workers.csv" and recent[0][2] == "succeeded" and recent[0][3:] == ["2", "3"]
    read = events(db, "console.imports")
    assert read and read[-1].object_ids == [__import__("uuid").UUID(job_id)] and read[-1].actor_id == user.id

    # Many rejected rows come a page at a time.
    monkeypatch.setattr("registry.console.imports.ROWS_PER_PAGE", 2)
    second = page_of(browser.get(f"{PAGE}?job={job_id}&page=2"))
    assert [r[0] for r in table_rows(second, "rejected-rows")] == ["7"]
    assert second.xpath('//nav[@aria-label="Pages of rejected rows"]//a')[0].text_content().startswith("Previous")
    assert browser.get(f"{PAGE}?job={job_id}&page=nonsense").status_code == 200


def test_the_same_file_again_shows_every_row_already_registered(app, db, celery_worker):
    browser, _ = console_client(app, db, "admin")
    data = csv_bytes([row(), row(passport_number="P5550002A")])
    wait_for_job(browser, {}, job_of(post_file(browser, data)))
    again = job_of(post_file(browser, data))
    wait_for_job(browser, {}, again)
    doc = page_of(browser.get(f"{PAGE}?job={again}"))
    assert doc.get_element_by_id("created-count").text_content() == "0"
    duplicates = table_rows(doc, "duplicate-rows")
    assert [d[0] for d in duplicates] == ["2", "3"] and all(d[2].startswith("Open") for d in duplicates)
    assert not doc.xpath('//table[@id="rejected-rows"]')


def test_a_file_the_worker_refuses_shows_the_job_failed_with_its_reason(app, db, celery_worker):
    """An XLSX's header is read by the worker only: unknown columns fail its job, and the page says why."""
    browser, _ = console_client(app, db, "desk")
    workbook = Workbook()
    workbook.active.append(["family_name", "given_names", "sex", "date_of_birth", "nationality", "host_country",
                            "colour"])
    workbook.active.append(["Santos", "Juan", "M", "1988-03-01", "PH", "QA", "blue"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job_id = job_of(post_file(browser, buffer.getvalue(), "workers.xlsx"))
    assert wait_for_job(browser, {}, job_id)["status"] == "failed"
    doc = page_of(browser.get(f"{PAGE}?job={job_id}"))
    result = doc.get_element_by_id("import-result").text_content()
    assert "not imported" in result and "Unknown columns" in result
    assert table_rows(doc, "recent-imports")[0][2] == "failed"


def test_another_users_import_is_not_visible_but_an_admins_is_as_the_api_says(app, db, celery_worker):
    owner, _ = console_client(app, db, "desk")
    job_id = job_of(post_file(owner, csv_bytes([row()])))
    wait_for_job(owner, {}, job_id)
    other, _ = console_client(app, db, "desk")
    assert other.get(f"{PAGE}?job={job_id}").status_code == 404
    assert other.get(f"/api/v1/jobs/{job_id}").status_code == 404  # the API's rule, the same
    assert job_id not in other.get(PAGE).get_data(as_text=True)  # not in their recent imports either
    admin, _ = console_client(app, db, "admin")
    assert admin.get(f"{PAGE}?job={job_id}").status_code == 200
    assert job_id not in admin.get(PAGE).get_data(as_text=True)  # the list is one's own imports
    assert owner.get(f"{PAGE}?job=not-a-uuid").status_code == 404
    assert owner.get(f"{PAGE}?job=00000000-0000-0000-0000-000000000000").status_code == 404
