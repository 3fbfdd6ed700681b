"""Clusters of nationals per map view, counted in PostGIS from a grid kept up to date on write (SPEC §9).

The design
----------
A view is a bounding box and a zoom. Its clusters are the cells of a square grid in degrees whose size
halves with each zoom: ``cell(z) = 90 / 2^z`` degrees, 64 px of a 256 px Web Mercator tile (a cluster
covers about a quarter of a tile's width). A cell's cluster carries its count and the mean position of its
people (so a city's cluster sits on the city, not on a grid corner).

* **Zooms 0 to 16: pre-aggregated** in ``map_cells`` (migration 0015): one row per (zoom, cell,
  jurisdiction country, status, certainty, vulnerability bit mask) with the count and the sums of
  longitudes and latitudes. A view reads the rows of its zoom whose cell is in the box (the primary key
  leads with zoom, cx, cy), keeps those its filters and the caller's reach allow, and adds them up per
  cell. The work is proportional to the populated cells in view times the filter combinations present in
  them, never to the people: a world view over a million nationals reads a few thousand rows.
* **Kept exact on write, without writers waiting for each other**: statement-level ``AFTER`` triggers on
  ``nationals`` (``REFERENCING NEW/OLD TABLE``) append what a statement took away and put, per cell, for
  each of the 17 zooms, to ``map_cell_changes`` (one set-based INSERT per statement: a 100k-row import is
  one grouped insert, not 100k). An update that moves none of what places a person on the map (location,
  country, status, vulnerabilities, location source and precision, erasure) changes nothing. A view reads
  ``map_cells`` and the changes not yet folded together (``_CELLS``), so the counts are right for every
  filter offered (each filter is a column of the key) the moment the write commits, and a rolled-back
  write leaves nothing. The worker folds the changes into ``map_cells`` every few seconds (``fold``, beat
  task ``maps.fold_cell_changes``; one folder at a time), which keeps what views read small. The first
  design upserted ``map_cells`` in the trigger: every writer of a country then queued on its coarse cells
  (zooms 0-4) until the other committed — a desk's registration waited for a whole import, and two
  imports could deadlock; appending has no shared row to lock. The cost, measured by ``bench/map.py
  --write-cost`` at 1M on a shared 2-core machine: a 50k-row COPY 1.37x slower than without the triggers
  (16.8k against 23.0k rows/s), a one-row INSERT 0.36 ms against 0.23 ms (the upserting design: 2.4x and
  0.95 ms). Reads (same bench, 1,920 x 1,080 px views): p95 7-20 ms at zooms 3, 6, 10, 14 through the
  Flask app, at most 23 KB.
* **Jurisdiction is exact**: the grid is per ``jurisdiction_country`` (the column the one rule of
  ``registry.auth.reach`` reads), and views add the same ``Reach.sql`` condition as every other raw
  statement; ``map_cells`` carries the same row-level security policy as ``nationals`` (the database's
  second check). An embassy officer's clusters never count another country's people, even in their box.
* **Zooms 17 and 18: straight from ``nationals``** (the GiST index on ``location``): a view there spans
  a kilometre or two, so it holds few enough people to group on the fly (at zoom 15, central Dubai's
  60k people in view took 0.57 s this way: hence the grid up to 16) with the same cells, filters and
  reach (``ST_SnapToGrid``'s arithmetic as ``floor(x / cell)``).
* **Points**: from zoom 12 a cell holding one person (after filters) is answered as a point with the
  national's id (no names: the console opens the record); its position and id are looked up in
  ``nationals`` by the cell's box. A count that changed between the two reads keeps the cluster.
* **Reading nationals by place under row-level security**: PostGIS's operators are not LEAKPROOF, so for
  an embassy officer (a scoped transaction) the planner may not use the GiST index before the policy; a
  few streets' lookup became a scan of the whole jurisdiction (0.8 s at 228k). The two reads above go
  through ``map_points`` and ``map_cells_live`` (SQL functions, ``SECURITY DEFINER``, migration 0015, as
  ``registered_passport`` does): they read past the policy and apply the same rule themselves, twice:
  the caller's ``Reach`` given by this module and the transaction's ``sagip.scope`` the policy reads.

A view is the cells that meet its box: ``total`` is the sum of its clusters and points (people of a cell
that straddles the box's edge count whole). A box across the antimeridian is given ``west > east`` and
read as two ranges of cells. A box of more than ``MAX_CELLS`` cells at its zoom is refused (422): no
answer carries more than a screen needs (64 x 64 cells is a 4096 px square).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text

from registry.auth import scope

from registry.auth.reach import Reach
from registry.errors import Unprocessable
from registry.extensions import db
from registry.nationals.models import VULNERABILITIES

MAX_GRID_ZOOM = 16   # zooms 0..16 are pre-aggregated in map_cells (migration 0015 holds the same number)
MAX_ZOOM = 18
POINTS_FROM_ZOOM = 12
MAX_CELLS = 4096
CERTAINTIES = ("high", "possible", "country_only")
DIGITS = 5  # about a metre



def cell_size(zoom: int) -> float:
    """A cluster cell's side in degrees at ``zoom`` (an exact binary fraction: SQL computes the same)."""
    return 90.0 / 2 ** zoom


@dataclass(frozen=True)
class View:
    west: float
    south: float
    east: float
    north: float
    zoom: int

    @property
    def size(self) -> float:
        return cell_size(self.zoom)

    def column_ranges(self) -> list[tuple[int, int]]:
        """Inclusive ranges of cell columns: two across the antimeridian (``west > east``)."""
        size = self.size
        if self.west <= self.east:
            return [(math.floor(self.west / size), math.floor(self.east / size))]
        return [(math.floor(self.west / size), math.floor(180.0 / size)),
                (math.floor(-180.0 / size), math.floor(self.east / size))]

    def row_range(self) -> tuple[int, int]:
        return math.floor(self.south / self.size), math.floor(self.north / self.size)

    def cell_count(self) -> int:
        rows = self.row_range()[1] - self.row_range()[0] + 1
        return rows * sum(high - low + 1 for low, high in self.column_ranges())


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """``"west,south,east,north"`` in degrees. :raises ValueError: with the reason."""
    parts = value.split(",")
    if len(parts) != 4:
        raise ValueError("Give four numbers: west,south,east,north (degrees).")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise ValueError("Give four numbers: west,south,east,north (degrees).") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise ValueError("The numbers must be finite.")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError("Longitudes must be within -180..180 (a box across the antimeridian has west > east).")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise ValueError("Latitudes must be within -90..90.")
    if south >= north:
        raise ValueError("South must be below north.")
    if west == east:
        raise ValueError("West and east must differ (west > east crosses the antimeridian).")
    return west, south, east, north


def view_of(bbox: str, zoom: int) -> View:
    """:raises Unprocessable: a bad box (``bbox``) or one too large for the zoom."""
    try:
        view = View(*parse_bbox(bbox), zoom)
    except ValueError as error:
        raise Unprocessable("The bounding box is invalid.", errors={"bbox": [str(error)]}) from None
    if view.cell_count() > MAX_CELLS:
        raise Unprocessable(f"The box is too large for zoom {zoom}: it spans {view.cell_count()} cells of "
                            f"{view.size:g}°, at most {MAX_CELLS}. Zoom in or send a smaller box.",
                            errors={"bbox": [f"At most {MAX_CELLS} cells of {view.size:g}° at zoom {zoom}."]})
    return view


def _columns_sql(ranges: list[tuple[int, int]], column: str, params: dict) -> str:
    terms = []
    for i, (low, high) in enumerate(ranges):
        params[f"x{i}_low"], params[f"x{i}_high"] = low, high
        terms.append(f"{column} BETWEEN :x{i}_low AND :x{i}_high")
    return "(" + " OR ".join(terms) + ")"


def _mask_bit(vulnerability: str) -> int:
    return 1 << VULNERABILITIES.index(vulnerability)


def clusters(view: View, reach: Reach, *, status: str | None = None, vulnerability: str | None = None,
             certainty: str | None = None) -> dict:
    """``{"zoom", "cell_deg", "total", "clusters": [{lat, lon, count}], "points": [{id, lat, lon}]}``."""
    if view.zoom <= MAX_GRID_ZOOM:
        cells = _from_grid(view, reach, status, vulnerability, certainty)
    else:
        cells = _from_nationals(view, reach, status, vulnerability, certainty)
    points, kept = [], []
    singles = {(cx, cy) for cx, cy, count, _, _, _ in cells if count == 1} if view.zoom >= POINTS_FROM_ZOOM else set()
    found = _single_points(view, reach, singles, status, vulnerability, certainty) if singles else {}
    for cx, cy, count, lon, lat, national_id in cells:
        point = found.get((cx, cy)) if count == 1 else None
        if count == 1 and view.zoom > MAX_GRID_ZOOM and national_id:
            point = (national_id, lon, lat)
        if point:
            points.append({"id": point[0], "lon": round(point[1], DIGITS), "lat": round(point[2], DIGITS)})
        else:
            kept.append({"lon": round(lon, DIGITS), "lat": round(lat, DIGITS), "count": count})
    total = sum(c["count"] for c in kept) + len(points)
    return {"zoom": view.zoom, "cell_deg": view.size, "total": total, "clusters": kept, "points": points}


_COLUMNS = "zoom, cx, cy, jurisdiction_country, status, certainty, vulnerability_mask"
# The grid as of now: the folded counts and the changes committed since (a view adds them up per cell).
_CELLS = (f"(SELECT {_COLUMNS}, n, sum_lon, sum_lat FROM map_cells "
          f"UNION ALL SELECT {_COLUMNS}, n, sum_lon, sum_lat FROM map_cell_changes)")
_FOLD_LOCK = 0x5A61_6D61  # one folder at a time (pg_try_advisory_xact_lock)
_FOLD = text(f"""
WITH moved AS (DELETE FROM map_cell_changes RETURNING {_COLUMNS}, n, sum_lon, sum_lat)
INSERT INTO map_cells AS m ({_COLUMNS}, n, sum_lon, sum_lat)
SELECT {_COLUMNS}, sum(n), sum(sum_lon), sum(sum_lat) FROM moved
GROUP BY {_COLUMNS} ORDER BY {_COLUMNS}
ON CONFLICT ({_COLUMNS}) DO UPDATE
SET n = m.n + EXCLUDED.n, sum_lon = m.sum_lon + EXCLUDED.sum_lon, sum_lat = m.sum_lat + EXCLUDED.sum_lat""")


def fold() -> int:
    """Fold the committed changes into ``map_cells`` and drop the emptied cells, in one transaction (the
    worker's beat, every ``REGISTRY_MAP_FOLD_SECONDS``); how many cell rows it wrote, or 0 when another fold
    was running. Changes of transactions still open are not seen, and stay for the next fold."""
    scope.use_everything()
    if not db.session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _FOLD_LOCK}).scalar():
        db.session.rollback()
        return 0
    written = db.session.execute(_FOLD).rowcount
    db.session.execute(text("DELETE FROM map_cells WHERE n = 0"))
    db.session.commit()
    return written


def _from_grid(view, reach, status, vulnerability, certainty) -> list[tuple]:
    params = {"zoom": view.zoom}
    params["y_low"], params["y_high"] = view.row_range()
    where = ["zoom = :zoom", _columns_sql(view.column_ranges(), "cx", params), "cy BETWEEN :y_low AND :y_high"]
    if status:
        where.append("status = :status")
        params["status"] = status
    if certainty:
        where.append("certainty = :certainty")
        params["certainty"] = certainty
    if vulnerability:
        where.append("vulnerability_mask & :bit <> 0")
        params["bit"] = _mask_bit(vulnerability)
    reach_sql, reach_params = reach.sql("jurisdiction_country")
    statement = (f"SELECT cx, cy, sum(n)::int, sum(sum_lon) / sum(n), sum(sum_lat) / sum(n), NULL "
                 f"FROM {_CELLS} AS cells WHERE {' AND '.join(where)}{reach_sql} GROUP BY cx, cy HAVING sum(n) > 0")
    return [tuple(row) for row in db.session.execute(text(statement), {**params, **reach_params})]


def _filter_args(reach: Reach, status, vulnerability, certainty) -> dict:
    return {"countries": None if reach.is_everywhere else list(reach.countries), "status": status,
            "vulnerability": vulnerability, "certainty": certainty}


_FILTER_PARAMS = ("CAST(:countries AS text[]), CAST(:status AS text), CAST(:vulnerability AS text), "
                  "CAST(:certainty AS text)")


def _from_nationals(view, reach, status, vulnerability, certainty) -> list[tuple]:
    """Cells straight from ``nationals`` (zooms past the grid), by ``map_cells_live`` (migration 0015: the
    GiST index serves embassy officers too; it applies their reach and the database scope itself)."""
    ranges = view.column_ranges()
    low_row, high_row = view.row_range()
    params = {"size": view.size, "lows": [r[0] for r in ranges], "highs": [r[1] for r in ranges],
              "y_low": low_row, "y_high": high_row, **_filter_args(reach, status, vulnerability, certainty)}
    statement = text("SELECT cell_x, cell_y, people, lon, lat, national_id::text FROM map_cells_live("
                     f"CAST(:size AS float8), CAST(:lows AS int[]), CAST(:highs AS int[]), :y_low, :y_high, "
                     f"{_FILTER_PARAMS})")
    return [tuple(row) for row in db.session.execute(statement, params)]


def _single_points(view, reach, singles: set, status, vulnerability, certainty) -> dict:
    """{(cx, cy): (id, lon, lat)} of the one person in each of these cells, by ``map_points`` (the grid's
    arithmetic; the reach and the database scope applied inside, as for ``map_cells_live``)."""
    if view.zoom > MAX_GRID_ZOOM:
        return {}
    xs, ys = zip(*sorted(singles))
    params = {"size": view.size, "xs": list(xs), "ys": list(ys),
              **_filter_args(reach, status, vulnerability, certainty)}
    statement = text("SELECT cell_x, cell_y, national_id::text, lon, lat FROM map_points(CAST(:size AS float8), "
                     f"CAST(:xs AS int[]), CAST(:ys AS int[]), {_FILTER_PARAMS})")
    found: dict = {}
    for cx, cy, national_id, lon, lat in db.session.execute(statement, params):
        found[(cx, cy)] = None if (cx, cy) in found else (national_id, lon, lat)
    return {key: value for key, value in found.items() if value}


def extent(reach: Reach, zoom: int = 10) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` around the people of ``reach`` (their cells at ``zoom``), or None."""
    reach_sql, reach_params = reach.sql("jurisdiction_country")
    row = db.session.execute(text(f"SELECT min(cx), min(cy), max(cx), max(cy) FROM (SELECT cx, cy FROM {_CELLS} "
                                  f"AS cells WHERE zoom = :zoom{reach_sql} GROUP BY cx, cy HAVING sum(n) > 0) AS c"),
                             {"zoom": zoom, **reach_params}).one()
    if row[0] is None:
        return None
    size = cell_size(zoom)
    return [[max(-85.0, row[1] * size), row[0] * size], [min(85.0, (row[3] + 1) * size), (row[2] + 1) * size]]
