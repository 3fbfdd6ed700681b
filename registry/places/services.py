"""Geocoding and country geometries for the API: thin wrappers over registry.geocoding and the countries table."""
from __future__ import annotations

import json
import math
from functools import lru_cache

from sqlalchemy import func, select, text

from registry.errors import NotFound
from registry.extensions import db
from registry.geocoding import gazetteer
from registry.nationals.models import Country

# Display only: about 1 km. Exposure and point checks use the full boundary, never this.
DISPLAY_TOLERANCE_DEG = 0.01


def geocode(country: str, query: str) -> dict:
    """The best place for ``query`` in ``country`` and its alternatives; the country's point when none matched."""
    match = gazetteer().lookup(country, query)
    if match is None:
        fallback = db.session.execute(select(func.ST_Y(Country.label_point), func.ST_X(Country.label_point),
                                             Country.precision_m, Country.name)
                                      .where(Country.alpha2 == country)).first()
        best = None if fallback is None else {
            "name": fallback[3], "country": country, "lat": fallback[0], "lon": fallback[1],
            "precision_m": float(fallback[2]), "source": "country_centroid"}
        return {"query": query, "country": country, "match": best, "fuzzy": False, "alternatives": []}
    return {"query": query, "country": country, "fuzzy": match.fuzzy,
            "match": match.place.as_dict() | {"source": "geocoded_city"},
            "alternatives": [p.as_dict() | {"source": "geocoded_city"} for p in match.alternatives]}


def country_feature(code: str) -> dict:
    """A GeoJSON Feature of the country, simplified for display. :raises NotFound:"""
    row = db.session.execute(
        select(Country.name, Country.precision_m, func.ST_X(Country.label_point), func.ST_Y(Country.label_point),
               func.ST_AsGeoJSON(func.ST_SimplifyPreserveTopology(Country.geom, DISPLAY_TOLERANCE_DEG), 5))
        .where(Country.alpha2 == code.upper())).first()
    if row is None:
        raise NotFound("No such country.")
    name, precision, lon, lat, geometry = row
    return {"type": "Feature", "geometry": json.loads(geometry),
            "properties": {"code": code.upper(), "name": name, "label_point": {"lat": lat, "lon": lon},
                           "radius_m": precision, "simplified_tolerance_deg": DISPLAY_TOLERANCE_DEG,
                           "note": "simplified for display; not for exposure or point checks"}}


# ---------------------------------------------------------------------- the console's offline base map

BASEMAP_MAX_ZOOM = 12  # deeper views scale the z12 tiles (1:10m boundaries hold no more detail)
_TILE_PX = 256
# A tile's shapes reach a little past its edges, so that the outlines cut by the clip fall outside the
# drawn square (no false borders along tile seams).
_MARGIN = 0.02
# Labels are drawn by every tile they overlap: a tile gets the names whose point lies within a wider box.
_LABEL_MARGIN = 0.3
_BASEMAP_SQL = text("""
    SELECT alpha2, name,
           CASE WHEN ST_Intersects(geom, box)
                THEN ST_AsGeoJSON(ST_Simplify(ST_ClipByBox2D(geom, box), :tolerance, true), :digits) END AS shape,
           CASE WHEN label_point && label_box THEN ARRAY[ST_X(label_point), ST_Y(label_point)] END AS label
      FROM countries,
           (SELECT ST_MakeEnvelope(:west, :south, :east, :north, 4326) AS box,
                   ST_MakeEnvelope(:label_west, :label_south, :label_east, :label_north, 4326) AS label_box) AS tile
     WHERE (geom && box AND ST_Intersects(geom, box)) OR label_point && label_box
""")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of a Web Mercator (XYZ) tile."""
    n = 2 ** z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


@lru_cache(maxsize=4096)
def basemap_tile(z: int, x: int, y: int) -> bytes:
    """Country outlines of one map tile as GeoJSON, clipped a little past the tile and simplified to about
    a pixel (reference data, the same for everyone: cached). :raises NotFound: no such tile."""
    if not (0 <= z <= BASEMAP_MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise NotFound("No such tile.")
    west, south, east, north = tile_bounds(z, x, y)
    pad_x, pad_y = (east - west) * _MARGIN, (north - south) * _MARGIN
    pixel_deg = (east - west) / _TILE_PX
    digits = max(1, min(6, math.ceil(-math.log10(pixel_deg)) + 1))
    label_x, label_y = (east - west) * _LABEL_MARGIN, (north - south) * _LABEL_MARGIN
    rows = db.session.execute(_BASEMAP_SQL, {
        "west": max(-180.0, west - pad_x), "east": min(180.0, east + pad_x), "south": max(-85.06, south - pad_y),
        "north": min(85.06, north + pad_y), "label_west": west - label_x, "label_east": east + label_x,
        "label_south": south - label_y, "label_north": north + label_y, "tolerance": pixel_deg, "digits": digits})
    features = []
    for row in rows:
        drawn = row.shape and '"coordinates":[]' not in row.shape and '"geometries":[]' not in row.shape
        if drawn or row.label:
            features.append({"type": "Feature", "geometry": json.loads(row.shape) if drawn else None,
                             "properties": {"code": row.alpha2, "name": row.name, "label": row.label}})
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")).encode()
