"""exposure pages by distance: an index in the order a list is paged

A page of an exposure list (``registry.crises.listing.page``: the run's rows by distance, then national id,
after a keyset cursor) sorted the whole run for every page: at 1M nationals a page of a 112,000-row run took
5 s at p50 under the mixed load (``bench/load.py``), at 10M a run holds 1.7M rows. With the run's rows in
this order in an index, a page reads its LIMIT rows from the cursor on (a top-N index scan), whatever the
run's size. The run's INSERT pays for it (an index entry per row, in distance order within the run):
measured by ``bench/exposure.py``, noted in ``bench/README.md``.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 14:10:00
"""
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_exposures_run_id_distance", "exposures", ["run_id", "distance_km", "national_id"])


def downgrade():
    op.drop_index("ix_exposures_run_id_distance", table_name="exposures")
