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


# ---------------------------------------------------------------------- areas (Shapely side)

_WGS84_A = 6378137.0
_WGS84_F = 1 / 298.257223563
_WGS84_B = _WGS84_A * (1 - _WGS84_F)
CIRCLE_SEGMENTS = 256  # chord error of a 500 km circle: ~19 m


def destination(lat: float, lon: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """(lat, lon) reached from (lat, lon) along ``bearing_deg`` after ``distance_m`` on the WGS84
    ellipsoid (Vincenty's direct formula, millimetre accuracy). The longitude is not wrapped."""
    import math
    a, b, f = _WGS84_A, _WGS84_B, _WGS84_F
    alpha1 = math.radians(bearing_deg)
    sin_a1, cos_a1 = math.sin(alpha1), math.cos(alpha1)
    tan_u1 = (1 - f) * math.tan(math.radians(lat))
    cos_u1 = 1 / math.sqrt(1 + tan_u1 * tan_u1)
    sin_u1 = tan_u1 * cos_u1
    sigma1 = math.atan2(tan_u1, cos_a1)
    sin_alpha = cos_u1 * sin_a1
    cos2_alpha = 1 - sin_alpha * sin_alpha
    u2 = cos2_alpha * (a * a - b * b) / (b * b)
    big_a = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
    big_b = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
    sigma = distance_m / (b * big_a)
    for _ in range(100):
        cos_2sm = math.cos(2 * sigma1 + sigma)
        sin_s, cos_s = math.sin(sigma), math.cos(sigma)
        delta = big_b * sin_s * (cos_2sm + big_b / 4 * (cos_s * (-1 + 2 * cos_2sm ** 2) - big_b / 6 * cos_2sm
                                                          * (-3 + 4 * sin_s ** 2) * (-3 + 4 * cos_2sm ** 2)))
        previous, sigma = sigma, distance_m / (b * big_a) + delta
        if abs(sigma - previous) < 1e-12:
            break
    sin_s, cos_s = math.sin(sigma), math.cos(sigma)
    cos_2sm = math.cos(2 * sigma1 + sigma)
    x = sin_u1 * sin_s - cos_u1 * cos_s * cos_a1
    lat2 = math.atan2(sin_u1 * cos_s + cos_u1 * sin_s * cos_a1, (1 - f) * math.sqrt(sin_alpha ** 2 + x * x))
    lam = math.atan2(sin_s * sin_a1, cos_u1 * cos_s - sin_u1 * sin_s * cos_a1)
    c = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha))
    big_l = lam - (1 - c) * f * sin_alpha * (sigma + c * sin_s * (cos_2sm + c * cos_s * (-1 + 2 * cos_2sm ** 2)))
    return math.degrees(lat2), lon + math.degrees(big_l)


def geodesic_circle(lat: float, lon: float, radius_m: float, segments: int = CIRCLE_SEGMENTS):
    """The circle of ``radius_m`` around (lat, lon) on the ellipsoid, as a (Multi)Polygon cut at ±180°."""
    from shapely.geometry import Polygon
    ring = [destination(lat, lon, 360.0 * k / segments, radius_m) for k in range(segments)]
    return split_antimeridian(Polygon([(x, y) for y, x in ring]))


def unwrap_longitudes(coords) -> list[tuple[float, float]]:
    """The ring with each longitude within 180° of the previous one (no jump across the antimeridian)."""
    out = [tuple(coords[0][:2])]
    for x, y, *_ in coords[1:]:
        previous = out[-1][0]
        while x - previous > 180:
            x -= 360
        while previous - x > 180:
            x += 360
        out.append((x, y))
    return out


def split_antimeridian(polygon):
    """A polygon whose longitudes may run past ±180° (unwrapped), cut at the antimeridian and
    shifted back into [-180, 180]: a MultiPolygon with parts on both sides when it crosses."""
    import shapely
    from shapely.affinity import translate
    from shapely.geometry import MultiPolygon, box
    pieces = []
    for shift in (-360, 0, 360):
        window = box(-180 + shift, -90, 180 + shift, 90)
        part = polygon.intersection(window)
        if not part.is_empty:
            pieces.append(translate(part, xoff=-shift))
    merged = shapely.union_all(pieces) if len(pieces) > 1 else pieces[0]
    polygons = [g for g in getattr(merged, "geoms", [merged]) if g.geom_type == "Polygon" and not g.is_empty]
    return MultiPolygon(polygons)
