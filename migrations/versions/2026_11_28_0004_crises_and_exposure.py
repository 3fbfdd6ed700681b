"""crises and exposure: crises, area versions, subdivided area parts, exposure runs and rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 05:50:00
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
# The workers' role: the application role's privileges, plus BYPASSRLS. Workers act for the whole
# service (scope '*'), and PostGIS operators are not LEAKPROOF, so under row-level security the
# planner cannot use the spatial indexes for them: an exposure run would scan every national.
WORKER_ROLE = "sagip_system"
# Exposure rows name nationals: the same row-level security as the national tables (migration 0002).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = national_id))")
TABLES = ("crises", "crisis_versions", "crisis_area_parts", "exposure_runs", "exposures")


def _geometry(kind):
    return geoalchemy2.types.Geometry(geometry_type=kind, srid=4326, spatial_index=False,
                                      from_text='ST_GeomFromEWKT', name='geometry')


def upgrade():
    op.create_table('crises',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('earthquake', 'typhoon', 'flood', 'conflict', 'civil_unrest', 'epidemic', 'other')",
                       name=op.f('ck_crises_kind')),
    sa.CheckConstraint("severity IN ('low', 'moderate', 'high', 'extreme')", name=op.f('ck_crises_severity')),
    sa.CheckConstraint("status IN ('active', 'closed')", name=op.f('ck_crises_status')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_crises_created_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crises'))
    )
    op.create_index('ix_crises_created_at_id', 'crises', ['created_at', 'id'], unique=False)
    op.create_table('crisis_versions',
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('geom', _geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('zones_km', postgresql.ARRAY(sa.Float()), server_default='{}', nullable=False),
    sa.Column('source', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('vertices', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_crisis_versions_crisis_id_crises'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('crisis_id', 'version', name=op.f('pk_crisis_versions'))
    )
    op.create_table('crisis_area_parts',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('geom', _geometry('POLYGON'), nullable=False),
    sa.ForeignKeyConstraint(['crisis_id', 'version'], ['crisis_versions.crisis_id', 'crisis_versions.version'],
                            name=op.f('fk_crisis_area_parts_crisis_id_crisis_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_area_parts'))
    )
    op.create_index('ix_crisis_area_parts_crisis_id_version', 'crisis_area_parts', ['crisis_id', 'version'])
    op.create_index('ix_crisis_area_parts_geom', 'crisis_area_parts', ['geom'], postgresql_using='gist')
    op.create_table('exposure_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='queued', nullable=False),
    sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f('ck_exposure_runs_status')),
    sa.ForeignKeyConstraint(['crisis_id', 'version'], ['crisis_versions.crisis_id', 'crisis_versions.version'],
                            name=op.f('fk_exposure_runs_crisis_id_crisis_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_exposure_runs_job_id_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exposure_runs'))
    )
    op.create_index('ix_exposure_runs_crisis_id_version', 'exposure_runs', ['crisis_id', 'version'])
    op.create_table('exposures',
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('zone', sa.String(length=10), nullable=False),
    sa.Column('ring_km', sa.Float(), nullable=True),
    sa.Column('distance_km', sa.Float(), nullable=False),
    sa.Column('certainty', sa.String(length=15), nullable=False),
    sa.Column('location', _geometry('POINT'), nullable=True),
    sa.Column('location_source', sa.String(length=20), nullable=True),
    sa.Column('location_precision_m', sa.Float(), nullable=True),
    sa.Column('location_age_days', sa.Integer(), nullable=True),
    sa.CheckConstraint("zone IN ('inside', 'ring')", name=op.f('ck_exposures_zone')),
    sa.CheckConstraint("certainty IN ('high', 'possible', 'country_only')", name=op.f('ck_exposures_certainty')),
    # No foreign keys, on purpose: see registry/crises/models.py (Exposure).
    sa.PrimaryKeyConstraint('run_id', 'national_id', name=op.f('pk_exposures'))
    )
    op.create_index('ix_exposures_national_id', 'exposures', ['national_id'])
    op.create_index('ix_nationals_updated_at', 'nationals', ['updated_at'], unique=False)
    op.execute("ALTER TABLE exposures ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE exposures FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON exposures USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER_ROLE}') THEN
        CREATE ROLE {WORKER_ROLE} NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE INHERIT;
    END IF;
END $$""")
    op.execute(f"GRANT {APP_ROLE} TO {WORKER_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON {', '.join(TABLES)} FROM {APP_ROLE}")
    op.drop_index('ix_nationals_updated_at', table_name='nationals')
    op.execute("DROP POLICY in_scope ON exposures")
    op.drop_index('ix_exposures_national_id', table_name='exposures')
    op.drop_table('exposures')
    op.drop_index('ix_exposure_runs_crisis_id_version', table_name='exposure_runs')
    op.drop_table('exposure_runs')
    op.drop_index('ix_crisis_area_parts_geom', table_name='crisis_area_parts', postgresql_using='gist')
    op.drop_index('ix_crisis_area_parts_crisis_id_version', table_name='crisis_area_parts')
    op.drop_table('crisis_area_parts')
    op.drop_table('crisis_versions')
    op.drop_index('ix_crises_created_at_id', table_name='crises')
    op.drop_table('crises')
