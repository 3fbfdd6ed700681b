"""blind index key versions: each national records the version of the index key its passport and national ID
indexes were computed with, so the key can be rotated (registry keys rotate-index)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Every existing index was computed with the one key there was: version 1. A constant default makes
    # this a catalogue change, not a rewrite of the table. The table-level grants of 0002 cover the column.
    op.add_column('nationals', sa.Column('index_key_version', sa.SmallInteger(), server_default='1', nullable=False))


def downgrade():
    # Before this revision one key indexed everything. Mixed versions would leave some records unfindable
    # whichever key the older code is given: refuse, rather than forget which record uses which key.
    versions = op.get_bind().execute(sa.text("SELECT array_agg(DISTINCT index_key_version ORDER BY "
                                             "index_key_version) FROM nationals")).scalar() or []
    if len(versions) > 1:
        raise RuntimeError(f"nationals are indexed under index key versions {versions}: finish "
                           "`registry keys rotate-index` first (then give the older code that one key)")
    op.drop_column('nationals', 'index_key_version')
