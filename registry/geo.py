"""The one seam between coordinates, Shapely and the database (SRID 4326), and the point checks.

Country tests query ``country_parts`` (the Natural Earth 1:10m boundaries cut
into small pieces, GiST-indexed). Boundaries are cut at ±180°, so a planar
test is right on both sides of the antimeridian. A point within
``BORDER_TOLERANCE_M`` of its country counts as inside: the 1:10m coastline is
generalised (a GPS fix in a harbour or on a beach can fall just outside).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from registry.extensions import db

SRID = 4326
BORDER_TOLERANCE_M = 10_000

_COUNTRY_AT = text("""
SELECT alpha2 FROM country_parts
WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
LIMIT 1
""")
_NEAREST_WITHIN = text("""
SELECT alpha2 FROM country_parts
WHERE ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :tolerance)
  AND (CAST(:country AS text) IS NULL OR alpha2 = :country)
ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
LIMIT 1
""")
_COUNTRY_NAME = text("SELECT name FROM countries WHERE alpha2 = :code")


def point_wkt(lon: float, lat: float) -> str:
    """WKT of a WGS84 point; GeoJSON order (lon, lat)."""
    return f"POINT({lon!r} {lat!r})"


def country_at(lon: float, lat: float, *, tolerance_m: float = BORDER_TOLERANCE_M,
               country: str | None = None) -> str | None:
    """The country containing the point, else the nearest within ``tolerance_m`` (of ``country`` if given)."""
    found = db.session.execute(_COUNTRY_AT, {"lon": lon, "lat": lat}).scalar()
    if found and (country is None or found == country):
        return found
    return db.session.execute(_NEAREST_WITHIN, {"lon": lon, "lat": lat, "tolerance": tolerance_m,
                                                "country": country}).scalar()


@dataclass(frozen=True)
class PointProblem:
    field: str
    message: str


def _name(code: str) -> str:
    return db.session.execute(_COUNTRY_NAME, {"code": code}).scalar() or code


def check_on_land(lon: float, lat: float) -> tuple[str | None, PointProblem | None]:
    """(the country the point is in, or a problem): refuses (0, 0) and points at sea."""
    if lat == 0 and lon == 0:
        return None, PointProblem("lat", "(0, 0) is not a location: the device had no position fix.")
    country = country_at(lon, lat)
    if country is None:
        return None, PointProblem("lat", f"The point is at sea or more than {BORDER_TOLERANCE_M // 1000} km "
                                         "from any country's land.")
    return country, None


def check_in_country(lon: float, lat: float, country: str) -> PointProblem | None:
    """None when the point is in (or within the tolerance of) ``country``; else what is wrong."""
    if lat == 0 and lon == 0:
        return PointProblem("lat", "(0, 0) is not a location: the device had no position fix.")
    if country_at(lon, lat, country=country) == country:
        return None
    swapped_ok = -90 <= lon <= 90 and country_at(lat, lon, country=country) == country
    if swapped_ok:
        return PointProblem("lat", f"The point is not in {_name(country)}, but it would be with latitude and "
                                   "longitude exchanged: did you swap latitude and longitude?")
    elsewhere = country_at(lon, lat)
    if elsewhere is None:
        return PointProblem("lat", f"The point is at sea or more than {BORDER_TOLERANCE_M // 1000} km from any "
                                   f"country's land, not in {_name(country)}.")
    return PointProblem("lat", f"The point is in {_name(elsewhere)} ({elsewhere}), not in {_name(country)} "
                               f"({country}).")
