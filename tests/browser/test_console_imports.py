"""The imports page in a real browser, against the live app and the real worker."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.conftest import owner_connection
from tests.test_imports import csv_bytes, row


def test_desk_uploads_a_file_watches_its_progress_and_reads_the_rejected_rows_reason(page, console_user, db):
    desk = console_user("desk")
    data = csv_bytes([row(), row(passport_number="P5550002A", household_ref="H1"),
                      row(passport_number="P5550003A", date_of_birth="2999-01-01"),  # row 4: born in the future
                      row(passport_number="P5550004A", household_ref="H1")])
    sign_in_as(page, desk)
    page.get_by_role("link", name="Imports").click()
    page.wait_for_url("**/console/imports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Import registrations")
    expect(page.get_by_role("link", name="Download the CSV template")).to_be_visible()

    # While nationals is locked the worker cannot store the rows: the page is seen following the job first.
    with owner_connection() as owner, owner.transaction():
        owner.execute("LOCK TABLE nationals IN ACCESS EXCLUSIVE MODE")
        page.get_by_label("File of registrations").set_input_files(
            files=[{"name": "workers.csv", "mimeType": "text/csv", "buffer": data}])
        page.get_by_role("button", name="Upload and import").click()
        page.wait_for_url("**/console/imports?job=*")
        expect(page.get_by_role("progressbar", name="Import progress")).to_be_visible()
        expect(page.locator("#import-status")).to_contain_text("reading the file")
        expect(page.locator("#recent-imports")).to_contain_text("workers.csv")
        check_page(page, "imports-running")
    # Released: the worker finishes, the page notices by polling and shows the outcome.
    expect(page.locator("#import-result")).to_contain_text("3 created", timeout=60_000)
    expect(page.locator("#import-result")).to_contain_text("1 rejected")
    rejected = page.locator("#rejected-rows tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected.locator("td").first).to_have_text("4")
    expect(rejected.locator("td").nth(1)).to_contain_text("date_of_birth")
    expect(page.get_by_role("progressbar")).to_have_count(0)
    check_page(page, "imports")

    # On a phone-sized screen the page still fits, and the form is reached by keyboard.
    page.set_viewport_size({"width": 390, "height": 800})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    page.get_by_label("File of registrations").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Upload and import")).to_be_focused()
