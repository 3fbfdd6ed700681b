"""exposure counts: a run's counts per jurisdiction, zone, ring, certainty, priority and city, written by the run

At 10M nationals the first page of an exposure list counted its run (1.74M rows, each joined to its national
for the caller's reach and to the current deployment for its city) on every call: 6 s on a quiet machine,
26-60 s under the mixed load (``bench/load.py``), where it timed out. The run now writes its counts once, by
the buckets a list filters on and the jurisdiction a caller's reach is made of, and a list whose filters are
among them sums a few rows (``registry.crises.listing.counts``). The run's rows are as of the run; so are
these. An erasure takes a national out of every list at once: it deletes the counts of the runs that listed
them (``exposure_runs.counts_kept`` false), and those lists count live until the next run writes them again.

Row-level security as on ``nationals``: an embassy officer's transaction reads its jurisdictions' rows only.
No foreign key, for the reason ``exposures`` has none.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 17:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR jurisdiction_country = ANY ("
            "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")


def upgrade():
    op.create_table(
        'exposure_counts',
        sa.Column('run_id', sa.Uuid(), nullable=False),
        sa.Column('jurisdiction_country', sa.String(length=2), nullable=True),
        sa.Column('zone', sa.String(length=10), nullable=False),
        sa.Column('ring_km', sa.Float(), nullable=True),
        sa.Column('certainty', sa.String(length=15), nullable=False),
        sa.Column('priority', sa.SmallInteger(), nullable=True),
        sa.Column('city', sa.String(length=200), nullable=True),
        sa.Column('n', sa.Integer(), nullable=False),
    )
    op.create_index('ix_exposure_counts_run_id', 'exposure_counts', ['run_id'])
    # Whether the run's counts are kept whole (false for the runs before, and once an erasure took some away).
    op.add_column('exposure_runs', sa.Column('counts_kept', sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.execute("ALTER TABLE exposure_counts ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE exposure_counts FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON exposure_counts USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON exposure_counts TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON exposure_counts FROM {APP_ROLE}")
    op.drop_column('exposure_runs', 'counts_kept')
    op.drop_table('exposure_counts')
