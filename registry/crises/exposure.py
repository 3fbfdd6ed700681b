"""The exposure run: who is in a crisis version's zones, set-based in PostGIS (SPEC §4.1, §5).

One transaction: the version's area is cut with ST_Subdivide into indexed
pieces (never simplified), the run's old rows are deleted (a rerun replaces,
never doubles), and one ``INSERT … SELECT`` writes the rows:

* **located nationals** (a point with its precision): the candidates are
  found once, in an indexed box around the whole area (plus the outer ring
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
precisions count as that much when looking for candidates). Known limit: the
index boxes do not wrap at ±180°, so a ring reaching across the antimeridian
from an area that does not itself cross it misses the people on the far side.
"""
from __future__ import annotations

import uuid

from sqlalchemy import text

from registry.extensions import db

PRECISE_M = 1000.0
MAX_SEARCH_PRECISION_M = 30_000.0
SUBDIVIDE_VERTICES = 256
WORK_MEM = "128MB"

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
# (the shared table's index would also return every other crisis's pieces in the box).
_RUN_PARTS_SQL = (
    text("CREATE TEMP TABLE run_parts ON COMMIT DROP AS "
         "SELECT geom FROM crisis_area_parts WHERE crisis_id = :crisis_id AND version = :version"),
    text("CREATE INDEX ON run_parts USING gist (geom)"),
    text("ANALYZE run_parts"),
)

_ROWS_SQL = text(f"""
WITH parts AS MATERIALIZED (
    SELECT geom, geom::geography AS geog FROM run_parts
), candidates AS MATERIALIZED (
    -- Located nationals in a box around the whole area (one indexed search, not one per piece: a
    -- detailed area has thousands of pieces over the same people), each tested against the pieces'
    -- index. No join between large sets: the plan cannot go quadratic on a bad row estimate.
    SELECT n.id, n.location, n.location_precision_m,
           (n.location_source = 'gps' AND n.location_precision_m <= {PRECISE_M}) AS precise,
           EXISTS (SELECT 1 FROM run_parts p WHERE p.geom && n.location AND ST_Intersects(p.geom, n.location))
               AS inside
    FROM nationals n
    WHERE n.location && (SELECT ST_Expand(ST_Extent(geom)::geometry, :reach_deg + :precision_deg) FROM run_parts)
      AND n.erased_at IS NULL AND n.location_source <> 'country_centroid'
), near AS MATERIALIZED (
    -- The distance to the nearest piece, looked up per candidate in the pieces' index. Precise fixes
    -- matter up to the outer ring; imprecise ones up to the ring plus their precision.
    SELECT c.id, min(ST_Distance(c.location::geography, p.geom::geography)) AS distance_m
    FROM candidates c
    JOIN run_parts p ON p.geom && ST_Expand(c.location, CASE WHEN c.precise THEN :reach_deg ELSE :reach_deg + :precision_deg END)
     AND ST_DWithin(c.location::geography, p.geom::geography,
                    CASE WHEN c.precise THEN :reach_m ELSE :reach_m + {MAX_SEARCH_PRECISION_M} END)
    WHERE NOT c.inside AND (NOT c.precise OR :reach_m > 0)
    GROUP BY c.id
), countries_near AS MATERIALIZED (
    SELECT cp.alpha2, min(ST_Distance(cp.geom::geography, p.geog)) AS distance_m
    FROM parts p JOIN country_parts cp
      ON cp.geom && ST_Expand(p.geom, :reach_deg) AND ST_DWithin(cp.geom::geography, p.geog, :reach_m)
    GROUP BY cp.alpha2
), measured AS (
    SELECT c.id, 0.0::float8 AS distance_m FROM candidates c WHERE c.inside
    UNION ALL
    SELECT nr.id, CASE WHEN n.location_source = 'gps' AND n.location_precision_m <= {PRECISE_M}
                       THEN nr.distance_m
                       ELSE greatest(0.0, nr.distance_m - coalesce(n.location_precision_m, 0)) END
    FROM near nr JOIN nationals n ON n.id = nr.id
    UNION ALL
    SELECT n.id, c.distance_m
    FROM countries_near c JOIN nationals n ON n.jurisdiction_country = c.alpha2
    WHERE n.erased_at IS NULL AND n.location_source = 'country_centroid'
), zoned AS (
    SELECT m.id, m.distance_m / 1000.0 AS distance_km,
           (SELECT min(z) FROM unnest(CAST(:zones AS float8[])) z WHERE z >= m.distance_m / 1000.0) AS ring_km
    FROM measured m
)
INSERT INTO exposures (run_id, national_id, zone, ring_km, distance_km, certainty, location, location_source,
                       location_precision_m, location_age_days, household_id, priority)
SELECT :run_id, n.id,
       CASE WHEN z.distance_km = 0 THEN 'inside' ELSE 'ring' END,
       CASE WHEN z.distance_km = 0 THEN NULL ELSE z.ring_km END,
       round(z.distance_km::numeric, 3)::float8,
       CASE WHEN n.location_source = 'country_centroid' THEN 'country_only'
            WHEN n.location_source = 'gps' AND n.location_precision_m <= {PRECISE_M} THEN 'high'
            ELSE 'possible' END,
       n.location, n.location_source, n.location_precision_m,
       floor(extract(epoch FROM now() - n.location_reported_at) / 86400)::int,
       n.household_id, {PRIORITY_SQL}
FROM zoned z JOIN nationals n ON n.id = z.id
WHERE z.distance_km = 0 OR z.ring_km IS NOT NULL
""")

_COUNTS_SQL = text("""
SELECT e.zone, e.ring_km, e.certainty, d.city, count(*)
FROM exposures e LEFT JOIN deployments d ON d.national_id = e.national_id AND d.is_current
WHERE e.run_id = :run_id GROUP BY e.zone, e.ring_km, e.certainty, d.city
""")
TOP_CITIES = 50


def compute(run_id: uuid.UUID, crisis_id: uuid.UUID, version: int, zones_km: list[float]) -> dict:
    """Write the run's rows (replacing any earlier ones) and return its counts. Flushes, never commits."""
    params = {"crisis_id": crisis_id, "version": version}
    db.session.execute(text("DELETE FROM crisis_area_parts WHERE crisis_id = :crisis_id AND version = :version"),
                       params)
    db.session.execute(_PARTS_SQL, params)
    db.session.execute(text("DELETE FROM exposures WHERE run_id = :run_id"), {"run_id": run_id})
    reach_m = (max(zones_km) if zones_km else 0.0) * 1000.0
    # Room for the hash tables of a run over a million nationals (this transaction only).
    db.session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    for statement in _RUN_PARTS_SQL:
        db.session.execute(statement, params)
    db.session.execute(_ROWS_SQL, {**params, "run_id": run_id, "reach_m": reach_m, "reach_deg": degrees(reach_m),
                                   "precision_deg": degrees(MAX_SEARCH_PRECISION_M), "zones": zones_km})
    return counts_of(run_id)


def degrees(metres: float) -> float:
    """Degrees that surely cover ``metres`` at any latitude where people live (|lat| <= 75°: 1° of
    longitude >= 28.8 km), for index boxes; the exact test is geodesic."""
    return metres / 25_800.0 + 0.01


def counts_of(run_id: uuid.UUID, rows=None) -> dict:
    """``{"inside", "ring", "total", "by_ring": {km: n}, "by_certainty": {…}}`` of a run's rows."""
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
