"""message campaigns and their recipients (SPEC §10): owned by registry/campaigns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
