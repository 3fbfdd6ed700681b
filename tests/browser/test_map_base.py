"""The shared map script draws the offline base layer in the browser (no tile server, no internet)."""
from __future__ import annotations

import os

from tests.browser.conftest import sign_in_as


def test_the_base_layer_draws_land_from_the_services_own_boundaries(page, console_user):
    sign_in_as(page, console_user("coordinator"))
    page.add_style_tag(url="/console/vendor/leaflet/leaflet.css")
    page.add_script_tag(url="/console/vendor/leaflet/leaflet.js")
    page.add_script_tag(url="/console/static/map.js")
    page.evaluate("""() => {
        const div = document.createElement("div");
        div.id = "probe"; div.className = "map"; div.setAttribute("aria-label", "Map");
        document.querySelector("main").append(div);
        window.probeMap = Sagip.map(div, {center: [25, 55], zoom: 5});
    }""")
    page.wait_for_function("() => document.querySelectorAll('#probe canvas').length >= 4")
    page.wait_for_function("() => [...document.querySelectorAll('#probe .leaflet-tile-loaded')].length >= 4")
    # Land is drawn: some tile canvas holds the land colour.
    land = page.evaluate("""() => [...document.querySelectorAll('#probe canvas')].some((c) => {
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i] === 0xf4 && data[i + 1] === 0xf1 && data[i + 2] === 0xea) return true;
        }
        return false;
    })""")
    assert land
    if os.environ.get("SAGIP_SCREENSHOTS"):
        page.locator("#probe").screenshot(path=os.path.join(os.environ["SAGIP_SCREENSHOTS"], "basemap.png"))
