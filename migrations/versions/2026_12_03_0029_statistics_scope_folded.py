"""statistics scope folded: the statistics functions give the planner their caller's scope as a constant

At 10M nationals ``statistics_stocks`` (migration 0021) took 37-45 s for today by three dimensions, against
16-18 s for a bare ``GROUP BY`` of the same people (``bench/stocks.py``). Its dynamic statement tested the
caller's scope per row, ``current_setting('sagip.scope', true) IN ('*', '') OR n.jurisdiction_country =
ANY(…)``: a stable function the planner may not fold, whose selectivity it guessed at 0.4% of the registry.
Expecting 39,000 nationals instead of 9.3 million, it looked up each one's deployment by index (27 s of
nested loop) and sorted the groups. The functions now read the scope once and write it into the statement as
a constant (``true`` for everywhere and for the analyst's empty scope, as before; the scope's countries as a
literal array otherwise): the plan is a parallel hash join, 12.5 s (``EXPLAIN ANALYZE`` of both statements,
noted in ``bench/README.md``). Same answers: the rule is the one of migration 0021, written where the planner
can see it.

The functions' text is migration 0021's (loaded from it, not copied), with the scope test replaced.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 15:45:00
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def _statistics_0021():
    path = Path(__file__).with_name("2026_12_02_0021_statistics.py")
    spec = importlib.util.spec_from_file_location("sagip_migration_0021", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Read once per call, in the function: everywhere ('*') and the analyst's empty scope count every national
# (as migration 0021's test did); a scope of countries counts theirs.
SCOPE_DECLARED = """    scope_sql text := CASE
        WHEN coalesce(current_setting('sagip.scope', true), '') IN ('*', '') THEN 'true'
        ELSE format('n.jurisdiction_country = ANY(%L::text[])',
                    string_to_array(current_setting('sagip.scope', true), ','))
        END;
BEGIN"""


def _folded(text: str, last_argument: str, scoped: str) -> str:
    """0021's function ``text`` with its per-row scope test replaced by the scope as a constant."""
    assert scoped in text and f", {last_argument}) USING" in text
    text = text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    text = text.replace(scoped, "%s")
    text = text.replace(f", {last_argument}) USING", f", {last_argument}, scope_sql) USING")
    return text.replace("\nBEGIN", "\n" + SCOPE_DECLARED, 1)


def upgrade():
    m = _statistics_0021()
    scoped = m._quoted(m.SCOPED)
    op.execute(_folded(m.STOCKS, "exprs[3]", scoped))
    op.execute(_folded(m.FLOWS, "source", scoped))


def downgrade():
    m = _statistics_0021()
    op.execute(m.STOCKS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(m.FLOWS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
