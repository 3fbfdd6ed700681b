"""The roster page and the assembly points page in a real browser, against the live app and the real worker."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.conftest import owner_connection
from tests.test_console_rosters import make_scene


def _token_of(db, user) -> dict:
    from registry.auth.services import issue_token
    token = issue_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_coordinator_builds_a_roster_watches_it_finish_and_downloads_the_pdf_manifest(page, console_user, client,
                                                                                       db, desk):
    coordinator = console_user("coordinator")
    api = _token_of(db, coordinator)
    scene = make_scene(client, desk, api, build_roster=False)
    # The worker cannot finish the roster while roster_points is locked: the page is seen building it first.
    with owner_connection() as owner, owner.transaction():
        owner.execute("LOCK TABLE roster_points IN ACCESS EXCLUSIVE MODE")
        response = client.post(f"/api/v1/crises/{scene['crisis']['id']}/rosters", headers=api,
                               json=scene["roster_request"])
        assert response.status_code == 202, response.get_json()
        roster_id = response.get_json()["id"]
        sign_in_as(page, coordinator)
        page.goto(f"/console/rosters/{roster_id}")
        expect(page.get_by_role("progressbar", name="Roster build progress")).to_be_visible()
        expect(page.locator("#roster-status")).to_contain_text("queued")
        expect(page.locator("#build-detail")).to_contain_text("%")  # the job's progress, polled
    # Released: the worker finishes, the page notices by polling and shows the roster.
    expect(page.locator("#roster-status")).to_contain_text("succeeded", timeout=60_000)
    expect(page.get_by_role("heading", name="Assembly points: capacity used")).to_be_visible()
    dubai = page.locator(f'#capacity tr[data-point="{scene["points"]["dubai"]}"]')
    expect(dubai).to_contain_text("2 of 2")
    expect(page.locator(f'#capacity tr[data-point="{scene["points"]["sohar"]}"]')).to_contain_text("1 of 5")
    expect(page.locator("#unassigned-total")).to_have_text("2")
    expect(page.locator('#reasons tr[data-reason="no_capacity_in_reach"]')).to_contain_text("no capacity in reach")
    expect(page.locator('#reasons tr[data-reason="location_unknown"]')).to_contain_text("1")
    expect(page.locator("#people")).to_contain_text("Medicalcase")
    check_page(page, "roster")

    # A download asks for a purpose.
    page.get_by_label("Format").select_option("pdf")
    page.get_by_label("Paper size (PDF)").select_option("letter")
    page.get_by_label("Manifests of").select_option(label="Dubai shelter")
    page.get_by_label("Purpose").fill("bus manifests for the Dubai shelter")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download", exact=True).click()
    saved = download.value
    assert saved.suggested_filename.endswith(".pdf")
    with open(saved.path(), "rb") as file:
        assert file.read(5) == b"%PDF-"


def test_coordinator_adds_and_edits_an_assembly_point(page, console_user):
    sign_in_as(page, console_user("coordinator"))
    page.get_by_role("link", name="Assembly points").click()
    page.wait_for_url("**/console/assembly-points")
    page.get_by_label("Name", exact=True).fill("Embassy of the Philippines, Abu Dhabi")
    page.get_by_label("Kind", exact=True).select_option("embassy")
    page.get_by_label("Country", exact=True).fill("AE")
    # Clicking the map fills latitude and longitude; then the exact place is typed.
    page.locator("#points-map").click()
    expect(page.get_by_label("Latitude")).not_to_have_value("")
    expect(page.get_by_label("Longitude")).not_to_have_value("")
    page.get_by_label("Latitude").fill("24.4539")
    page.get_by_label("Longitude").fill("54.3773")
    page.get_by_label("Capacity", exact=True).fill("-5")
    page.get_by_role("button", name="Add assembly point").click()
    capacity = page.get_by_label("Capacity", exact=True)
    expect(capacity).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#capacity-error")).to_contain_text("greater than or equal to 0")
    expect(page.get_by_label("Latitude")).to_have_value("24.4539")  # what was typed stays
    capacity.fill("400")
    page.get_by_role("button", name="Add assembly point").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    row = page.locator("tr[data-lat]", has_text="Embassy of the Philippines, Abu Dhabi")
    expect(row).to_contain_text("400")
    expect(page.locator("#points-map .point-marker")).to_have_count(1)
    check_page(page, "assembly_points")

    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit Embassy of the Philippines")
    page.get_by_label("Capacity", exact=True).fill("2000000")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#capacity-error")).to_be_visible()
    page.get_by_label("Capacity", exact=True).fill("350")
    page.get_by_label("Active").uncheck()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    row = page.locator("tr[data-lat]", has_text="Embassy of the Philippines, Abu Dhabi")
    expect(row).to_contain_text("350")
    expect(row.locator("td").nth(4)).to_have_text("no")
