"""the worker that claimed a job: which of many workers ran it (SPEC §12, registry/jobs/claims.py)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: adding it rewrites nothing (a catalog change only), however many jobs there are.
    op.add_column("jobs", sa.Column("worker", sa.String(length=200), nullable=True))


def downgrade():
    op.drop_column("jobs", "worker")
