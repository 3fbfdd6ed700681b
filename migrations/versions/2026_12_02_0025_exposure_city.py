"""the city of an exposed national's current deployment, as of the run, on the exposure row

The run's counts by city joined each row to ``deployments`` after the INSERT, one index probe per row in
the order of the run's key (random): 1.74M probes, most of a 50 km Dubai run at 10M nationals. The run now
reads the city as it writes the row and counts what it inserted (``RETURNING``). Earlier runs keep NULL (their
counts were stored when they ran; lists read the city live).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 16:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("exposures", sa.Column("city", sa.String(200), nullable=True))


def downgrade():
    op.drop_column("exposures", "city")
