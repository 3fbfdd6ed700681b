"""name search memory: the name search function with room for its bitmap, and without JIT

At 10M nationals a common name ("maria luisa santos": 250,000 similar names) made ``search_national_ids``
(migration 0023) take 7.5-11 s a call. Its bitmap of the trigram index's matches did not fit the default
``work_mem`` (4 MB) and went lossy: 56,000 heap pages were rechecked whole, 2.5 million rows scored instead
of the 250,000 matching ones; and JIT compiled the expressions for 0.8 s a call. With 64 MB the bitmap is
exact (about 15 MB for 210,000 pages at 10M) and the call took 2.0-2.8 s (``EXPLAIN ANALYZE`` and the call,
noted in ``bench/README.md``). The memory is per call and only while it runs; 16 searches at once would
hold about 1 GB. Parallel workers are left to the server.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 14:00:00
"""
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

SIGNATURE = "search_national_ids(text, text[], text, text, text, text, int, int)"


def upgrade():
    op.execute(f"ALTER FUNCTION {SIGNATURE} SET work_mem = '64MB'")
    op.execute(f"ALTER FUNCTION {SIGNATURE} SET jit = off")


def downgrade():
    op.execute(f"ALTER FUNCTION {SIGNATURE} RESET work_mem")
    op.execute(f"ALTER FUNCTION {SIGNATURE} RESET jit")
