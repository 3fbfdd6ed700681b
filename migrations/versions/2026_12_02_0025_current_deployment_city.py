"""the current-deployment index carries the city: the exposure run's counts by city read the index only

An exposure run counts its rows by zone, ring, certainty and the city of each national's current deployment.
Each row's city was one probe into ``uq_deployments_current`` and one into the deployments' heap: 9-10 s for
the 1.74M rows of a 50 km Dubai run at 10M nationals. With the city in the index (INCLUDE), the probe is an
index-only scan, in the run's key order: 2.3-2.9 s (bench/exposure.py's seed, same run).

The index is rebuilt in the migration's transaction: ``deployments`` is locked while it builds (8 s for 10M
rows on the bench machine), and uniqueness holds throughout.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 17:40:00
"""
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DROP INDEX uq_deployments_current")
    op.execute("CREATE UNIQUE INDEX uq_deployments_current ON deployments (national_id) INCLUDE (city) "
               "WHERE is_current")


def downgrade():
    op.execute("DROP INDEX uq_deployments_current")
    op.execute("CREATE UNIQUE INDEX uq_deployments_current ON deployments (national_id) WHERE is_current")
