"""exposure statistics: the service's roles may refresh the planner's statistics of the exposure tables

Each run writes up to a couple of million rows under a run id the planner has never seen. Until the table is
analyzed (autovacuum's analyze comes later, or never where it is off), a page of the new run's list was
planned for a few dozen rows: the whole run read by bitmap, joined and sorted for every page, 5-95 s a page
under the mixed load at 10M nationals (``bench/load.py``, ``auto_explain``), where the index in the list's
order (migration 0028) reads 101 rows. ANALYZE needs the tables' owner; this function, owned by it, lets
the worker analyze the two tables a run writes, right after the run committed (``tasks/exposure.py``). It
samples a fixed number of rows (the server's statistics target), whatever the table's size.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 18:00:00
"""
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
SIGNATURE = "analyze_exposures()"


def upgrade():
    op.execute("""
        CREATE FUNCTION analyze_exposures() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        BEGIN
            ANALYZE exposures;
            ANALYZE exposure_counts;
        END
        $$
    """)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade():
    op.execute(f"DROP FUNCTION {SIGNATURE}")
