"""passport index lookup: an index on the passport's blind index alone, for passport searches (which name no
nationality; the unique index leads with nationality and served them by a full scan)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_nationals_passport_index", "nationals", ["passport_index"], unique=False,
                    postgresql_where=sa.text("passport_index IS NOT NULL"))


def downgrade():
    op.drop_index("ix_nationals_passport_index", table_name="nationals",
                  postgresql_where=sa.text("passport_index IS NOT NULL"))
