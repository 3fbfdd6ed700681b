#!/usr/bin/env python3
"""Build country fallback points (country_points.csv) and boundaries (country_boundaries.csv.gz)
from Natural Earth 1:10m.

Input: countries-10m.json from the npm package world-atlas@2.0.2
(Natural Earth 1:10m Admin 0 countries, TopoJSON).

Usage:
    python3 build_country_points.py /tmp/wa/node_modules/world-atlas/countries-10m.json \
        [-o geodata/country_points.csv]

For every country the output has:
  * lat/lon: representative_point() of the largest polygon part (by area), which
    is guaranteed to lie inside that part (unlike the centroid).
  * precision_m: radius of a circle with the same area as the whole country,
    rounded to 1000 m (minimum 1000 m). Area is computed on a sphere with the
    WGS84 authalic radius (6371007.2 m) using the spherical-excess line-integral
    formula (Chamberlain & Duquette 2007), i.e. no pyproj needed.

Dependencies: Python 3.11 stdlib, shapely>=2, pycountry.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys

import pycountry
import shapely
import shapely.affinity
from shapely.geometry import MultiPolygon, Polygon, box

AUTHALIC_RADIUS_M = 6371007.2

# Natural Earth features that have no ISO 3166-1 numeric id in world-atlas.
# Value: alpha-2 code to assign, or None to skip (with the reason).
NO_ID_FEATURES: dict[str, tuple[str | None, str]] = {
    "Kosovo": ("XK", "user-assigned code XK (used by EU, IMF, etc.)"),
    # Merged into the ISO 3166-1 country whose territory ISO (and the UN) recognises: a worker
    # there is in that country for the host-country check and for its embassy.
    "N. Cyprus": ("CY", "merged into Cyprus (CY): ISO recognises Cyprus sovereignty"),
    "Somaliland": ("SO", "merged into Somalia (SO): ISO recognises Somalia sovereignty"),
    "Cyprus U.N. Buffer Zone": ("CY", "merged into Cyprus (CY)"),
    "Dhekelia": ("CY", "merged into Cyprus (CY): UK Sovereign Base Area on Cyprus, no ISO code"),
    "Akrotiri": ("CY", "merged into Cyprus (CY): UK Sovereign Base Area on Cyprus, no ISO code"),
    "USNB Guantanamo Bay": ("CU", "merged into Cuba (CU): US-leased"),
    "Baikonur": ("KZ", "merged into Kazakhstan (KZ): leased to Russia"),
    "Coral Sea Is.": ("AU", "merged into Australia (AU): external territory without ISO code"),
    # Left out, deliberately: uninhabited or disputed, no ISO code and no sovereign that ISO names.
    "Siachen Glacier": (None, "skipped: disputed India/Pakistan, no ISO code"),
    "Spratly Is.": (None, "skipped: disputed, no ISO code"),
    "Clipperton I.": (None, "skipped: French, no ISO 3166-1 code (CP only exceptionally reserved)"),
    "Bajo Nuevo Bank": (None, "skipped: disputed, no ISO code"),
    "Serranilla Bank": (None, "skipped: disputed, no ISO code"),
    "Scarborough Reef": (None, "skipped: disputed, no ISO code"),
    # Split by longitude into Christmas Island (CX, ~105.6E) and
    # Cocos (Keeling) Islands (CC, ~96.8E); handled in split_indian_ocean_ter().
    "Indian Ocean Ter.": ("CX+CC", "split by longitude: parts east of 100E -> CX, west -> CC"),
}

# Natural Earth Admin 0 includes these ISO 3166-1 territories inside their
# sovereign's feature. Parts whose representative point falls in one of the
# boxes (lon_min, lat_min, lon_max, lat_max) are moved to the territory code.
SPLIT_OUT: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {
    "FR": [("GF", (-54.7, 2.0, -51.5, 6.0)),      # French Guiana
           ("GP", (-61.9, 15.8, -60.9, 16.6)),    # Guadeloupe
           ("MQ", (-61.3, 14.3, -60.7, 14.95)),   # Martinique
           ("RE", (55.1, -21.5, 55.9, -20.8)),    # Reunion
           ("YT", (44.9, -13.1, 45.4, -12.5))],   # Mayotte
    "NL": [("BQ", (-68.5, 11.9, -68.1, 12.4)),    # Bonaire
           ("BQ", (-63.3, 17.4, -62.9, 17.7))],   # Saba, Sint Eustatius
    "NO": [("SJ", (10.0, 74.0, 35.0, 81.0)),      # Svalbard
           ("SJ", (-9.1, 70.8, -7.9, 71.2)),      # Jan Mayen
           ("BV", (3.2, -54.5, 3.5, -54.3))],     # Bouvet Island
    "NZ": [("TK", (-172.6, -9.5, -171.1, -8.5))],  # Tokelau
}


# --------------------------------------------------------------------------
# TopoJSON decoding (hand-written, no topojson library)
# --------------------------------------------------------------------------
def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    """Decode quantized, delta-encoded arcs into absolute lon/lat coordinates."""
    tr = topo.get("transform")
    arcs_out = []
    for arc in topo["arcs"]:
        if tr:
            sx, sy = tr["scale"]
            tx, ty = tr["translate"]
            x = y = 0
            pts = []
            for p in arc:
                x += p[0]
                y += p[1]
                pts.append((x * sx + tx, y * sy + ty))
        else:
            pts = [(p[0], p[1]) for p in arc]
        arcs_out.append(pts)
    return arcs_out


def ring_coords(ring_arcs: list[int], arcs: list) -> list[tuple[float, float]]:
    """Stitch arc indexes into one ring; negative index ~i = arc i reversed."""
    coords: list[tuple[float, float]] = []
    for idx in ring_arcs:
        pts = arcs[~idx][::-1] if idx < 0 else arcs[idx]
        # consecutive arcs share their end/start point: drop the duplicate
        coords.extend(pts[1:] if coords else pts)
    return coords


DEGENERATE_RINGS = 0  # rings collapsed by quantization (< 3 distinct points)


def _ring_ok(coords) -> bool:
    global DEGENERATE_RINGS
    if len(set(coords)) < 3:
        DEGENERATE_RINGS += 1
        return False
    return True


def unwrap_ring(coords: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Make longitudes continuous across the antimeridian.

    world-atlas stitches Natural Earth's antimeridian cuts back together, so a
    ring crossing 180 deg jumps from +180 to -180. Unwrapping gives a planar ring
    that may extend beyond +-180; it is cut back into [-180, 180] later.
    A ring that winds around a pole (Antarctica) ends 360 deg away from where it
    started; it is closed along the pole latitude.
    """
    out = [coords[0]]
    off = 0.0
    for (x0, _), (x, y) in zip(coords, coords[1:]):
        d = x - x0
        if d > 180:
            off -= 360
        elif d < -180:
            off += 360
        out.append((x + off, y))
    if off:  # polar ring
        pole = -90.0 if sum(y for _, y in coords) < 0 else 90.0
        out = out[:-1] + [(out[-1][0], out[-1][1]), (out[-1][0], pole), (out[0][0], pole), out[0]]
    return out


def to_polygon(rings: list[list[int]], arcs: list) -> Polygon | None:
    shell, *holes = (ring_coords(r, arcs) for r in rings)
    if not _ring_ok(shell):
        return None
    shell = unwrap_ring(shell)
    sxmin = min(x for x, _ in shell)
    sxmax = max(x for x, _ in shell)
    fixed_holes = []
    for h in holes:
        if not _ring_ok(h):
            continue
        h = unwrap_ring(h)
        cx = sum(x for x, _ in h) / len(h)
        shift = next((s for s in (0, 360, -360) if sxmin <= cx + s <= sxmax), 0)
        fixed_holes.append([(x + shift, y) for x, y in h])
    return Polygon(shell, fixed_holes)


def feature_geometry(obj: dict, arcs: list):
    t = obj["type"]
    if t == "Polygon":
        polys = [to_polygon(obj["arcs"], arcs)]
    elif t == "MultiPolygon":
        polys = [to_polygon(p, arcs) for p in obj["arcs"]]
    else:
        raise ValueError(f"unsupported geometry type {t}")
    return MultiPolygon([p for p in polys if p is not None])


WORLD = box(-180.0, -90.0, 180.0, 90.0)


def cut_antimeridian(geom):
    """Cut an unwrapped geometry back into [-180, 180] (pieces shifted by 360)."""
    xmin, _, xmax, _ = geom.bounds
    if xmin >= -180 and xmax <= 180:
        return geom
    pieces = [geom.intersection(WORLD)]
    for dx in (360.0, -360.0):
        shifted = shapely.affinity.translate(geom, xoff=dx)
        if shifted.intersects(WORLD):
            pieces.append(shifted.intersection(WORLD))
    return shapely.union_all(pieces)


# --------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------
def polygon_parts(geom) -> list[Polygon]:
    """All polygons of a (possibly make_valid-produced) geometry."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if hasattr(geom, "geoms"):
        out = []
        for g in geom.geoms:
            out.extend(polygon_parts(g))
        return out
    return []  # points / lines produced by make_valid carry no area


def ring_area_m2(coords) -> float:
    """Unsigned spherical area of a lon/lat ring (line integral of spherical excess)."""
    pts = list(coords)
    n = len(pts)
    if n < 3:
        return 0.0
    total = 0.0
    for i in range(n - 1):
        lon1, lat1 = pts[i]
        lon2, lat2 = pts[i + 1]
        total += math.radians(lon2 - lon1) * (
            2 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2))
        )
    return abs(total) * AUTHALIC_RADIUS_M ** 2 / 2.0


def polygon_area_m2(p: Polygon) -> float:
    return ring_area_m2(p.exterior.coords) - sum(ring_area_m2(r.coords) for r in p.interiors)


def _all_rings(obj: dict) -> list[list[int]]:
    return obj["arcs"] if obj["type"] == "Polygon" else [r for p in obj["arcs"] for r in p]


# --------------------------------------------------------------------------
def country_name(alpha2: str, ne_name: str) -> str:
    if alpha2 == "XK":
        return "Kosovo"
    c = pycountry.countries.get(alpha_2=alpha2)
    return getattr(c, "common_name", None) or c.name


# The quantized 1:10m grid is ~0.0036 degrees: 4 decimals keep every vertex within ~11 m.
BOUNDARY_DECIMALS = 4
# A country whose shape the quantization collapsed (Vatican) gets a square this wide around its point.
COLLAPSED_HALF_SIDE_DEG = 0.002


def write_boundaries(path: str, parts_by_code: dict, fallback: dict) -> None:
    """alpha2, name, vertex count and the MultiPolygon as WKT, gzipped, sorted by alpha2."""
    import gzip
    rows = []
    for code in sorted(set(parts_by_code) | set(fallback)):
        if code in parts_by_code:
            geom = MultiPolygon(parts_by_code[code])
        else:
            lat, lon = fallback[code]
            d = COLLAPSED_HALF_SIDE_DEG
            geom = MultiPolygon([box(lon - d, lat - d, lon + d, lat + d)])
        geom = shapely.set_precision(geom, 10 ** -BOUNDARY_DECIMALS)
        if not isinstance(geom, MultiPolygon):
            geom = MultiPolygon(polygon_parts(geom))
        if not geom.is_valid:
            geom = MultiPolygon(polygon_parts(shapely.make_valid(geom)))
        assert geom.is_valid and not geom.is_empty, code
        rows.append((code, country_name(code, ""), shapely.get_num_coordinates(geom),
                     shapely.to_wkt(geom, rounding_precision=BOUNDARY_DECIMALS, trim=True)))
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=9) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["alpha2", "name", "vertices", "wkt"])
        w.writerows(rows)
    print(f"wrote {len(rows)} boundaries ({sum(r[2] for r in rows)} vertices) to {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("topojson", help="path to world-atlas countries-10m.json")
    ap.add_argument("-o", "--output",
                    default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "country_points.csv"))
    ap.add_argument("-b", "--boundaries",
                    default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "country_boundaries.csv.gz"))
    args = ap.parse_args()

    with open(args.topojson, encoding="utf-8") as fh:
        topo = json.load(fh)
    arcs = decode_arcs(topo)
    features = topo["objects"]["countries"]["geometries"]

    parts_by_code: dict[str, list[Polygon]] = {}
    fallback: dict[str, tuple[float, float]] = {}
    repaired = 0
    for f in features:
        name = f.get("properties", {}).get("name", "?")
        geom = feature_geometry(f, arcs)
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            repaired += 1
            print(f"repaired invalid geometry: {name}")
        geom = cut_antimeridian(geom)
        parts = [p for p in polygon_parts(geom) if polygon_area_m2(p) > 0]

        num = f.get("id")
        if num is None:
            code, why = NO_ID_FEATURES.get(name, (None, "skipped: unknown feature without id"))
            print(f"no ISO numeric id: {name!r} -> {code or '-'} ({why})")
            if code == "CX+CC":
                for p in parts:
                    c = "CX" if p.representative_point().x > 100 else "CC"
                    parts_by_code.setdefault(c, []).append(p)
            elif code:
                parts_by_code.setdefault(code, []).extend(parts)
            continue

        c = pycountry.countries.get(numeric=num)
        if c is None:
            print(f"skipped: numeric id {num} ({name}) unknown to pycountry")
            continue
        if not parts:
            # Whole feature collapsed by the TopoJSON quantization (Vatican in
            # countries-10m): use the mean of its raw arc vertices, 1000 m precision.
            verts = {pt for r in _all_rings(f) for a in r for pt in arcs[a if a >= 0 else ~a]}
            lon = sum(v[0] for v in verts) / len(verts)
            lat = sum(v[1] for v in verts) / len(verts)
            fallback[c.alpha_2] = (lat, lon)
            print(f"collapsed geometry: {name!r} -> {c.alpha_2}, using mean vertex {lat:.5f},{lon:.5f}")
            continue
        if c.alpha_2 in parts_by_code:
            print(f"merged: {name!r} (id {num}) into {c.alpha_2}")
        moved: dict[str, int] = {}
        for part in parts:
            code = c.alpha_2
            rp = part.representative_point()
            for sub, (x0, y0, x1, y1) in SPLIT_OUT.get(c.alpha_2, []):
                if x0 <= rp.x <= x1 and y0 <= rp.y <= y1:
                    code = sub
                    moved[sub] = moved.get(sub, 0) + 1
                    break
            parts_by_code.setdefault(code, []).append(part)
        for sub, n in sorted(moved.items()):
            print(f"split out: {n} part(s) of {name!r} -> {sub}")

    print(f"features: {len(features)}, invalid geometries repaired with make_valid: {repaired}, "
          f"degenerate (quantization-collapsed) rings dropped: {DEGENERATE_RINGS}")

    rows = []
    for code in sorted(set(parts_by_code) | set(fallback)):
        if code not in parts_by_code:
            lat, lon = fallback[code]
            rows.append((code, country_name(code, ""), f"{lat:.5f}", f"{lon:.5f}", 1000))
            continue
        parts = parts_by_code[code]
        areas = [polygon_area_m2(p) for p in parts]
        largest = parts[max(range(len(parts)), key=areas.__getitem__)]
        pt = largest.representative_point()
        assert largest.contains(pt), code
        radius = math.sqrt(sum(areas) / math.pi)
        precision = max(1000, int(round(radius / 1000.0)) * 1000)
        rows.append((code, country_name(code, ""), f"{pt.y:.5f}", f"{pt.x:.5f}", precision))

    with open(args.output, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["alpha2", "name", "lat", "lon", "precision_m"])
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.output}")
    write_boundaries(args.boundaries, parts_by_code, fallback)

    have = {r[0] for r in rows}
    missing = sorted(c.alpha_2 for c in pycountry.countries if c.alpha_2 not in have)
    print(f"pycountry codes missing ({len(missing)}): "
          + ", ".join(f"{m} ({pycountry.countries.get(alpha_2=m).name})" for m in missing))

    print("\nsanity table:")
    by = {r[0]: r for r in rows}
    for code in ["PH", "AE", "FJ", "RU", "US", "KI", "NZ", "CL", "XK", "AQ"]:
        if code in by:
            r = by[code]
            print(f"  {r[0]}  {r[1][:28]:<28} {r[2]:>10} {r[3]:>11} {r[4]:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
