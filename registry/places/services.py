"""Geocoding and country geometries for the API: thin wrappers over registry.geocoding and the countries table."""
from __future__ import annotations

import json

from sqlalchemy import func, select

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
