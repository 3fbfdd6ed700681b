"""Crisis areas: every input form (SPEC §4.1, §6a) to one valid MultiPolygon, or a 422 saying what and where.

Forms: GeoJSON Polygon/MultiPolygon; a geodesic circle; a list of countries;
a CAP 1.2 alert (``<area>`` polygons and circles, written ``lat,lon``); a USGS
event (a point, made a circle of ``radius_km``) or GDACS features (polygons,
points made circles).

Rules (SPEC §6): at most ``MAX_AREA_VERTICES`` vertices (counted cheaply on
the raw body first, then exactly); coordinates in range; rings closed with 4+
positions; non-empty; non-zero area; valid, with the GEOS reason and location
otherwise, unless the client asks ``"repair": true`` (the answer then says what
changed). Winding is normalised, never refused. A ring whose longitudes jump
by more than 180° crosses the antimeridian and is cut there (never read as
"the rest of the globe").
"""
from __future__ import annotations

import math
import re

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping

from registry import geo
from registry.errors import Unprocessable

# The documented cap: a detailed flood extent or a high-resolution boundary fits, an absurd body does not.
MAX_AREA_VERTICES = 200_000
MAX_RADIUS_KM = 2000.0
MAX_ZONES = 6
MAX_ZONE_KM = 2000.0
CAP_SEVERITY = {"minor": "low", "moderate": "moderate", "severe": "high", "extreme": "extreme"}


class InvalidArea(Unprocessable):
    code, title = "invalid-geometry", "The area is not a valid geometry"

    def __init__(self, reason: str, field: str = "area"):
        super().__init__(reason, errors={field: [reason]})


# What a generated circle (a circle area, a CAP circle, a USGS or GDACS point) costs: the vertices it becomes.
CIRCLE_VERTICES = geo.CIRCLE_SEGMENTS


def rough_vertex_count(raw: bytes) -> int:
    """An upper estimate from the raw body, before any parsing: one '[' per GeoJSON position, one ',' per
    CAP 'lat,lon' pair, and ``CIRCLE_VERTICES`` for every circle or point it may hold."""
    circles = raw.count(b"circle") + raw.count(b'"Point"')
    return max(raw.count(b"["), raw.count(b",")) + CIRCLE_VERTICES * circles


def check_raw_cost(raw: bytes) -> None:
    """Refuse, before parsing, a body whose area could not fit the cap (the estimate may double count: a
    CAP circle's tag appears twice). :raises InvalidArea:"""
    estimate = rough_vertex_count(raw)
    if estimate > 2 * MAX_AREA_VERTICES:
        raise InvalidArea(f"The area would have about {estimate} vertices (a circle or point counts as the "
                          f"{CIRCLE_VERTICES} it becomes); at most {MAX_AREA_VERTICES} are accepted.")


def area_from_spec(spec: dict, countries_geometry=None) -> tuple[MultiPolygon, dict]:
    """(the area, how it was given and any repair). :raises InvalidArea:"""
    kind = spec.get("type")
    repair = bool(spec.get("repair"))
    source = {"type": kind}
    if kind == "geojson":
        geometry = _from_geojson(spec.get("geometry"), repair, source)
    elif kind == "circle":
        center = spec.get("center") or {}
        geometry = _circle(center.get("lat"), center.get("lon"), spec.get("radius_km"), "area.center")
        # The run measures a circle from its centre (crises/exposure.py: the geodesic circle itself, exact).
        source.update(center={"lat": float(center["lat"]), "lon": float(center["lon"])},
                      radius_km=float(spec["radius_km"]))
    elif kind == "countries":
        codes = spec.get("codes")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            raise InvalidArea("Give 'codes', a non-empty list of ISO 3166-1 alpha-2 codes.", "area.codes")
        geometry = countries_geometry(sorted({c.strip().upper() for c in codes}))
        source["codes"] = sorted({c.strip().upper() for c in codes})
    elif kind == "cap":
        geometry = _from_cap(spec.get("xml"), source)
    elif kind == "feature":
        geometry = _from_features(spec.get("feature"), spec.get("radius_km"), repair, source)
    else:
        raise InvalidArea("'type' must be geojson, circle, countries, cap or feature.", "area.type")
    geometry = _finish(geometry)
    return geometry, source


# ------------------------------------------------------------------------------------------- GeoJSON

def _positions(ring, where: str) -> list[tuple[float, float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise InvalidArea(f"{where}: a ring needs at least 4 positions (the last equal to the first).")
    out = []
    for i, position in enumerate(ring):
        if (not isinstance(position, list) or len(position) < 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position[:2])):
            raise InvalidArea(f"{where}, position {i}: a position is [lon, lat].")
        lon, lat = float(position[0]), float(position[1])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise InvalidArea(f"{where}, position {i}: coordinates must be finite numbers.")
        if not -90 <= lat <= 90:
            raise InvalidArea(f"{where}, position {i}: latitude {lat} is outside -90..90.")
        if not -180 <= lon <= 180:
            raise InvalidArea(f"{where}, position {i}: longitude {lon} is outside -180..180.")
        out.append((lon, lat))
    if out[0] != out[-1]:
        raise InvalidArea(f"{where}: the ring is not closed (its last position must equal its first).")
    return out


def _polygon(rings, where: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise InvalidArea(f"{where}: a polygon is a list of rings, the first the outer one.")
    shell = geo.unwrap_longitudes(_positions(rings[0], f"{where}, ring 0"))
    holes = []
    for r, ring in enumerate(rings[1:], start=1):
        hole = geo.unwrap_longitudes(_positions(ring, f"{where}, ring {r}"))
        # A hole lies on the same side of the antimeridian as its shell.
        offset = round((shell[0][0] - hole[0][0]) / 360) * 360
        holes.append([(x + offset, y) for x, y in hole])
    return Polygon(shell, holes)


def _from_geojson(geometry, repair: bool, source: dict) -> MultiPolygon:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidArea("'geometry' must be a GeoJSON Polygon or MultiPolygon.", "area.geometry")
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        raise InvalidArea("The geometry is empty.", "area.geometry")
    _check_count(_count_positions(coordinates))
    if geometry["type"] == "Polygon":
        polygons = [_polygon(coordinates, "area.geometry")]
    else:
        polygons = [_polygon(p, f"area.geometry, polygon {i}") for i, p in enumerate(coordinates)]
    return _valid(polygons, repair, source)


def _count_positions(value) -> int:
    if isinstance(value, list) and value and isinstance(value[0], (int, float)):
        return 1
    return sum(_count_positions(v) for v in value) if isinstance(value, list) else 0


def _check_count(count: int, circles: int = 0) -> None:
    """:raises InvalidArea: ``count`` vertices plus what ``circles`` generated circles become exceed the cap."""
    total = count + CIRCLE_VERTICES * circles
    if total > MAX_AREA_VERTICES:
        generated = f" ({circles} circles or points of {CIRCLE_VERTICES} vertices each)" if circles else ""
        raise InvalidArea(f"The area has {total} vertices{generated}; at most {MAX_AREA_VERTICES} are accepted.")


def _valid(polygons: list[Polygon], repair: bool, source: dict) -> MultiPolygon:
    """Each polygon valid (or repaired on request), cut at the antimeridian, merged."""
    pieces = []
    for i, polygon in enumerate(polygons):
        if polygon.convex_hull.area == 0:  # (a bowtie's signed area is 0 too, but not its hull's)
            where = f"polygon {i} " if len(polygons) > 1 else ""
            raise InvalidArea(f"The area {where}has no surface (zero area): its points are on one line.",
                              "area.geometry")
        reason = shapely.is_valid_reason(polygon)
        if reason != "Valid Geometry":
            where = f"polygon {i}: " if len(polygons) > 1 else ""
            if not repair:
                raise InvalidArea(f"The area is not valid: {where}{_readable(reason)}. Send \"repair\": true "
                                  "to have it repaired (the answer says what changed).", "area.geometry")
            fixed = shapely.make_valid(polygon)
            kept = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
            repaired = shapely.union_all(kept) if kept else Polygon()
            source.setdefault("repairs", []).append({
                "polygon": i, "reason": _readable(reason),
                "area_before_deg2": round(abs(polygon.area), 6), "area_after_deg2": round(repaired.area, 6),
                "parts_after": len(getattr(repaired, "geoms", [repaired])),
            })
            polygon = repaired
        if not polygon.is_empty:
            pieces.append(polygon)
    if not pieces:
        raise InvalidArea("The area is empty.", "area.geometry")
    return shapely.union_all([geo.split_antimeridian(p) if p.geom_type == "Polygon"
                              else shapely.union_all([geo.split_antimeridian(q) for q in p.geoms])
                              for p in pieces])


def _readable(reason: str) -> str:
    """GEOS' 'Self-intersection[55.1 25.2]' as 'self-intersection at lon 55.1, lat 25.2'."""
    match = re.match(r"(.*)\[([-\d.eE+]+) ([-\d.eE+]+)\]$", reason)
    if not match:
        return reason
    return f"{match.group(1).lower()} at lon {float(match.group(2)):.6g}, lat {float(match.group(3)):.6g}"


# ------------------------------------------------------------------------------------------- circles

def _circle(lat, lon, radius_km, where: str) -> MultiPolygon:
    for name, value, low, high in (("lat", lat, -90, 90), ("lon", lon, -180, 180)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidArea(f"'{name}' must be a number in {low}..{high}.", f"{where}.{name}")
    if (not isinstance(radius_km, (int, float)) or isinstance(radius_km, bool)
            or not 0 < radius_km <= MAX_RADIUS_KM):
        raise InvalidArea(f"'radius_km' must be a number above 0 and at most {MAX_RADIUS_KM:g}.", "area.radius_km")
    return geo.geodesic_circle(float(lat), float(lon), float(radius_km) * 1000)


# ------------------------------------------------------------------------------------------- CAP 1.2

_CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


def _from_cap(xml, source: dict) -> MultiPolygon:
    import xml.etree.ElementTree as ElementTree
    if not isinstance(xml, str) or not xml.strip():
        raise InvalidArea("'xml' must hold a CAP 1.2 alert.", "area.xml")
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise InvalidArea("DTDs and entities are not accepted in CAP alerts.", "area.xml")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise InvalidArea(f"The CAP alert is not well-formed XML: {exc}.", "area.xml") from None
    ns = {"cap": _CAP_NS}
    if root.tag != f"{{{_CAP_NS}}}alert":
        raise InvalidArea("Not a CAP 1.2 alert (root element urn:oasis:names:tc:emergency:cap:1.2 alert).",
                          "area.xml")
    source["identifier"] = (root.findtext("cap:identifier", default="", namespaces=ns) or "")[:200]
    severity = root.findtext("cap:info/cap:severity", default="", namespaces=ns).strip().lower()
    if severity in CAP_SEVERITY:
        source["severity"] = CAP_SEVERITY[severity]
    shapes = []
    texts = [p.text or "" for p in root.findall("cap:info/cap:area/cap:polygon", ns)]
    circles = root.findall("cap:info/cap:area/cap:circle", ns)
    _check_count(sum(t.count(",") for t in texts), circles=len(circles))
    for i, text in enumerate(texts):
        positions = []
        for pair in text.split():
            lat_text, _, lon_text = pair.partition(",")
            try:
                positions.append([float(lon_text), float(lat_text)])  # CAP writes lat,lon
            except ValueError:
                raise InvalidArea(f"CAP polygon {i}: '{pair[:40]}' is not 'lat,lon'.", "area.xml") from None
        shapes.append(_polygon([positions], f"CAP polygon {i}"))
    for i, element in enumerate(circles):
        center, _, radius = (element.text or "").strip().partition(" ")
        lat_text, _, lon_text = center.partition(",")
        try:
            lat, lon, radius_km = float(lat_text), float(lon_text), float(radius)
        except ValueError:
            raise InvalidArea(f"CAP circle {i}: write 'lat,lon radius_km'.", "area.xml") from None
        shapes.append(_circle(lat, lon, radius_km, f"area.xml.circle[{i}]"))
    if not shapes:
        raise InvalidArea("The CAP alert has no <area> with a <polygon> or <circle>.", "area.xml")
    polygons = [s for s in shapes if s.geom_type == "Polygon"]
    circles = [s for s in shapes if s.geom_type != "Polygon"]
    return shapely.union_all(([_valid(polygons, False, source)] if polygons else []) + circles)


# ------------------------------------------------------------------------------------------- USGS, GDACS

def _from_features(feature, radius_km, repair: bool, source: dict) -> MultiPolygon:
    if not isinstance(feature, dict) or feature.get("type") not in ("Feature", "FeatureCollection"):
        raise InvalidArea("'feature' must be a GeoJSON Feature or FeatureCollection.", "area.feature")
    features = feature.get("features") if feature["type"] == "FeatureCollection" else [feature]
    if not isinstance(features, list) or not features:
        raise InvalidArea("The FeatureCollection has no features.", "area.feature")
    polygons, points, ids = [], [], []
    for i, item in enumerate(features):
        geometry = item.get("geometry") if isinstance(item, dict) else None
        if isinstance(item, dict) and item.get("id") is not None:
            ids.append(str(item["id"])[:100])
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind in ("Polygon", "MultiPolygon"):
            polygons.append(geometry)
        elif kind == "Point":
            coordinates = geometry.get("coordinates")
            if not isinstance(coordinates, list) or len(coordinates) < 2:
                raise InvalidArea(f"feature {i}: a Point is [lon, lat].", "area.feature")
            points.append((coordinates[1], coordinates[0], i))
    source["feature_ids"] = ids[:20]
    if polygons:  # GDACS: the alert polygons are the area; its points are only markers
        # Every polygon's vertices are counted before any is built.
        _check_count(sum(_count_positions(p.get("coordinates")) for p in polygons))
        return shapely.union_all([_from_geojson(p, repair, source) for p in polygons])
    if not points:
        raise InvalidArea("The features hold no Polygon, MultiPolygon or Point.", "area.feature")
    if radius_km is None:
        raise InvalidArea("A point event (e.g. a USGS earthquake) needs 'radius_km'.", "area.radius_km")
    _check_count(0, circles=len(points))
    return shapely.union_all([_circle(lat, lon, radius_km, f"area.feature[{i}]") for lat, lon, i in points])


# ------------------------------------------------------------------------------------------- the result

def _finish(geometry) -> MultiPolygon:
    """Counter-clockwise shells, clockwise holes, as one MultiPolygon with an area."""
    if geometry.is_empty:
        raise InvalidArea("The area is empty.")
    geometry = shapely.orient_polygons(geometry, exterior_cw=False)
    if geometry.geom_type == "Polygon":
        geometry = MultiPolygon([geometry])
    if geometry.area == 0:
        raise InvalidArea("The area has no surface (zero area).")
    _check_count(shapely.get_num_coordinates(geometry))
    return geometry


def zones_from_spec(zones) -> list[float]:
    """Ascending ring edges in km. :raises InvalidArea:"""
    if zones is None:
        return []
    if (not isinstance(zones, list) or len(zones) > MAX_ZONES
            or not all(isinstance(z, (int, float)) and not isinstance(z, bool) for z in zones)):
        raise InvalidArea(f"'zones_km' is a list of at most {MAX_ZONES} numbers.", "zones_km")
    values = [float(z) for z in zones]
    if any(not 0 < z <= MAX_ZONE_KM for z in values) or values != sorted(set(values)):
        raise InvalidArea(f"'zones_km' must be strictly ascending, each above 0 and at most {MAX_ZONE_KM:g}.",
                          "zones_km")
    return values


def as_geojson(geometry) -> dict:
    return mapping(geometry)


def bbox(geometry) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a stored area (cut at ±180°). An area with parts on both sides of
    the antimeridian gets the box that crosses it (west > east, RFC 7946 §5.2) when that box is narrower."""
    west, south, east, north = geometry.bounds
    parts = getattr(geometry, "geoms", [geometry])
    if west <= -180 and east >= 180 and len(parts) > 1:
        shifted = [(b[0] + 360 if b[2] <= 0 else b[0], b[2] + 360 if b[2] <= 0 else b[2])
                   for b in (p.bounds for p in parts)]
        shifted_west, shifted_east = min(w for w, _ in shifted), max(e for _, e in shifted)
        if shifted_east - shifted_west < east - west:
            return shifted_west, south, shifted_east - 360, north
    return west, south, east, north

