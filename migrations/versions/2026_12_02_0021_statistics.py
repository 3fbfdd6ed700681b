"""migration-profile statistics (SPEC §11): the analyst role, status history for stocks and flows: owned by registry/statistics

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
