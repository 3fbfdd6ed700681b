"""The users page and the audit page in a real browser: an administrator adds a user and hands over the
invitation link; an auditor finds, in the trail, what a desk officer, an embassy officer and a failed
sign-in did, and sees the chain verified."""
from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.browser.test_console_nationals import RECORD_URL, fill_person

NEW_PASSWORD = "a fresh long pass phrase"


def test_admin_adds_a_user_and_the_invitation_link_lets_them_sign_in(page, console_user, browser):
    admin = console_user("admin")
    sign_in_as(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.wait_for_url("**/console/users")
    expect(page.locator("main")).to_contain_text("Users")
    check_page(page, "users")

    # A mistake first: an embassy officer without a host country; the error is beside the field.
    page.get_by_label("Name", exact=True).fill("Teresa Villanueva")
    page.get_by_label("Role", exact=True).select_option("embassy")
    page.get_by_role("button", name="Add user").click()
    jurisdiction = page.get_by_label("Jurisdiction")
    expect(jurisdiction).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#jurisdiction-error")).to_contain_text("at least one host country")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Teresa Villanueva")
    check_page(page, "users-error")

    jurisdiction.fill("AE, QA")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status").first).to_contain_text("teresa.villanueva")
    link = page.get_by_label("Invitation link").input_value()
    assert "/console/invitations/" in link and link not in page.url
    row = page.locator('#users-table tr[data-username="teresa.villanueva"]')
    expect(row).to_contain_text("embassy")
    expect(row).to_contain_text("AE, QA")
    check_page(page, "users-invitation")

    # The new officer opens the link in their own browser, sets a password and signs in.
    context = browser.new_context(base_url=page.url.split("/console/")[0], viewport={"width": 390, "height": 800})
    try:
        newcomer = context.new_page()
        newcomer.goto(urlsplit(link).path)
        newcomer.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        newcomer.get_by_label("Password again").fill(NEW_PASSWORD)
        newcomer.get_by_role("button", name="Set password").click()
        newcomer.wait_for_url("**/console/login**")
        newcomer.get_by_label("Username").fill("teresa.villanueva")
        newcomer.get_by_label("Password").fill(NEW_PASSWORD)
        newcomer.get_by_role("button", name="Sign in").click()
        newcomer.wait_for_url("**/console/")
        expect(newcomer.locator("header")).to_contain_text("Teresa Villanueva")
    finally:
        context.close()

    # The administrator manages the new user: the last sign-in is now known; disable them.
    page.goto("/console/users")
    expect(page.locator('#users-table tr[data-username="teresa.villanueva"]')).to_contain_text("UTC")
    page.get_by_role("link", name="Manage Teresa Villanueva").click()
    page.get_by_role("button", name="Disable user").click()
    expect(page.locator("#user-status")).to_have_text("disabled")
    check_page(page, "users-edit")


def test_the_auditor_finds_each_event_of_the_day_and_the_chain_verified(page, console_user, make_user, db):
    # A desk officer registers someone through the console.
    desk = console_user("desk")
    sign_in_as(page, desk)
    page.goto("/console/nationals/new")
    fill_person(page, passport="P8200001A")
    page.get_by_label("Host city").fill("Dubai")
    page.get_by_role("button", name="Register", exact=True).click()
    page.wait_for_url(RECORD_URL)
    national_id = page.url.rsplit("/", 1)[1]
    page.context.clear_cookies()

    # An embassy officer searches by passport, with a purpose.
    embassy = console_user("embassy", ["AE"])
    sign_in_as(page, embassy)
    page.goto("/console/nationals")
    page.get_by_label("Passport number").fill("P8200001A")
    page.get_by_label("Purpose").fill("consular walk-in, lost passport")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Search results: 1 person")).to_be_visible()
    page.context.clear_cookies()

    # A sign-in fails.
    page.goto("/console/login")
    page.get_by_label("Username").fill(embassy.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()

    from registry.audit import services
    db.session.rollback()
    services.seal_all()  # the worker's beat would, within seconds

    # The auditor.
    auditor = console_user("auditor")
    sign_in_as(page, auditor)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    page.wait_for_url("**/console/audit")
    expect(page.locator("main")).to_contain_text("Audit")
    expect(page.locator("#chain-status")).to_contain_text("Verified")
    check_page(page, "audit")

    def filter_by(expect_rows=True, **fields):
        page.get_by_role("link", name="Clear").click()
        page.wait_for_url("**/console/audit")
        for label, value in fields.items():
            field = page.get_by_label(label, exact=True)
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(value)
            else:
                field.fill(value)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_load_state()
        if expect_rows:
            expect(page.locator("#events-heading")).to_be_visible()
        assert "/console/audit" in page.url and "?" not in page.url  # filters are posted, never in the URL
        return page.locator("#events-table tbody tr")

    registered = filter_by(**{"User": desk.username, "Action": "console.create_national"})
    expect(registered).to_have_count(1)
    expect(registered.first).to_contain_text(national_id)
    expect(registered.first).to_contain_text("desk")

    searched = filter_by(**{"Purpose contains": "lost passport"})
    expect(searched).to_have_count(1)
    expect(searched.first).to_contain_text("console.search_nationals")
    expect(searched.first).to_contain_text("consular walk-in, lost passport")
    expect(searched.first).to_contain_text(embassy.username)
    expect(searched.first).to_contain_text(national_id)

    about = filter_by(**{"Object id": national_id})
    expect(about.filter(has_text="console.create_national")).to_have_count(1)
    expect(about.filter(has_text="console.search_nationals")).to_have_count(1)

    failed = filter_by(**{"Action": "console.sign_in", "Result": "unauthenticated"})
    expect(failed).to_have_count(1)
    expect(failed.first).to_contain_text("unauthenticated")
    expect(page.locator("#chain-status")).to_contain_text("Verified")
    check_page(page, "audit-filtered")

    # A bad filter is shown beside its field.
    filter_by(expect_rows=False, **{"Object id": "not-an-id"})
    expect(page.get_by_label("Object id")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#object_id-error")).to_contain_text("Not an id")
