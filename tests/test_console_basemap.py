"""The console maps' offline base layer: country outlines per tile, from the boundaries the service ships."""
from __future__ import annotations

import pytest
from shapely.geometry import box, shape

from tests.conftest import owner_connection
from tests.console_helpers import make_console_user, sign_in


def test_a_tile_holds_the_countries_it_shows_clipped_near_its_edges(client, db):
    from registry.places.services import tile_bounds
    _, username = make_console_user(db, "embassy", ["AE"])
    sign_in(client, username)
    z, x, y = 6, 41, 27  # the Gulf: the UAE, Oman, Qatar, Saudi Arabia, Iran
    response = client.get(f"/console/basemap/{z}/{x}/{y}.json")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    assert response.headers["Cache-Control"] == "private, max-age=86400"
    features = response.get_json()["features"]
    codes = {f["properties"]["code"] for f in features}
    assert {"AE", "OM", "SA", "IR"} <= codes and "PH" not in codes
    west, south, east, north = tile_bounds(z, x, y)
    margin = box(west, south, east, north).buffer(0.2 * (east - west))
    for feature in features:
        assert feature["geometry"] is None or margin.contains(shape(feature["geometry"]))
    labels = [f["properties"]["name"] for f in features if f["properties"]["label"]]
    assert "United Arab Emirates" in labels


def test_tiles_need_a_session_and_are_not_recorded_one_by_one(client, db):
    assert client.get("/console/basemap/0/0/0.json").status_code == 302  # to sign in
    _, username = make_console_user(db)
    sign_in(client, username)
    for x in range(2):
        for y in range(2):
            assert client.get(f"/console/basemap/1/{x}/{y}.json").status_code == 200
    with owner_connection() as conn:
        actions = [row[0] for row in conn.execute("SELECT action FROM audit_events")]
    assert "console.basemap" not in actions


@pytest.mark.parametrize("path", ["13/0/0", "2/4/0", "2/0/4", "1/-1/0"])
def test_tiles_outside_the_pyramid_are_404(client, db, path):
    _, username = make_console_user(db)
    sign_in(client, username)
    assert client.get(f"/console/basemap/{path}.json").status_code == 404
