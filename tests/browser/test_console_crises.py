"""The crisis pages in a real browser, against the live app and the real worker: a coordinator draws a crisis
on the map, declares it, watches its exposure run finish, builds a roster and downloads its PDF manifests."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.browser.test_console_rosters import _token_of
from tests.conftest import owner_connection
from tests.test_crises import DUBAI, register
from tests.test_rosters import at, make_point


def _pixel(page, lat: float, lon: float) -> dict:
    """Where (lat, lon) is on the drawing map, in the element's pixels."""
    x, y = page.evaluate("([lat, lon]) => { const p = document.getElementById('draw-map').sagipMap"
                         ".latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }", [lat, lon])
    return {"x": x, "y": y}


def test_coordinator_draws_declares_watches_the_run_builds_a_roster_and_downloads_the_manifest(
        page, console_user, client, db, desk):
    coordinator = console_user("coordinator")
    api = _token_of(db, coordinator)
    for km, name in ((2, "Nearcentre"), (4, "Alsonear"), (6, "Thirdperson")):
        register(client, desk, *at(km), family_name=name, vulnerabilities=[])
    make_point(client, api, "Dubai shelter", *DUBAI, 10)

    sign_in_as(page, coordinator)
    page.get_by_role("link", name="Crises", exact=True).click()
    page.wait_for_url("**/console/crises")
    expect(page.locator("main")).to_contain_text("No crisis")
    check_page(page, "crises")
    page.get_by_role("link", name="Declare a crisis").click()
    page.wait_for_url("**/console/crises/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Declare a crisis")

    # A mistake first: no name, no centre; the errors come back beside their fields.
    page.get_by_role("button", name="Declare the crisis").click()
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#center_lat-error")).to_contain_text("latitude")
    check_page(page, "crisis_new_errors")

    page.get_by_label("Name", exact=True).fill("Browser flood, Dubai")
    page.get_by_label("Kind").select_option("flood")
    page.get_by_label("Severity").select_option("high")
    page.get_by_label("Rings (km beyond the area)").fill("25, 100")
    page.get_by_label("A circle").check()
    # Draw: the centre clicked on Dubai, then the radius handle dragged outwards.
    page.wait_for_function("() => document.getElementById('draw-map').sagipMap")
    page.evaluate("() => document.getElementById('draw-map').sagipMap.setView([25.2, 55.3], 9, {animate: false})")
    page.locator("#draw-map").click(position=_pixel(page, *DUBAI))
    expect(page.get_by_label("Centre latitude")).not_to_have_value("")
    assert abs(float(page.get_by_label("Centre latitude").input_value()) - DUBAI[0]) < 0.01
    assert abs(float(page.get_by_label("Centre longitude").input_value()) - DUBAI[1]) < 0.01
    expect(page.locator("#draw-map path.drawn-area")).to_have_count(1)
    first_radius = float(page.get_by_label("Radius (km)").input_value())
    handle = page.locator("#draw-map .radius-handle").bounding_box()
    start = (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 40, start[1], steps=5)
    page.mouse.up()
    radius = float(page.get_by_label("Radius (km)").input_value())
    assert radius > first_radius
    check_page(page, "crisis_new")

    # The worker cannot write the run's rows while exposures is locked: the page is seen following it first.
    with owner_connection() as owner, owner.transaction():
        owner.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")
        page.get_by_role("button", name="Declare the crisis").click()
        page.wait_for_url("**/console/crises/*")
        expect(page.get_by_role("heading", level=1)).to_have_text("Browser flood, Dubai")
        expect(page.get_by_role("progressbar", name="Exposure run progress")).to_be_visible()
        expect(page.locator("#run-status")).to_contain_text("a worker is finding")
    # Released: the run ends, the page notices by polling and shows the counts, the list and the map.
    expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=60_000)
    expect(page.locator("#exposed-total")).to_contain_text("3 exposed")
    expect(page.locator("#people")).to_contain_text("Nearcentre")
    expect(page.locator("#crisis-map")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#crisis-map .exposed")).to_have_count(3)
    expect(page.locator("#map-status")).to_contain_text("3 on the map")
    crisis_path = "/console/crises/" + page.url.rstrip("/").rsplit("/", 1)[1]
    expect(page.get_by_role("link", name="Call list")).to_have_attribute("href", crisis_path + "/calls")
    check_page(page, "crisis")
    page.set_viewport_size({"width": 390, "height": 844})  # the same on a phone
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    check_page(page, "crisis_phone_list")
    page.set_viewport_size({"width": 1280, "height": 860})

    # Filters act on the list and the map.
    page.get_by_label("City").fill("Nowhere")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#list-total")).to_contain_text("0 people")
    expect(page.locator("#crisis-map")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#crisis-map .exposed")).to_have_count(0)
    page.get_by_role("link", name="Clear the filters").click()

    # Build a roster from the crisis, then its page follows the build.
    page.get_by_label("Seats per vehicle").fill("3")
    page.get_by_label("Furthest to a point (km)").fill("60")
    page.get_by_label("Assembly points").select_option(label="Dubai shelter (AE, 10)")
    page.get_by_role("button", name="Build the roster").click()
    page.wait_for_url("**/console/rosters/*")
    expect(page.locator("#roster-status")).to_contain_text("succeeded", timeout=60_000)
    expect(page.locator("#people")).to_contain_text("Nearcentre")

    page.get_by_label("Format").select_option("pdf")
    page.get_by_label("Purpose").fill("bus manifests for the Dubai shelter")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download", exact=True).click()
    saved = download.value
    assert saved.suggested_filename.endswith(".pdf")
    with open(saved.path(), "rb") as file:
        assert file.read(5) == b"%PDF-"


def test_coordinator_draws_a_polygon_by_clicking_its_vertices(page, console_user, celery_worker):
    sign_in_as(page, console_user("coordinator"))
    page.goto("/console/crises/new")
    page.get_by_label("Name", exact=True).fill("Drawn polygon")
    page.get_by_label("Severity").select_option("moderate")
    page.get_by_label("A polygon").check()
    expect(page.get_by_label("Centre latitude")).to_be_hidden()
    page.wait_for_function("() => document.getElementById('draw-map').sagipMap")
    page.evaluate("() => document.getElementById('draw-map').sagipMap.setView([25.2, 55.3], 9, {animate: false})")
    for lat, lon in ((25.1, 55.1), (25.1, 55.45), (25.35, 55.45), (25.35, 55.1)):
        page.locator("#draw-map").click(position=_pixel(page, lat, lon))
    page.get_by_role("button", name="Finish polygon").click()
    expect(page.locator("#draw-map path.drawn-area")).to_have_count(1)
    lines = page.get_by_label("Vertices (latitude, longitude: one a line)").input_value().splitlines()
    assert len(lines) == 4 and abs(float(lines[0].split(",")[0]) - 25.1) < 0.01
    page.get_by_role("button", name="Declare the crisis").click()
    page.wait_for_url("**/console/crises/*")
    expect(page.get_by_role("heading", level=1)).to_have_text("Drawn polygon")
    expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=60_000)


def test_an_embassy_officer_reads_a_crisis(page, console_user, client, db, desk):
    coordinator = console_user("coordinator")
    api = _token_of(db, coordinator)
    register(client, desk, *at(3), family_name="Emiratesone", vulnerabilities=[])
    from tests.test_crises import circle, declare
    crisis = declare(client, api, circle(*DUBAI, 20), zones=[50], name="Embassy view")
    sign_in_as(page, console_user("embassy", ["QA"]))
    page.goto(f"/console/crises/{crisis['id']}")
    expect(page.locator("main")).to_contain_text("Embassy view")
    expect(page.locator("#exposed-total")).to_contain_text("0 exposed")
    expect(page.locator("main")).not_to_contain_text("Emiratesone")
    expect(page.get_by_role("button", name="Build the roster")).to_have_count(0)
    check_page(page, "crisis_embassy")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.reload()
    expect(page.locator("#crisis-map")).to_have_attribute("data-loaded", "true")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    check_page(page, "crisis_phone")
    page.goto("/console/crises")
    check_page(page, "crises_phone")
