"""Self check-in and self-registration in a real browser (SPEC §10): the phone's location through Playwright's
geolocation, the page without JavaScript, the lockout, an expired link, and a self-registration verified in
the console's queue."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.browser.conftest import LOCAL_HOSTS, check_page, sign_in_as
from tests.conftest import national_body
from tests.test_authorization_matrix import settle
from tests.test_checkin import HOTLINE, MUSCAT, declare, link_for

PURPOSE = {"purpose": "check-in story"}


@pytest.fixture
def person(app, client, db, desk, admin, celery_worker):
    """A national in Dubai, a crisis over Dubai, the person's check-in path; a hotline."""
    hotline = app.config["REGISTRY_HOTLINE"]
    app.config["REGISTRY_HOTLINE"] = HOTLINE
    national = uuid.UUID(client.post("/api/v1/nationals", json=national_body(), headers=desk).get_json()["id"])
    crisis = uuid.UUID(declare(client, admin))
    yield type("Person", (), {"national": national, "crisis": crisis, "admin": admin,
                              "path": link_for(db, crisis, national)})
    app.config["REGISTRY_HOTLINE"] = hotline
    settle(db)


def welfare(client, person) -> dict:
    return client.get(f"/api/v1/crises/{person.crisis}/welfare/{person.national}", headers=person.admin,
                      query_string=PURPOSE).get_json()


def test_a_check_in_with_the_phones_location(page, context, client, db, person):
    context.grant_permissions(["geolocation"])
    context.set_geolocation({"latitude": MUSCAT["lat"], "longitude": MUSCAT["lon"], "accuracy": 25})
    page.goto(person.path)
    expect(page.locator("h1")).to_have_text("Gulf floods")
    expect(page.locator("main")).to_contain_text("Maria Luisa")
    expect(page.locator("main")).not_to_contain_text("Dela Cruz")
    check_page(page, "checkin")
    page.get_by_label("Your date of birth").fill("1990-04-12")
    page.get_by_label("I need evacuation").check()
    page.get_by_label("Household members with you").fill("3")
    page.get_by_role("button", name="Share my phone's location").click()
    expect(page.locator("#location-status")).to_contain_text("Location added")
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    expect(page.locator(".done")).to_contain_text("Thank you, Maria Luisa")
    check_page(page, "checkin-thanks")
    answer = welfare(client, person)
    assert answer["welfare_status"] == "needs_evacuation" and answer["history"][-1]["source"] == "self"
    record = client.get(f"/api/v1/nationals/{person.national}", headers=person.admin).get_json()
    assert record["location"]["source"] == "self_report" and record["location"]["precision_m"] == 25
    assert record["location"]["lat"] == pytest.approx(MUSCAT["lat"])
    db.session.rollback()
    assert db.session.execute(text("SELECT jurisdiction_country FROM nationals WHERE id = :n"),
                              {"n": person.national}).scalar() == "OM"


def _no_script_context(browser, live_server):
    context = browser.new_context(base_url=live_server, java_script_enabled=False, locale="en-GB")
    context.route("**/*", lambda route, request: route.continue_() if urlsplit(request.url).hostname in LOCAL_HOSTS
                  else route.abort())
    return context


def test_the_page_works_without_javascript(browser, live_server, client, db, person):
    context = _no_script_context(browser, live_server)
    try:
        page = context.new_page()
        page.goto(person.path)
        expect(page.get_by_role("button", name="Share my phone's location")).to_be_hidden()
        page.get_by_label("Your date of birth").fill("1990-04-12")
        page.get_by_label("I am safe").check()
        page.get_by_label("Anything else").fill("With my employer's family")
        page.get_by_role("button", name="Send").click()
        expect(page.locator(".done")).to_contain_text("Thank you")
    finally:
        context.close()
    answer = welfare(client, person)
    assert answer["welfare_status"] == "safe" and answer["history"][-1]["note"] == "With my employer's family"


def test_five_wrong_dates_of_birth_lock_the_link(page, client, db, person):
    page.goto(person.path)
    for tries_left in (4, 3, 2, 1):
        page.get_by_label("Your date of birth").fill("1991-02-03")
        page.get_by_label("I am safe").check()
        response = _submit(page)
        assert response.status == 403
        expect(page.locator("#date_of_birth-error")).to_contain_text(f"Tries left: {tries_left}")
        expect(page.get_by_label("Your date of birth")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Your date of birth").fill("1991-02-03")
    assert _submit(page).status == 423
    expect(page.locator("h1")).to_have_text("This link is locked")
    expect(page.locator("main")).to_contain_text(HOTLINE)
    check_page(page, "checkin-locked")
    # The right date of birth, a sixth time: still refused.
    sixth = page.request.post(person.path, form={"date_of_birth": "1990-04-12", "status": "safe"})
    assert sixth.status == 423
    assert page.goto(person.path).status == 423
    assert welfare(client, person)["history"] == []


def _submit(page):
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Send").click()
    return navigation.value


def test_an_expired_link_shows_the_hotline(page, db, person):
    db.session.execute(text("UPDATE checkin_links SET expires_at = now() - interval '1 hour'"))
    db.session.commit()
    response = page.goto(person.path)
    assert response.status == 410
    expect(page.locator("h1")).to_have_text("This link has expired")
    expect(page.locator("main")).to_contain_text(HOTLINE)
    check_page(page, "checkin-expired")
    arabic = page.goto(person.path + "?lang=ar")
    assert arabic.status == 410
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("main")).to_contain_text(HOTLINE)
    check_page(page, "checkin-expired-ar")


def test_a_self_registration_reaches_the_queue_and_is_verified_in_the_console(page, browser, live_server, client,
                                                                             db, person, console_user):
    client.patch(f"/api/v1/crises/{person.crisis}", json={"self_registration": True}, headers=person.admin)
    page.goto(f"/checkin/register/{person.crisis}")
    check_page(page, "self-registration")
    page.get_by_label("Family name").fill("Reyes")
    page.get_by_label("Given names").fill("Joy")
    page.get_by_label("Your date of birth").fill("1996-11-05")
    page.get_by_label("Phone number").fill("+971 50 123 4567")  # the registered national's phone
    page.get_by_label("Where are you?").fill("Dubai")
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".done")).to_contain_text("Your registration was received")

    officer = console_user("embassy", ["AE"])
    sign_in_as(page, officer)
    page.get_by_role("link", name="Verification").click()
    expect(page.locator("h1")).to_have_text("Verification queue")
    queued = page.locator("section.queued")
    expect(queued).to_have_count(1)
    expect(queued).to_contain_text("Reyes, Joy")
    expect(queued.locator(".duplicate")).to_contain_text("Dela Cruz, Maria Luisa")
    expect(queued.locator(".reasons")).to_contain_text("same phone")
    check_page(page, "verification")
    verify = page.get_by_role("button", name="Verify Reyes, Joy")
    verify.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_contain_text("verified")
    expect(page.locator("#queue-total")).to_have_text("Waiting: 0")
    db.session.rollback()
    assert db.session.execute(text("SELECT status FROM nationals WHERE family_name = 'Reyes'")).scalar() == "abroad"
