"""What every console map shares: the offline base layer (country outlines per tile, from the boundaries
the service ships). An online tile layer is added over it by the page when ``REGISTRY_TILE_URL`` is set."""
from __future__ import annotations

from flask import current_app

from registry.console import bp
from registry.console.pages import reference_data
from registry.places import services as places


@bp.get("/basemap/<int:z>/<int:x>/<int:y>.json")
@reference_data
def basemap(z: int, x: int, y: int):
    """One tile of the base layer (GeoJSON in degrees); the browser keeps it for a day."""
    response = current_app.response_class(places.basemap_tile(z, x, y), mimetype="application/geo+json")
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
