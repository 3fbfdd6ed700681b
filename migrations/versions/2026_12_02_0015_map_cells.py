"""map of nationals: counts per grid cell, zoom, jurisdiction country and filter values (map_cells), kept
by statement-level triggers on nationals (registry/maps/grid.py explains the design)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
# The zooms pre-aggregated (0..MAX_GRID_ZOOM) and the cell of zoom z: 90 / 2^z degrees (64 px of a 256 px
# tile). Must match registry/maps/grid.py (a test checks it).
MAX_GRID_ZOOM = 16
VULNERABILITIES = ("pregnant", "chronic_illness", "disability", "minor", "elderly", "other")
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR jurisdiction_country = ANY ("
            "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")

CERTAINTY_SQL = ("CASE WHEN r.location_source = 'country_centroid' THEN 'country_only' "
                 "WHEN r.location_source = 'gps' AND r.location_precision_m <= 1000 THEN 'high' ELSE 'possible' END")
MASK_SQL = ("(SELECT coalesce(bit_or(1 << (array_position(ARRAY[" + ", ".join(f"'{v}'" for v in VULNERABILITIES)
            + "]::text[], v::text) - 1)), 0) FROM unnest(r.vulnerabilities) v)::smallint")
# The rows a statement added (+1) or took away (-1): only those on the map (located, not erased), with what
# places them computed once per row (the statement is materialized before it meets the zooms).
COUNTED = ("SELECT {sign} AS sign, ST_X(r.location) AS x, ST_Y(r.location) AS y, r.jurisdiction_country, "
           f"r.status, {CERTAINTY_SQL} AS certainty, {MASK_SQL} AS mask FROM {{table}} r "
           "WHERE r.erased_at IS NULL AND r.location IS NOT NULL")
# What places a row on the map: an update changing none of it leaves the grid alone.
KEY = ("ST_X({t}.location), ST_Y({t}.location), {t}.jurisdiction_country, {t}.status, {t}.vulnerabilities, "
       "{t}.location_source, {t}.location_precision_m, {t}.erased_at")
APPLY = f"""
    INSERT INTO map_cells AS m (zoom, cx, cy, jurisdiction_country, status, certainty, vulnerability_mask,
                                n, sum_lon, sum_lat)
    SELECT l.z, floor(r.x / l.size)::int, floor(r.y / l.size)::int, r.jurisdiction_country, r.status, r.certainty,
           r.mask, sum(r.sign), sum(r.sign * r.x), sum(r.sign * r.y)
    FROM changes r CROSS JOIN (SELECT z, 90.0::float8 / 2 ^ z AS size FROM generate_series(0, {MAX_GRID_ZOOM}) z) l
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(r.sign) <> 0 OR sum(r.sign * r.x) <> 0 OR sum(r.sign * r.y) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (zoom, cx, cy, jurisdiction_country, status, certainty, vulnerability_mask) DO UPDATE
    SET n = m.n + EXCLUDED.n, sum_lon = m.sum_lon + EXCLUDED.sum_lon, sum_lat = m.sum_lat + EXCLUDED.sum_lat;
    DELETE FROM map_cells WHERE n = 0;"""


# Reading nationals by place for an embassy officer: under row-level security PostGIS's operators (not
# LEAKPROOF) may not use the GiST index before the policy, and a view of a few streets became a scan of the
# jurisdiction (0.8 s for 228k rows). These functions run as the tables' owner, past the policy, and apply
# the same rule themselves: the transaction's scope (sagip.scope, as the policy reads it) and the caller's
# reach given by the service (``countries``, NULL for everywhere), both.
SCOPE = ("(current_setting('sagip.scope', true) = '*' OR n.jurisdiction_country = ANY ("
         "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")
FILTERS = ("n.erased_at IS NULL AND n.location IS NOT NULL AND (countries IS NULL OR n.jurisdiction_country = "
           "ANY(countries)) AND (want_status IS NULL OR n.status = want_status) AND (want_vulnerability IS NULL OR "
           "n.vulnerabilities @> ARRAY[want_vulnerability]::varchar[]) AND (want_certainty IS NULL OR "
           + CERTAINTY_SQL.replace("r.", "n.") + " = want_certainty) AND " + SCOPE)
FILTER_ARGS = "countries text[], want_status text, want_vulnerability text, want_certainty text"
POINTS_SIGNATURE = f"map_points(float8, int[], int[], {FILTER_ARGS})"
LIVE_SIGNATURE = f"map_cells_live(float8, int[], int[], int, int, {FILTER_ARGS})"
POINTS = f"""
CREATE FUNCTION map_points(size float8, xs int[], ys int[], {FILTER_ARGS})
RETURNS TABLE (cell_x int, cell_y int, national_id uuid, lon float8, lat float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT s.cx, s.cy, n.id, ST_X(n.location), ST_Y(n.location)
    FROM unnest(xs, ys) AS s(cx, cy)
    JOIN nationals n ON n.location && ST_MakeEnvelope(s.cx * size, s.cy * size, (s.cx + 1) * size,
                                                      (s.cy + 1) * size, 4326)
     AND floor(ST_X(n.location) / size)::int = s.cx AND floor(ST_Y(n.location) / size)::int = s.cy
    WHERE {FILTERS}
$$"""
LIVE = f"""
CREATE FUNCTION map_cells_live(size float8, x_lows int[], x_highs int[], y_low int, y_high int, {FILTER_ARGS})
RETURNS TABLE (cell_x int, cell_y int, people int, lon float8, lat float8, national_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT floor(ST_X(n.location) / size)::int, floor(ST_Y(n.location) / size)::int, count(*)::int,
           avg(ST_X(n.location)), avg(ST_Y(n.location)), CASE WHEN count(*) = 1 THEN min(n.id::text)::uuid END
    FROM unnest(x_lows, x_highs) AS r(lo, hi)
    JOIN nationals n ON n.location && ST_MakeEnvelope(r.lo * size, y_low * size, (r.hi + 1) * size,
                                                      (y_high + 1) * size, 4326)
     AND floor(ST_X(n.location) / size)::int BETWEEN r.lo AND r.hi
     AND floor(ST_Y(n.location) / size)::int BETWEEN y_low AND y_high
    WHERE {FILTERS}
    GROUP BY 1, 2
$$"""


# What a statement on nationals changed, per cell and zoom, appended to map_cell_changes: an INSERT without a
# key, so writers never wait for each other (an upsert into map_cells here made every writer of a country
# queue on its coarse cells until the other committed: a desk's registration behind a whole import).
RECORD = f"""
    INSERT INTO map_cell_changes (zoom, cx, cy, jurisdiction_country, status, certainty, vulnerability_mask,
                                  n, sum_lon, sum_lat)
    SELECT l.z, floor(r.x / l.size)::int, floor(r.y / l.size)::int, r.jurisdiction_country, r.status, r.certainty,
           r.mask, sum(r.sign), sum(r.sign * r.x), sum(r.sign * r.y)
    FROM changes r CROSS JOIN (SELECT z, 90.0::float8 / 2 ^ z AS size FROM generate_series(0, {MAX_GRID_ZOOM}) z) l
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(r.sign) <> 0 OR sum(r.sign * r.x) <> 0 OR sum(r.sign * r.y) <> 0;"""
CELL_COLUMNS = [
    ("zoom", sa.SmallInteger()), ("cx", sa.Integer()), ("cy", sa.Integer()),
    ("jurisdiction_country", sa.String(length=2)), ("status", sa.String(length=12)),
    ("certainty", sa.String(length=12)), ("vulnerability_mask", sa.SmallInteger()), ("n", sa.Integer()),
    ("sum_lon", sa.Float()), ("sum_lat", sa.Float())]


def _function(name: str, changes: str) -> str:
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
            f"    WITH changes AS MATERIALIZED ({changes})\n{RECORD}\n    RETURN NULL;\nEND $$")


def upgrade():
    op.create_table(
        "map_cells",
        sa.Column("zoom", sa.SmallInteger(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_country", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("certainty", sa.String(length=12), nullable=False),
        sa.Column("vulnerability_mask", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sum_lon", sa.Float(), nullable=False),
        sa.Column("sum_lat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("zoom", "cx", "cy", "jurisdiction_country", "status", "certainty",
                                "vulnerability_mask", name=op.f("pk_map_cells")),
    )
    op.create_index("ix_map_cells_empty", "map_cells", ["zoom"], postgresql_where=sa.text("n = 0"))
    op.create_table("map_cell_changes", *(sa.Column(name, kind, nullable=False) for name, kind in CELL_COLUMNS))
    op.create_index("ix_map_cell_changes_cell", "map_cell_changes", ["zoom", "cx", "cy"])
    inserted = COUNTED.format(sign=1, table="new_rows")
    deleted = COUNTED.format(sign=-1, table="old_rows")
    changed = (f"SELECT o.id FROM old_rows o JOIN new_rows w ON w.id = o.id "
               f"WHERE ({KEY.format(t='o')}) IS DISTINCT FROM ({KEY.format(t='w')})")
    op.execute(_function("map_cells_inserted", inserted))
    op.execute(_function("map_cells_deleted", deleted))
    op.execute(_function("map_cells_updated", f"{inserted} AND r.id IN ({changed}) UNION ALL "
                                               f"{deleted} AND r.id IN ({changed})"))
    op.execute("CREATE TRIGGER map_cells_inserted AFTER INSERT ON nationals REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION map_cells_inserted()")
    op.execute("CREATE TRIGGER map_cells_deleted AFTER DELETE ON nationals REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION map_cells_deleted()")
    op.execute("CREATE TRIGGER map_cells_updated AFTER UPDATE ON nationals "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION map_cells_updated()")
    # The counts of the nationals already there.
    op.execute(f"WITH changes AS MATERIALIZED ({COUNTED.format(sign=1, table='nationals')}) {APPLY}")
    op.execute("ALTER TABLE map_cells ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE map_cells FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON map_cells USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON map_cells TO {APP_ROLE}")
    op.execute("ALTER TABLE map_cell_changes ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE map_cell_changes FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON map_cell_changes USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON map_cell_changes TO {APP_ROLE}")
    for statement, signature in ((POINTS, POINTS_SIGNATURE), (LIVE, LIVE_SIGNATURE)):
        op.execute(statement)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON map_cells FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON map_cell_changes FROM {APP_ROLE}")
    op.execute(f"DROP FUNCTION {POINTS_SIGNATURE}")
    op.execute(f"DROP FUNCTION {LIVE_SIGNATURE}")
    for name in ("map_cells_inserted", "map_cells_deleted", "map_cells_updated"):
        op.execute(f"DROP TRIGGER {name} ON nationals")
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("map_cell_changes")
    op.drop_table("map_cells")
