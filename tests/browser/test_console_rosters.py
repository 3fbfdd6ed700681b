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
