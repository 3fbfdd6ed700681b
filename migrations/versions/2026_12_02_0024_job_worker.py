"""the worker that claimed a job: which of many workers ran it (SPEC §12, registry/jobs/claims.py)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 12:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: adding it rewrites nothing (a catalog change only), however many jobs there are.
    op.add_column("jobs", sa.Column("worker", sa.String(length=200), nullable=True))


def downgrade():
    op.drop_column("jobs", "worker")
