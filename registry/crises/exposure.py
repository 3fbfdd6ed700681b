"""The exposure run: who is in a crisis version's zones, set-based in PostGIS (SPEC §4.1, §5).

One transaction: the version's area is cut with ST_Subdivide into indexed
pieces (never simplified), the run's old rows are deleted (a rerun replaces,
never doubles), and one ``INSERT … SELECT`` writes the rows:

* **located nationals** (a point with its precision): the candidates are
  found once, in a few indexed boxes around the area (plus the outer ring
  and the largest precision); each is inside when a piece contains it (a
  planar test against the pieces' GiST index), otherwise its geodesic
  distance to the nearest piece is computed, looking the pieces up per
  candidate in their index. Every step is linear in the candidates, whatever
  the planner's estimates (an anti-join between the large sets went
  quadratic on a bad estimate at a million nationals). The
  distance to the *possible position* is the distance to the point for a
  precise fix (GPS or a given point, precision <= 1 km), and to its precision
  circle otherwise (minus the precision, floored at 0). Certainty ``high`` for
  precise fixes, ``possible`` for the others.
* **nationals known only by country** (``country_centroid``): the distance
  from the area to their country's boundary; certainty ``country_only``.

``zone`` is ``inside`` at distance 0, else ``ring`` with ``ring_km`` the first
ring edge at or beyond the distance; nobody beyond the last ring is kept.
Precision circles are searched up to ``MAX_SEARCH_PRECISION_M`` (larger
precisions count as that much when looking for candidates).

The antimeridian: planar index boxes do not wrap at ±180°, so the run makes
them wrap. The candidate boxes are the area's parts' extents merged as arcs of
the circle of longitudes (``candidate_boxes``), split at ±180° (an area cut
into parts on both sides gets two narrow boxes, not one the globe's width).
The run's pieces within reach of ±180° get copies shifted by ∓360° in
``run_parts`` (``shifted``), so the planar boxes around candidates, and around
the pieces for the countries near, meet the pieces across the line; distances
always use ``geog``, the unshifted piece (PostGIS would coerce a shifted
piece's longitudes when casting it to geography, with a NOTICE per cast), and
only unshifted pieces decide ``inside``.
"""
from __future__ import annotations

import math
import uuid
from functools import cache

from sqlalchemy import text

from registry.extensions import db, sql_in
from registry.nationals.models import PRECISE_SOURCES

PRECISE_M = 1000.0
# A device's fix (GPS given by a client, a person's own phone): precise to its stated precision.
PRECISE = sql_in(PRECISE_SOURCES)
MAX_SEARCH_PRECISION_M = 30_000.0
SUBDIVIDE_VERTICES = 256
WORK_MEM = "128MB"
# Arcs of longitude the candidate search may use (each at most two index boxes once split at ±180°).
MAX_CANDIDATE_ARCS = 4

# The roster priority class of a national (``n``): medical or disability 1, pregnant 2, minor or elderly
# (recorded, or by date of birth) 3, the rest 4. Stored with each exposure row, so a roster reads one table.
PRIORITY_SQL = """(CASE WHEN n.vulnerabilities && ARRAY['chronic_illness', 'disability']::varchar[] THEN 1
     WHEN n.vulnerabilities @> ARRAY['pregnant']::varchar[] THEN 2
     WHEN n.vulnerabilities && ARRAY['minor', 'elderly']::varchar[]
          OR n.date_of_birth > current_date - interval '18 years'
          OR n.date_of_birth <= current_date - interval '60 years' THEN 3
     ELSE 4 END)::smallint"""

_PARTS_SQL = text(f"""
INSERT INTO crisis_area_parts (crisis_id, version, geom)
SELECT crisis_id, version, ST_Subdivide(geom, {SUBDIVIDE_VERTICES})
FROM crisis_versions WHERE crisis_id = :crisis_id AND version = :version
""")

# The run's pieces in a scratch table of their own: its GiST index serves the per-candidate lookups
# (the shared table's index would also return every other crisis's pieces in the box). Pieces within
# :margin_deg of ±180° are copied shifted by ∓360° (``geom`` for the index boxes only; ``geog`` unshifted).
_RUN_PARTS_SQL = (
    text("CREATE TEMP TABLE run_parts ON COMMIT DROP AS "
         "SELECT geom, geom::geography AS geog, false AS shifted "
         "FROM crisis_area_parts WHERE crisis_id = :crisis_id AND version = :version"),
    text("INSERT INTO run_parts (geom, geog, shifted) "
         "SELECT ST_Translate(geom, -360, 0), geog, true FROM run_parts WHERE ST_XMax(geom) >= 180 - :margin_deg "
         "UNION ALL "
         "SELECT ST_Translate(geom, 360, 0), geog, true FROM run_parts WHERE ST_XMin(geom) <= -180 + :margin_deg"),
    text("CREATE INDEX ON run_parts USING gist (geom)"),
    text("ANALYZE run_parts"),
)

# The extents of the run's pieces (``run_parts``, unshifted), for the candidate boxes of an area of a few pieces.
_PIECE_EXTENTS_SQL = text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM run_parts "
                          "WHERE NOT shifted")
MAX_PIECE_BOXES = 64

# The extents of the area's polygons, for the candidate boxes.
_EXTENTS_SQL = text("""
SELECT ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)
FROM (SELECT Box2D((ST_Dump(geom)).geom) AS box
      FROM crisis_versions WHERE crisis_id = :crisis_id AND version = :version) polygons
""")

# Degrees of latitude and of longitude (at the equator) per metre, with 1% to spare: index boxes from
# distances, made wider in longitude by 1/cos(latitude) of their most poleward edge (the exact test is geodesic).
LAT_M_PER_DEG = 110_574.0 / 1.01
LON_M_PER_DEG = 111_320.0 / 1.01
MAX_BOX_LATITUDE = 89.9

# What both statements end with: their measured rows (id, distance_m, the position, household, priority,
# certainty) zoned by ring and written in key order.
_ZONED_INSERT = """), zoned AS (
    SELECT m.*, round((m.distance_m / 1000.0)::numeric, 3)::float8 AS distance_km,
           CASE WHEN m.distance_m > 0 THEN (SELECT min(z) FROM unnest(CAST(:zones AS float8[])) z
                                            WHERE z >= m.distance_m / 1000.0) END AS ring_km
    FROM measured m (id, distance_m, location, location_source, location_precision_m, location_reported_at,
                     household_id, priority, certainty)
)
INSERT INTO exposures (run_id, national_id, zone, ring_km, distance_km, certainty, location, location_source,
                       location_precision_m, location_age_days, household_id, priority)
SELECT :run_id, z.id, CASE WHEN z.distance_m = 0 THEN 'inside' ELSE 'ring' END, z.ring_km, z.distance_km,
       z.certainty, z.location, z.location_source, z.location_precision_m,
       floor(extract(epoch FROM now() - z.location_reported_at) / 86400)::int, z.household_id, z.priority
FROM zoned z
WHERE z.distance_m = 0 OR z.ring_km IS NOT NULL
-- In key order: the primary key's and the national index's pages fill one after the other instead of
-- splitting all over (a third less time writing 160k rows).
ORDER BY z.id
"""

_ROWS_SQL = f"""
WITH candidates AS MATERIALIZED (
    -- Located nationals in a few boxes around the area (indexed searches, not one per piece: a detailed
    -- area has thousands of pieces over the same people), each tested against the pieces' index. No
    -- join between large sets: the plan cannot go quadratic on a bad row estimate. What the rows need is
    -- carried along, so no national is looked up twice.
    SELECT n.id, n.location, n.location_source, n.location_precision_m, n.location_reported_at, n.household_id,
           {{priority}} AS priority, c.precise,
           -- How far from the area this national may be and still count: the outer ring, plus the precision
           -- (up to MAX_SEARCH_PRECISION_M) of an imprecise position.
           CASE WHEN c.precise THEN :reach_m
                ELSE :reach_m + least(coalesce(n.location_precision_m, 0), {MAX_SEARCH_PRECISION_M}) END AS reach_m,
           EXISTS (SELECT 1 FROM run_parts p WHERE p.geom && n.location AND NOT p.shifted
                                                AND ST_Intersects(p.geom, n.location)) AS inside
    FROM nationals n
    CROSS JOIN LATERAL (SELECT n.location_source IN {PRECISE} AND n.location_precision_m <= {PRECISE_M} AS precise) c
    WHERE ({{boxes}})
      AND n.erased_at IS NULL AND n.location_source <> 'country_centroid'
), near AS MATERIALIZED (
    -- The distance to the nearest piece (or its copy across ±180°) within the candidate's reach, looked up
    -- per candidate in the pieces' index through a box of that reach at its latitude.
    SELECT c.id, min(ST_Distance(c.location::geography, p.geog)) AS distance_m
    FROM candidates c
    JOIN run_parts p
      ON p.geom && ST_Expand(c.location,
                             c.reach_m / {LON_M_PER_DEG}
                                 / cos(radians(least({MAX_BOX_LATITUDE}, abs(ST_Y(c.location)) + c.reach_m / {LAT_M_PER_DEG})))
                                 + 0.0001,
                             c.reach_m / {LAT_M_PER_DEG} + 0.0001)
     AND ST_DWithin(c.location::geography, p.geog, c.reach_m)
    WHERE NOT c.inside AND c.reach_m > 0
    GROUP BY c.id
), countries_near AS MATERIALIZED (
    SELECT cp.alpha2, min(ST_Distance(cp.geom::geography, p.geog)) AS distance_m
    FROM run_parts p JOIN country_parts cp
      ON cp.geom && ST_Expand(p.geom, :reach_deg) AND ST_DWithin(cp.geom::geography, p.geog, :reach_m)
    GROUP BY cp.alpha2
), measured AS (
    SELECT c.id, 0.0::float8 AS distance_m, c.location, c.location_source, c.location_precision_m,
           c.location_reported_at, c.household_id, c.priority, CASE WHEN c.precise THEN 'high' ELSE 'possible' END
    FROM candidates c WHERE c.inside
    UNION ALL
    SELECT c.id, CASE WHEN c.precise THEN nr.distance_m
                      ELSE greatest(0.0, nr.distance_m - coalesce(c.location_precision_m, 0)) END,
           c.location, c.location_source, c.location_precision_m, c.location_reported_at, c.household_id,
           c.priority, CASE WHEN c.precise THEN 'high' ELSE 'possible' END
    FROM near nr JOIN candidates c ON c.id = nr.id
    UNION ALL
    -- Known only by their country (ix_nationals_country_only): the distance from the area to the country.
    SELECT n.id, cn.distance_m, n.location, n.location_source, n.location_precision_m, n.location_reported_at,
           n.household_id, {{priority}}, 'country_only'
    FROM countries_near cn JOIN nationals n ON n.jurisdiction_country = cn.alpha2
    WHERE n.erased_at IS NULL AND n.location_source = 'country_centroid'
{{zoned_insert}}"""


# A circle (declared by its centre and radius: ``CrisisVersion.source``) is measured from its centre: the
# distance to the area is the geodesic distance to the centre less the radius, one point-to-point distance a
# national on the geography index (``ix_nationals_location_geog``), where a polygon of the circle would cost
# a point-to-polygon distance against its 256 edges for everyone outside it (a 10 km circle with rings to
# 100 km: 94k nationals, 38.8 s against 8.3 s at 1M). Exact for the circle declared (its polygon, kept for
# maps and rosters, is inscribed: within metres of it). Same rows and semantics as ``_ROWS_SQL``.
_CIRCLE_SQL = text(f"""
WITH centre AS MATERIALIZED (
    SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g
), located AS MATERIALIZED (
    SELECT n.id, n.location, n.location_source, n.location_precision_m, n.location_reported_at, n.household_id,
           {{priority}} AS priority, c.precise,
           ST_Distance(n.location::geography, (SELECT g FROM centre)) - :radius_m AS edge_m
    FROM nationals n
    CROSS JOIN LATERAL (SELECT n.location_source IN {PRECISE} AND n.location_precision_m <= {PRECISE_M} AS precise) c
    WHERE ST_DWithin(n.location::geography, (SELECT g FROM centre), :radius_m + :reach_m + {MAX_SEARCH_PRECISION_M})
      AND n.erased_at IS NULL AND n.location_source <> 'country_centroid'
), measured AS (
    SELECT l.id, CASE WHEN l.precise THEN greatest(0.0, l.edge_m)
                      ELSE greatest(0.0, l.edge_m - coalesce(l.location_precision_m, 0)) END AS distance_m,
           l.location, l.location_source, l.location_precision_m, l.location_reported_at, l.household_id,
           l.priority, CASE WHEN l.precise THEN 'high' ELSE 'possible' END AS certainty
    FROM located l
    WHERE l.edge_m <= :reach_m
       OR (NOT l.precise AND l.edge_m - least(coalesce(l.location_precision_m, 0), {MAX_SEARCH_PRECISION_M}) <= :reach_m)
    UNION ALL
    SELECT n.id, cn.distance_m, n.location, n.location_source, n.location_precision_m, n.location_reported_at,
           n.household_id, {{priority}}, 'country_only'
    FROM (SELECT cp.alpha2, greatest(0.0, min(ST_Distance(cp.geom::geography, (SELECT g FROM centre))) - :radius_m)
                 AS distance_m
          FROM country_parts cp
          WHERE ST_DWithin(cp.geom::geography, (SELECT g FROM centre), :radius_m + :reach_m)
          GROUP BY cp.alpha2) cn
    JOIN nationals n ON n.jurisdiction_country = cn.alpha2
    WHERE n.erased_at IS NULL AND n.location_source = 'country_centroid'
{{zoned_insert}}""".replace("{zoned_insert}", _ZONED_INSERT).replace("{priority}", PRIORITY_SQL))


@cache
def _rows_sql(box_count: int):
    """The run's statement with ``box_count`` candidate boxes ORed (each an indexed search). Each box is a
    scalar subquery, as the single box always was: given the boxes' values, the planner costs a dense area
    high enough to JIT-compile the statement (a 50 km circle over 300k nationals: 2.7 s became 6.7 s)."""
    boxes = " OR ".join(f"n.location && (SELECT ST_MakeEnvelope(:box{i}_x0, :box{i}_y0, :box{i}_x1, :box{i}_y1, "
                        "4326))" for i in range(box_count))
    return text(_ROWS_SQL.replace("{zoned_insert}", _ZONED_INSERT).replace("{boxes}", boxes)
                .replace("{priority}", PRIORITY_SQL))

# The run's counts by the buckets a list filters on, per jurisdiction (``ExposureCount``, migration 0031); the
# city from ``uq_deployments_current`` alone (it INCLUDEs the city, migration 0025): an index-only probe per
# row, in the run's key order.
_KEEP_COUNTS_SQL = text("""
INSERT INTO exposure_counts (run_id, jurisdiction_country, zone, ring_km, certainty, priority, city, n)
SELECT :run_id, n.jurisdiction_country, e.zone, e.ring_km, e.certainty, e.priority, d.city, count(*)
FROM exposures e JOIN nationals n ON n.id = e.national_id
LEFT JOIN deployments d ON d.national_id = e.national_id AND d.is_current
WHERE e.run_id = :run_id
GROUP BY n.jurisdiction_country, e.zone, e.ring_km, e.certainty, e.priority, d.city
""")
_COUNTS_SQL = text("""
SELECT zone, ring_km, certainty, city, sum(n)::bigint FROM exposure_counts WHERE run_id = :run_id
GROUP BY zone, ring_km, certainty, city
""")
TOP_CITIES = 50


def compute(run_id: uuid.UUID, crisis_id: uuid.UUID, version: int, zones_km: list[float],
            circle: dict | None = None) -> dict:
    """Write the run's rows (replacing any earlier ones) and return its counts. Flushes, never commits.
    ``circle`` (``{"center": {"lat", "lon"}, "radius_km"}``, a version's source) measures from its centre."""
    params = {"crisis_id": crisis_id, "version": version}
    db.session.execute(text("DELETE FROM crisis_area_parts WHERE crisis_id = :crisis_id AND version = :version"),
                       params)
    db.session.execute(_PARTS_SQL, params)
    db.session.execute(text("DELETE FROM exposures WHERE run_id = :run_id"), {"run_id": run_id})
    db.session.execute(text("DELETE FROM exposure_counts WHERE run_id = :run_id"), {"run_id": run_id})
    reach_m = (max(zones_km) if zones_km else 0.0) * 1000.0
    if circle is not None:
        db.session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        db.session.execute(text("SET LOCAL jit = off"))
        db.session.execute(_CIRCLE_SQL, {
            "run_id": run_id, "lat": circle["center"]["lat"], "lon": circle["center"]["lon"],
            "radius_m": circle["radius_km"] * 1000.0, "reach_m": reach_m, "zones": zones_km})
        return _kept_counts(run_id)
    margin_deg = degrees(reach_m) + degrees(MAX_SEARCH_PRECISION_M)
    # Room for the hash tables of a run over a million nationals (this transaction only); no JIT: compiling
    # the statement's 150 expressions took longer than it saved (BENCH.md: 20-40% on these queries).
    db.session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    db.session.execute(text("SET LOCAL jit = off"))
    for statement in _RUN_PARTS_SQL:
        db.session.execute(statement, {**params, "margin_deg": margin_deg})
    margin_m = reach_m + MAX_SEARCH_PRECISION_M
    pieces = db.session.execute(_PIECE_EXTENTS_SQL).all()
    if len(pieces) <= MAX_PIECE_BOXES:
        # A few pieces: a box around each (the index's BitmapOr merges them), far tighter than the area's
        # extent (a whole country's box holds its neighbours' cities).
        boxes = [box for piece in pieces for box in candidate_boxes([grown(piece, margin_m)], 0.0)]
    else:
        boxes = candidate_boxes([grown(extent, margin_m) for extent in db.session.execute(_EXTENTS_SQL, params)],
                                0.0)
    box_params = {f"box{i}_{k}": v for i, box in enumerate(boxes) for k, v in zip(("x0", "y0", "x1", "y1"), box)}
    db.session.execute(_rows_sql(len(boxes)), {
        **params, **box_params, "run_id": run_id, "reach_m": reach_m, "reach_deg": degrees(reach_m),
        "zones": zones_km})
    return _kept_counts(run_id)


def _kept_counts(run_id: uuid.UUID) -> dict:
    """Write the run's counts per bucket (``_KEEP_COUNTS_SQL``) and return them summed (``counts_of``)."""
    db.session.execute(_KEEP_COUNTS_SQL, {"run_id": run_id})
    return counts_of(run_id)


def candidate_boxes(extents, margin_deg: float) -> list[tuple[float, float, float, float]]:
    """Index boxes (xmin, ymin, xmax, ymax), all within [-180, 180], covering each extent grown by
    ``margin_deg`` with longitudes wrapping at ±180°: the grown extents are merged as arcs of the circle of
    longitudes (overlapping ones, then the closest until ``MAX_CANDIDATE_ARCS`` remain) and an arc
    passing ±180° is split in two. One ordinary area gives its extent grown by the margin."""
    arcs = sorted(_arc(xmin - margin_deg, xmax + margin_deg, ymin - margin_deg, ymax + margin_deg)
                  for xmin, ymin, xmax, ymax in extents)
    merged: list[list[float]] = []
    for arc in arcs:
        if merged and arc[0] <= merged[-1][1]:
            merged[-1] = _joined(merged[-1], arc)
        else:
            merged.append(arc)
    while len(merged) > 1 and merged[-1][1] >= merged[0][0] + 360:  # the last arc wraps onto the first
        merged[-1] = _joined(merged[-1], merged.pop(0))
    while len(merged) > MAX_CANDIDATE_ARCS:
        gaps = [(merged[(i + 1) % len(merged)][0] - merged[i][1]) % 360 for i in range(len(merged))]
        i = gaps.index(min(gaps))
        if i == len(merged) - 1:
            merged[-1] = _joined(merged[-1], merged.pop(0))
        else:
            merged[i:i + 2] = [_joined(merged[i], merged[i + 1])]
    boxes = []
    for west, east, south, north in merged:
        south, north = max(south, -90.0), min(north, 90.0)
        if east <= 180:
            boxes.append((west, south, east, north))
        else:
            boxes += [(west, south, 180.0, north), (-180.0, south, east - 360, north)]
    return boxes


def _arc(west: float, east: float, south: float, north: float) -> list[float]:
    """[west, east, south, north] with the west edge in [-180, 180) and east of it by at most 360°."""
    if east - west >= 360:
        return [-180.0, 180.0, south, north]
    if west < -180:
        west, east = west + 360, east + 360
    elif west >= 180:
        west, east = west - 360, east - 360
    return [west, east, south, north]


def _joined(a: list[float], b: list[float]) -> list[float]:
    """The arc from ``a``'s west edge east far enough to cover ``b`` too, with both latitude ranges."""
    b_west = a[0] + (b[0] - a[0]) % 360
    return _arc(a[0], max(a[1], b_west + b[1] - b[0]), min(a[2], b[2]), max(a[3], b[3]))


def grown(extent, metres: float) -> tuple[float, float, float, float]:
    """An extent (xmin, ymin, xmax, ymax) grown by ``metres`` on every side, in degrees at its latitude: the
    longitudes by the degree's length at the grown extent's most poleward edge (the shortest there), so a
    point within ``metres`` of the extent is inside (longitudes may pass ±180°: ``candidate_boxes`` wraps)."""
    xmin, ymin, xmax, ymax = extent
    dy = metres / LAT_M_PER_DEG + 0.0001
    poleward = min(MAX_BOX_LATITUDE, max(abs(ymin - dy), abs(ymax + dy)))
    dx = min(360.0, metres / LON_M_PER_DEG / math.cos(math.radians(poleward)) + 0.0001)
    return xmin - dx, ymin - dy, xmax + dx, ymax + dy


def degrees(metres: float) -> float:
    """Degrees that surely cover ``metres`` at any latitude where people live (|lat| <= 75°: 1° of
    longitude >= 28.8 km), for index boxes; the exact test is geodesic."""
    return metres / 25_800.0 + 0.01


def counts_of(run_id: uuid.UUID, rows=None) -> dict:
    """``{"inside", "ring", "total", "by_ring": {km: n}, "by_certainty": {…}}`` of a run's rows (its kept
    counts)."""
    rows = rows if rows is not None else db.session.execute(_COUNTS_SQL, {"run_id": run_id}).all()
    return summarize(rows)


def summarize(rows) -> dict:
    """Counts from (zone, ring_km, certainty, city, n) rows; ``by_city`` holds the largest cities."""
    counts = {"inside": 0, "ring": 0, "total": 0, "by_ring": {}, "by_certainty": {}, "by_city": {}}
    cities: dict[str, int] = {}
    for zone, ring_km, certainty, city, number in rows:
        counts[zone] += number
        counts["total"] += number
        if ring_km is not None:
            key = f"{ring_km:g}"
            counts["by_ring"][key] = counts["by_ring"].get(key, 0) + number
        counts["by_certainty"][certainty] = counts["by_certainty"].get(certainty, 0) + number
        cities[city or "(unknown)"] = cities.get(city or "(unknown)", 0) + number
    counts["by_city"] = dict(sorted(cities.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CITIES])
    return counts
