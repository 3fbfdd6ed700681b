"""The one seam between coordinates, Shapely and the database (SRID 4326)."""
from __future__ import annotations

SRID = 4326


def point_wkt(lon: float, lat: float) -> str:
    """WKT of a WGS84 point; GeoJSON order (lon, lat)."""
    return f"POINT({lon!r} {lat!r})"
