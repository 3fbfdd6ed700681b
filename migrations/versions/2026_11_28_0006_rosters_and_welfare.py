"""rosters and welfare: rosters of exposure runs, the points they saw, their entries; welfare statuses and history;
exposure rows carry household and priority

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 08:00:00
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
# Rows naming nationals get the row-level security of the national tables (migrations 0002, 0004).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = national_id))")
PERSONAL_TABLES = ("roster_entries", "welfare_statuses", "welfare_events")
TABLES = ("rosters", "roster_points") + PERSONAL_TABLES
REASONS = ("'no_capacity_in_reach', 'beyond_max_distance', 'location_unknown', 'household_larger_than_vehicle', "
           "'no_assembly_points'")
WELFARE = "'unknown', 'contacted', 'safe', 'needs_assistance', 'evacuated', 'repatriated', 'missing'"
CHANNELS = "'phone', 'sms', 'messaging_app', 'email', 'in_person', 'via_employer', 'via_next_of_kin', 'other'"
OUTCOMES = "'reached', 'no_answer', 'busy', 'voicemail', 'wrong_number', 'unreachable', 'other'"


BACKFILL_EXPOSURES = """
UPDATE exposures e SET household_id = n.household_id,
       priority = CASE WHEN n.vulnerabilities && ARRAY['chronic_illness', 'disability']::varchar[] THEN 1
                       WHEN n.vulnerabilities @> ARRAY['pregnant']::varchar[] THEN 2
                       WHEN n.vulnerabilities && ARRAY['minor', 'elderly']::varchar[]
                            OR n.date_of_birth > current_date - interval '18 years'
                            OR n.date_of_birth <= current_date - interval '60 years' THEN 3
                       ELSE 4 END
FROM nationals n WHERE n.id = e.national_id
"""


def upgrade():
    # Exposure rows carry what a roster needs of the national as of the run (one table to read).
    op.add_column('exposures', sa.Column('household_id', sa.Uuid(), nullable=True))
    op.add_column('exposures', sa.Column('priority', sa.SmallInteger(), nullable=True))
    op.execute(BACKFILL_EXPOSURES)
    op.create_table('rosters',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='queued', nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f('ck_rosters_status')),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_rosters_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['exposure_runs.id'], name=op.f('fk_rosters_run_id_exposure_runs'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_rosters_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_rosters_created_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rosters'))
    )
    op.create_index('uq_rosters_crisis_id_number', 'rosters', ['crisis_id', 'number'], unique=True)
    op.create_table('roster_points',
    sa.Column('roster_id', sa.Uuid(), nullable=False),
    sa.Column('assembly_point_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('location', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, spatial_index=False,
                                                     from_text='ST_GeomFromEWKT', name='geometry', nullable=False),
              nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('assigned', sa.Integer(), nullable=False),
    sa.Column('vehicles', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_roster_points_roster_id_rosters'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('roster_id', 'assembly_point_id', name=op.f('pk_roster_points'))
    )
    op.create_table('roster_entries',
    sa.Column('roster_id', sa.Uuid(), nullable=False),
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('priority', sa.SmallInteger(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('assembly_point_id', sa.Uuid(), nullable=True),
    sa.Column('vehicle', sa.Integer(), nullable=True),
    sa.Column('seat', sa.Integer(), nullable=True),
    sa.Column('distance_to_point_km', sa.Float(), nullable=True),
    sa.Column('unassigned_reason', sa.String(length=32), nullable=True),
    sa.CheckConstraint(f"unassigned_reason IN ({REASONS})", name=op.f('ck_roster_entries_unassigned_reason')),
    sa.CheckConstraint("(assembly_point_id IS NULL) = (unassigned_reason IS NOT NULL)",
                       name=op.f('ck_roster_entries_placed_or_reason')),
    # No foreign keys, on purpose: see registry/rosters/models.py (RosterEntry).
    sa.PrimaryKeyConstraint('roster_id', 'national_id', name=op.f('pk_roster_entries'))
    )
    op.create_table('welfare_statuses',
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('contact_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_contact_outcome', sa.String(length=20), nullable=True),
    sa.Column('reached', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint(f"status IN ({WELFARE})", name=op.f('ck_welfare_statuses_status')),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_welfare_statuses_crisis_id_crises'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['national_id'], ['nationals.id'], name=op.f('fk_welfare_statuses_national_id_nationals'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_welfare_statuses_updated_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('crisis_id', 'national_id', name=op.f('pk_welfare_statuses'))
    )
    op.create_table('welfare_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('national_id', sa.Uuid(), nullable=False),
    sa.Column('roster_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('previous_status', sa.String(length=20), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('contact_channel', sa.String(length=20), nullable=True),
    sa.Column('contact_outcome', sa.String(length=20), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint(f"status IN ({WELFARE})", name=op.f('ck_welfare_events_status')),
    sa.CheckConstraint(f"contact_channel IN ({CHANNELS})", name=op.f('ck_welfare_events_contact_channel')),
    sa.CheckConstraint(f"contact_outcome IN ({OUTCOMES})", name=op.f('ck_welfare_events_contact_outcome')),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_welfare_events_crisis_id_crises'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['national_id'], ['nationals.id'], name=op.f('fk_welfare_events_national_id_nationals'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_welfare_events_roster_id_rosters'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_welfare_events_created_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_welfare_events'))
    )
    op.create_index('ix_welfare_events_crisis_id_national_id', 'welfare_events', ['crisis_id', 'national_id', 'id'])
    for table in PERSONAL_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY in_scope ON {table} USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON {', '.join(TABLES)} FROM {APP_ROLE}")
    for table in PERSONAL_TABLES:
        op.execute(f"DROP POLICY in_scope ON {table}")
    op.drop_index('ix_welfare_events_crisis_id_national_id', table_name='welfare_events')
    op.drop_table('welfare_events')
    op.drop_table('welfare_statuses')
    op.drop_table('roster_entries')
    op.drop_table('roster_points')
    op.drop_index('uq_rosters_crisis_id_number', table_name='rosters')
    op.drop_table('rosters')
    op.drop_column('exposures', 'priority')
    op.drop_column('exposures', 'household_id')
