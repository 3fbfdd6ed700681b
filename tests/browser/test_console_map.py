"""The map of nationals in a real browser: an embassy officer sees only their jurisdiction, clustered by the
server, and the counts on the map add up to the total the page states."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.test_crises import DUBAI, circle, declare, register

DOHA = (25.2854, 51.5310)


def _shown_total(page) -> int:
    text = page.locator("#map-summary").text_content()
    found = re.match(r"([\d,]+) nationals? in view", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def _counts_on_the_map(page) -> int:
    clusters = page.locator("#nationals-map .cluster-icon span[aria-hidden]").all_text_contents()
    points = page.locator("#nationals-map .point-icon").count()
    return sum(int(c.replace(",", "")) for c in clusters) + points


def test_embassy_officer_sees_only_their_jurisdiction_and_counts_add_up(page, console_user, client, desk,
                                                                         make_user):
    _, coordinator = make_user("coordinator")
    for i in range(6):  # Dubai and Abu Dhabi (AE), the officer's
        register(client, desk, DUBAI[0] + i * 0.02, DUBAI[1] + i * 0.02, passport_number=f"P80000{i}1A")
    for i in range(3):
        register(client, desk, 24.4539 + i * 0.01, 54.3773, passport_number=f"P81000{i}1A")
    for i in range(4):  # Doha (QA) and Muscat (OM): inside the map's box, not theirs
        register(client, desk, DOHA[0] + i * 0.01, DOHA[1], host="QA", passport_number=f"P82000{i}1A")
        register(client, desk, 23.5880, 58.3829 + i * 0.01, host="OM", passport_number=f"P83000{i}1A")
    declare(client, coordinator, circle(*DUBAI, 15), zones=(40,), name="Dubai storm")
    officer = console_user("embassy", ["AE"])
    sign_in_as(page, officer)
    page.get_by_role("navigation").get_by_role("link", name="Map").click()
    expect(page.locator("main")).to_contain_text("Map")
    expect(page.locator("#map-summary")).to_contain_text("9 nationals in view")
    assert _counts_on_the_map(page) == _shown_total(page) == 9

    # Zoomed out by keyboard until Doha and Muscat are well inside the view: still only their 9.
    page.locator("#nationals-map").focus()
    for _ in range(3):
        page.keyboard.press("-")
        page.wait_for_timeout(400)
    expect(page.locator("#nationals-map")).to_have_attribute("data-total", "9")
    bounds = page.evaluate("() => document.querySelector('#nationals-map').dataset.total")
    assert bounds == "9" and _counts_on_the_map(page) == _shown_total(page) == 9
    expect(page.locator(".leaflet-overlay-pane path")).not_to_have_count(0)  # the crisis area and ring
    expect(page.get_by_text("Dubai storm")).to_be_visible()

    # A filter narrows the clusters, the summary follows.
    page.get_by_label("Location certainty").select_option("country_only")
    expect(page.locator("#map-summary")).to_contain_text("0 nationals in view")
    page.get_by_label("Location certainty").select_option("high")
    expect(page.locator("#map-summary")).to_contain_text("9 nationals in view")
    check_page(page, "map")


def test_a_single_person_opens_their_record(page, console_user, client, desk):
    national = register(client, desk, 24.4539, 54.3773, passport_number="P8400001A")
    officer = console_user("embassy", ["AE"])
    sign_in_as(page, officer)
    page.goto("/console/map")
    expect(page.locator("#map-summary")).to_contain_text("1 national in view")
    page.locator("#nationals-map").focus()
    for _ in range(5):  # in to the street, where one person is a point
        page.keyboard.press("=")
        page.wait_for_timeout(300)
    point = page.locator("#nationals-map .point-icon")
    expect(point).to_have_count(1, timeout=15_000)
    point.click()
    page.wait_for_url(f"**/console/nationals/{national}")
