"""nationals known only by their country: a partial index by jurisdiction for the exposure run

The run adds the nationals of the countries near an area whose only position is their country
(``location_source = 'country_centroid'``, about one in twenty). By ``ix_nationals_jurisdiction_country`` it
read every national of the country to keep those (a bitmap scan of 228k rows for 11k in Dubai at 1M);
this index holds only them.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 12:00:00
"""
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE INDEX ix_nationals_country_only ON nationals (jurisdiction_country) "
               "WHERE location_source = 'country_centroid' AND erased_at IS NULL")


def downgrade():
    op.execute("DROP INDEX ix_nationals_country_only")
