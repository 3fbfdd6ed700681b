"""The statistics page in a real browser: an analyst chooses a table by keyboard, reads it with its totals and
suppressed marks, sees the bar chart, and the map of stocks by host country shaded over the offline base map
(suppressed countries hatched), on a laptop and on a phone-sized screen."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.test_statistics import people  # noqa: F401  (a fixture: 59 people in SA, AE, QA)

# Pixels of each kind on the map's tiles: the class colours of map.json and the hatch's grey.
COUNT_PIXELS = """(colours) => {
  const wanted = colours.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const counts = colours.map(() => 0);
  for (const canvas of document.querySelectorAll('#stocks-map .leaflet-tile-container canvas')) {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      wanted.forEach(([r, g, b], k) => {
        if (Math.abs(data[i] - r) < 3 && Math.abs(data[i + 1] - g) < 3 && Math.abs(data[i + 2] - b) < 3) counts[k]++;
      });
    }
  }
  return counts;
}"""


def test_an_analyst_builds_a_table_by_keyboard_and_reads_its_chart_and_map(page, console_user, people):  # noqa: F811
    analyst = console_user("analyst")
    sign_in_as(page, analyst)
    page.get_by_role("navigation").get_by_role("link", name="Statistics").click()
    page.wait_for_url("**/console/statistics")
    # The first visit: today's stocks by host country and sex.
    table = page.locator("#statistics-table")
    expect(table.locator("thead")).to_contain_text("Female")
    expect(table.locator("tbody tr")).to_have_count(3)

    # By keyboard: the third dimension becomes the age band, then Show.
    page.get_by_label("Dimension 3").focus()
    page.keyboard.press("a")  # type-ahead: "Age band"
    expect(page.get_by_label("Dimension 3")).to_have_value("age_band")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Show")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/statistics?*by3=age_band*")
    expect(page.locator("#result-heading")).to_contain_text("by host country, sex, age band")
    expect(table.locator("thead")).to_contain_text("35–39")
    expect(page.locator("#margins-table")).to_be_visible()
    # Suppressed counts are marked, explained to screen readers, and the footnote names the method.
    expect(table.locator(".suppressed").first).to_be_visible()
    expect(table.locator(".suppressed .visually-hidden").first).to_contain_text("suppressed")
    expect(page.locator("#suppression-note")).to_contain_text("Threshold 10")

    # The chart: the host countries' published totals; Qatar (3) left out, and said so.
    chart = page.locator("#chart")
    expect(chart.locator("svg[role=img] title")).to_have_count(1)
    assert 1 <= chart.locator("g.bar").count() <= 2
    expect(chart.locator("figcaption")).to_contain_text("Qatar")

    # The map: countries shaded by class, the suppressed hatched; the numbers beside it.
    stocks_map = page.locator("#stocks-map")
    expect(stocks_map).to_have_attribute("data-ready", "true")
    expect(page.locator("#map-summary")).to_contain_text("suppressed (hatched)")
    answer = page.evaluate("() => fetch('/console/statistics/map.json').then((r) => r.json())")
    shaded = [c for c in answer["countries"] if not c["suppressed"]]
    assert shaded and stocks_map.get_attribute("data-shaded") == str(len(shaded))
    colours = [answer["classes"][c["class"]]["colour"] for c in shaded]
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)  # the tiles' canvases drawn
    counts = page.evaluate(COUNT_PIXELS, colours + ["#d9d9d9"])
    assert all(n > 50 for n in counts), dict(zip(colours + ["hatch"], counts))
    expect(page.locator("#map-legend li")).to_have_count(len(answer["classes"]) + 2)
    page.locator("#map-numbers summary").click()
    expect(page.locator("#map-table tbody tr")).to_have_count(3)
    expect(page.locator("#map-table")).to_contain_text("Saudi Arabia")
    check_page(page, "statistics_three_dimensions")


def test_flows_and_field_errors_in_the_browser(page, console_user, people):  # noqa: F811
    sign_in_as(page, console_user("coordinator"))
    page.goto("/console/statistics")
    page.get_by_label("Flows by month").check()
    page.get_by_label("Kind").select_option("departures")
    page.get_by_label("From (UTC day)").fill("2026-05-01")
    page.get_by_label("To (UTC day, included)").fill("2026-04-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#to-error")).to_contain_text("on or after")
    expect(page.get_by_label("To (UTC day, included)")).to_have_attribute("aria-invalid", "true")
    check_page(page, "statistics_error")
    page.get_by_label("From (UTC day)").fill("2026-01-01")
    page.get_by_label("To (UTC day, included)").fill("2026-12-31")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#result-heading")).to_contain_text("Departures from 2026-01-01 to 2026-12-31")
    expect(page.locator("#statistics-table, #grand-total, #empty-result").first).to_be_visible()


def test_on_a_phone_the_page_fits_and_the_map_is_drawn(page, console_user, people):  # noqa: F811
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_as(page, console_user("embassy", ["AE", "SA"]))
    page.goto("/console/statistics")
    expect(page.locator("#stocks-map")).to_have_attribute("data-ready", "true")
    expect(page.locator("#statistics-table tbody tr")).to_have_count(2)  # their jurisdiction: AE and SA
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 392, f"the page scrolls sideways on a phone: {width}px"
    box = page.locator("#stocks-map").bounding_box()
    assert box and box["width"] <= 390 and box["height"] > 200
    check_page(page, "statistics_phone")
