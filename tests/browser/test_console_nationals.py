"""The nationals pages in a real browser: registering at a desk, searching at an embassy."""
from __future__ import annotations

import re

from tests.browser.conftest import axe_violations, check_page, sign_in_as
from tests.test_crises import register

RECORD_URL = re.compile(r".*/console/nationals/[0-9a-f-]{36}$")


def fill_person(page, *, given_names="Maria Luisa", passport="P8000001A", phone="+971 50 123 4567"):
    page.get_by_label("Family name").fill("Dela Cruz")
    page.get_by_label("Given names").fill(given_names)
    page.get_by_label("Sex").select_option(label="Female")
    page.get_by_label("Date of birth").fill("1990-04-12")
    page.get_by_label("Passport number").fill(passport)
    page.get_by_label("Phone 1").fill(phone)
    page.get_by_label("Pregnant").check()
    page.get_by_label("Host country").select_option("AE")


def test_desk_registers_a_worker_after_fixing_a_validation_error_in_place_sees_a_duplicate_warning(page,
                                                                                                  console_user):
    desk = console_user("desk")
    sign_in_as(page, desk)
    page.get_by_role("link", name="Register").click()
    page.wait_for_url("**/console/nationals/new")
    assert page.get_by_label("Nationality").input_value() == "PH"  # the service's own, by default
    fill_person(page, phone="+971 50")  # too short to be a number
    # The host city is looked up in the offline gazetteer as it is typed.
    city = page.get_by_label("Host city")
    city.press_sequentially("Duba", delay=30)
    status = page.locator("#city-status")
    status.filter(has_text="Dubai").wait_for()
    assert "Closest match: Dubai" in status.inner_text()
    assert page.locator("#city-suggestions option").first.get_attribute("value") == "Dubai"
    city.fill("Dubai")
    page.get_by_label("Employer").fill("Emirates Hospitality LLC")
    page.get_by_role("button", name="Register", exact=True).click()

    # The form again, what was typed kept, the error beside the phone.
    phone = page.get_by_label("Phone 1")
    assert phone.get_attribute("aria-invalid") == "true"
    error = page.locator("#" + phone.get_attribute("aria-describedby").split()[-1])
    assert error.is_visible() and "number" in error.inner_text().lower()
    assert page.get_by_label("Given names").input_value() == "Maria Luisa"
    assert page.get_by_label("Pregnant").is_checked() and page.get_by_label("Host city").input_value() == "Dubai"
    assert axe_violations(page) == []
    phone.fill("+971 50 123 4567")
    page.get_by_role("button", name="Register", exact=True).click()
    page.wait_for_url(RECORD_URL)
    first_record = page.url
    assert page.get_by_role("heading", level=1).inner_text() == "Dela Cruz, Maria Luisa"
    assert page.get_by_text("city, from the gazetteer").first.is_visible()
    assert page.get_by_role("cell", name="Emirates Hospitality LLC").is_visible()
    # The location history: a table, and its point drawn on the small map over the offline base layer.
    assert page.get_by_role("table", name="Location history, newest first").is_visible()
    location_map = page.get_by_role("region", name="Map of the location history")
    location_map.locator("path.leaflet-interactive").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('#location-map .leaflet-tile-loaded').length >= 1")
    check_page(page, "national")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the tables scroll, by keyboard too
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 1280, "height": 860})

    # A near-copy: the same person without a passport. The warning comes before anything is saved.
    page.goto("/console/nationals/new")
    fill_person(page, given_names="María Luisa", passport="")
    page.get_by_role("button", name="Register", exact=True).click()
    warning = page.get_by_role("region", name="Possible duplicates: is this person already registered?")
    assert warning.is_visible()
    assert warning.get_by_role("link", name="Dela Cruz, Maria Luisa").get_attribute("href") in first_record
    assert "same names and date of birth and same phone number" in warning.inner_text()
    check_page(page, "register")
    warning.get_by_role("button", name="Register anyway").click()
    page.wait_for_url(RECORD_URL)
    assert page.url != first_record
    assert page.get_by_role("heading", level=1).inner_text() == "Dela Cruz, María Luisa"


def test_embassy_officer_searches_by_passport_with_a_purpose(app, page, console_user, make_user):
    _, desk = make_user("desk")
    api = app.test_client()
    own = register(api, desk, 25.2, 55.27, passport_number="P8100001A", family_name="Santos", given_names="Ana")
    register(api, desk, None, None, host="QA", passport_number="P8100002A", family_name="Reyes")
    officer = console_user("embassy", ["AE"])
    sign_in_as(page, officer)
    page.get_by_role("link", name="Nationals").click()
    page.wait_for_url("**/console/nationals")

    page.get_by_label("Passport number").fill("P8100001A")
    page.get_by_role("button", name="Search").click()
    purpose = page.get_by_label("Purpose")
    assert purpose.get_attribute("aria-invalid") == "true"
    assert "Required for a passport search" in page.locator("#s-purpose-error").inner_text()
    assert page.get_by_label("Passport number").input_value() == "P8100001A"
    assert page.get_by_role("link", name="Santos, Ana").count() == 0

    purpose.fill("walk-in at the embassy")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_role("heading", name="Search results: 1 person").is_visible()
    assert "P8100001A" not in page.url  # posted, never in the URL
    check_page(page, "nationals")
    page.get_by_role("link", name="Santos, Ana").click()
    page.wait_for_url(f"**/console/nationals/{own}")

    page.goto("/console/nationals")
    page.get_by_label("Passport number").fill("P8100002A")  # registered, but in Qatar
    page.get_by_label("Purpose").fill("walk-in at the embassy")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_role("heading", name="Search results: 0 people").is_visible()
    assert page.get_by_text("Reyes").count() == 0
