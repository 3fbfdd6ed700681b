"""country boundaries: Natural Earth 1:10m MultiPolygons, and their subdivided parts for point checks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 05:30:00

``countries.geom`` is the whole boundary (for crisis areas and maps);
``country_parts`` holds it cut by ST_Subdivide into pieces of at most 256
vertices, GiST-indexed, which is what point-in-country checks query: a point
tests against a few small pieces instead of a 7,000-vertex country. Both come
from ``geodata/country_boundaries.csv.gz`` (see geodata/README.md). Polygons
are cut at ±180°, so countries across the antimeridian (Fiji, Kiribati,
Russia, the US) are MultiPolygons with parts on both sides, read correctly by
planar tests.
"""
import csv
import gzip
from pathlib import Path

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BOUNDARIES = Path(__file__).resolve().parents[2] / "geodata" / "country_boundaries.csv.gz"
APP_ROLE = "sagip_app"
MAX_VERTICES_PER_PART = 256


def upgrade():
    op.add_column('countries', sa.Column('geom', geoalchemy2.types.Geometry(
        geometry_type='MULTIPOLYGON', srid=4326, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'),
        nullable=True))
    op.create_table('country_parts',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('alpha2', sa.String(length=2), nullable=False),
    sa.Column('geom', geoalchemy2.types.Geometry(geometry_type='POLYGON', srid=4326, spatial_index=False,
                                                 from_text='ST_GeomFromEWKT', name='geometry', nullable=False),
              nullable=False),
    sa.ForeignKeyConstraint(['alpha2'], ['countries.alpha2'], name=op.f('fk_country_parts_alpha2_countries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_country_parts'))
    )
    _load_boundaries()
    op.create_index('ix_countries_geom', 'countries', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_country_parts_geom', 'country_parts', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_country_parts_alpha2', 'country_parts', ['alpha2'], unique=False)
    op.execute(f"GRANT SELECT ON country_parts TO {APP_ROLE}")


def _load_boundaries():
    conn = op.get_bind()
    csv.field_size_limit(1 << 26)  # a boundary's WKT runs to megabytes (Canada, Russia)
    with gzip.open(BOUNDARIES, "rt", encoding="utf-8", newline="") as handle:
        rows = [{"alpha2": r["alpha2"], "wkt": r["wkt"]} for r in csv.DictReader(handle)]
    conn.execute(sa.text("UPDATE countries SET geom = ST_Multi(ST_GeomFromText(:wkt, 4326)) WHERE alpha2 = :alpha2"),
                 rows)
    missing = conn.execute(sa.text("SELECT string_agg(alpha2, ', ') FROM countries WHERE geom IS NULL")).scalar()
    if missing:
        raise RuntimeError(f"no boundary for: {missing}")
    conn.execute(sa.text(
        "INSERT INTO country_parts (alpha2, geom) "
        "SELECT alpha2, ST_Subdivide(geom, :vertices) FROM countries"), {"vertices": MAX_VERTICES_PER_PART})
    op.alter_column('countries', 'geom', nullable=False)


def downgrade():
    op.execute(f"REVOKE ALL ON country_parts FROM {APP_ROLE}")
    op.drop_index('ix_country_parts_alpha2', table_name='country_parts')
    op.drop_index('ix_country_parts_geom', table_name='country_parts', postgresql_using='gist')
    op.drop_index('ix_countries_geom', table_name='countries', postgresql_using='gist')
    op.drop_table('country_parts')
    op.drop_column('countries', 'geom')
