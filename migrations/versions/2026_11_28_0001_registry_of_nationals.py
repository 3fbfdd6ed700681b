"""registry of nationals: users, tokens, jobs, outbox, nationals, deployments, locations

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 02:56:49.746912
"""
import csv
from pathlib import Path

from alembic import op
import sqlalchemy as sa
import geoalchemy2
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


COUNTRY_POINTS = Path(__file__).resolve().parents[2] / "geodata" / "country_points.csv"


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('countries',
    sa.Column('alpha2', sa.String(length=2), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('label_point', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('precision_m', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('alpha2', name=op.f('pk_countries'))
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('jurisdiction', sa.ARRAY(sa.String(length=2)), server_default='{}', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('desk', 'embassy', 'coordinator', 'admin', 'auditor')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), server_default='queued', nullable=False),
    sa.Column('progress', sa.Float(), server_default='0', nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f('ck_jobs_status')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_jobs_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index(op.f('ix_jobs_created_by'), 'jobs', ['created_by'], unique=False)
    op.create_table('nationals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('family_name', sa.String(length=200), nullable=True),
    sa.Column('given_names', sa.String(length=200), nullable=True),
    sa.Column('native_name', sa.String(length=200), nullable=True),
    sa.Column('sex', sa.String(length=1), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('nationality', sa.String(length=2), nullable=False),
    sa.Column('passport_number', sa.String(length=20), nullable=True),
    sa.Column('national_id_number', sa.String(length=40), nullable=True),
    sa.Column('phones', sa.ARRAY(sa.String(length=16)), server_default='{}', nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('languages', sa.ARRAY(sa.String(length=3)), server_default='{}', nullable=False),
    sa.Column('vulnerabilities', sa.ARRAY(sa.String(length=20)), server_default='{}', nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=12), server_default='abroad', nullable=False),
    sa.Column('source', sa.String(length=20), server_default='departure_desk', nullable=False),
    sa.Column('consent', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('search_name', sa.Text(), server_default='', nullable=False),
    sa.Column('jurisdiction_country', sa.String(length=2), nullable=False),
    sa.Column('location', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('location_source', sa.String(length=20), nullable=True),
    sa.Column('location_precision_m', sa.Float(), nullable=True),
    sa.Column('location_reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("location_source IN ('gps', 'geocoded_city', 'geocoded_address', 'country_centroid')", name=op.f('ck_nationals_location_source')),
    sa.CheckConstraint("sex IN ('F', 'M', 'X')", name=op.f('ck_nationals_sex')),
    sa.CheckConstraint("source IN ('departure_desk', 'embassy', 'self_registration', 'bulk_import')", name=op.f('ck_nationals_source')),
    sa.CheckConstraint("status IN ('abroad', 'returned', 'missing', 'deceased')", name=op.f('ck_nationals_status')),
    sa.CheckConstraint("vulnerabilities <@ ARRAY['pregnant', 'chronic_illness', 'disability', 'minor', 'elderly', 'other']::varchar[]", name=op.f('ck_nationals_vulnerabilities')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_nationals_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nationals'))
    )
    op.create_index('ix_nationals_birth_names', 'nationals', ['date_of_birth', 'search_name'], unique=False)
    op.create_index('ix_nationals_created_at_id', 'nationals', ['created_at', 'id'], unique=False)
    op.create_index('ix_nationals_household_id', 'nationals', ['household_id'], unique=False)
    op.create_index('ix_nationals_jurisdiction_country', 'nationals', ['jurisdiction_country'], unique=False)
    op.create_index('ix_nationals_location', 'nationals', ['location'], unique=False, postgresql_using='gist')
    op.create_index('ix_nationals_phones', 'nationals', ['phones'], unique=False, postgresql_using='gin')
    op.create_index('ix_nationals_search_name_trgm', 'nationals', ['search_name'], unique=False, postgresql_using='gin', postgresql_ops={'search_name': 'gin_trgm_ops'})
    op.create_index('uq_nationals_nationality_passport', 'nationals', ['nationality', 'passport_number'], unique=True, postgresql_where=sa.text('passport_number IS NOT NULL'))
    op.create_table('deployments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('is_current', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('host_country', sa.String(length=2), nullable=False),
    sa.Column('city', sa.String(length=200), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('employer', sa.String(length=200), nullable=True),
    sa.Column('occupation_isco', sa.String(length=4), nullable=True),
    sa.Column('sector', sa.String(length=100), nullable=True),
    sa.Column('contract_start', sa.Date(), nullable=True),
    sa.Column('contract_end', sa.Date(), nullable=True),
    sa.Column('legal_status', sa.String(length=12), server_default='unknown', nullable=False),
    sa.Column('recruitment_agency', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("legal_status IN ('documented', 'undocumented', 'unknown')", name=op.f('ck_deployments_legal_status')),
    sa.CheckConstraint('contract_end IS NULL OR contract_start IS NULL OR contract_end > contract_start', name=op.f('ck_deployments_contract_dates')),
    sa.ForeignKeyConstraint(['national_id'], ['nationals.id'], name=op.f('fk_deployments_national_id_nationals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments'))
    )
    op.create_index('ix_deployments_host_country_city', 'deployments', ['host_country', 'city'], unique=False)
    op.create_index('uq_deployments_current', 'deployments', ['national_id'], unique=True, postgresql_where=sa.text('is_current'))
    op.create_table('import_files',
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_import_files_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_import_files'))
    )
    op.create_table('location_reports',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('geom', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('precision_m', sa.Float(), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("source IN ('gps', 'geocoded_city', 'geocoded_address', 'country_centroid')", name=op.f('ck_location_reports_source')),
    sa.CheckConstraint('precision_m >= 0', name=op.f('ck_location_reports_precision_m')),
    sa.ForeignKeyConstraint(['national_id'], ['nationals.id'], name=op.f('fk_location_reports_national_id_nationals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location_reports'))
    )
    op.create_index('ix_location_reports_geom', 'location_reports', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_location_reports_national_id_reported_at', 'location_reports', ['national_id', 'reported_at'], unique=False)
    op.create_table('next_of_kin',
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('relation', sa.String(length=50), nullable=True),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['national_id'], ['nationals.id'], name=op.f('fk_next_of_kin_national_id_nationals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('national_id', name=op.f('pk_next_of_kin'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('task', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_outbox_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index(op.f('ix_outbox_job_id'), 'outbox', ['job_id'], unique=False)
    op.create_index('ix_outbox_pending', 'outbox', ['id'], unique=False, postgresql_where=sa.text('dispatched_at IS NULL'))
    op.create_index("ix_nationals_location_geog", "nationals", [sa.text("(location::geography)")],
                    postgresql_using="gist")
    _load_countries()


def _load_countries():
    countries = sa.table("countries", sa.column("alpha2"), sa.column("name"),
                         sa.column("label_point", geoalchemy2.types.Geometry("POINT", 4326)),
                         sa.column("precision_m"))
    with COUNTRY_POINTS.open(encoding="utf-8") as handle:
        rows = [{"alpha2": r["alpha2"], "name": r["name"], "precision_m": int(r["precision_m"]),
                 "label_point": f"SRID=4326;POINT({r['lon']} {r['lat']})"} for r in csv.DictReader(handle)]
    op.bulk_insert(countries, rows)


def downgrade():
    op.drop_index("ix_nationals_location_geog", table_name="nationals")
    op.drop_index('ix_outbox_pending', table_name='outbox', postgresql_where=sa.text('dispatched_at IS NULL'))
    op.drop_index(op.f('ix_outbox_job_id'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('next_of_kin')
    op.drop_index('ix_location_reports_national_id_reported_at', table_name='location_reports')
    op.drop_index('ix_location_reports_geom', table_name='location_reports', postgresql_using='gist')
    op.drop_table('location_reports')
    op.drop_table('import_files')
    op.drop_index('uq_deployments_current', table_name='deployments', postgresql_where=sa.text('is_current'))
    op.drop_index('ix_deployments_host_country_city', table_name='deployments')
    op.drop_table('deployments')
    op.drop_index('uq_nationals_nationality_passport', table_name='nationals', postgresql_where=sa.text('passport_number IS NOT NULL'))
    op.drop_index('ix_nationals_search_name_trgm', table_name='nationals', postgresql_using='gin', postgresql_ops={'search_name': 'gin_trgm_ops'})
    op.drop_index('ix_nationals_phones', table_name='nationals', postgresql_using='gin')
    op.drop_index('ix_nationals_location', table_name='nationals', postgresql_using='gist')
    op.drop_index('ix_nationals_jurisdiction_country', table_name='nationals')
    op.drop_index('ix_nationals_household_id', table_name='nationals')
    op.drop_index('ix_nationals_created_at_id', table_name='nationals')
    op.drop_index('ix_nationals_birth_names', table_name='nationals')
    op.drop_table('nationals')
    op.drop_index(op.f('ix_jobs_created_by'), table_name='jobs')
    op.drop_table('jobs')
    op.drop_table('idempotency_keys')
    op.drop_index(op.f('ix_api_tokens_user_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('countries')
