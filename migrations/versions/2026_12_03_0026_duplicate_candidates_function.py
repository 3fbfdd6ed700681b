"""duplicate candidates function: the likely duplicates of a registration by their indexes, at any size

A registration reports the visible nationals with the same names and birth date, or sharing a phone
(``registry.nationals.services._duplicates``). Two things made that a scan of the registry at 10M nationals:
with a LIMIT the planner expected the phone test to match 0.5% of the rows (phones are all different: there
are no statistics for their elements) and read the table for the first 20 (8.7 s); and under row-level
security (an embassy officer's transaction) ``&&`` is not LEAKPROOF, so the phones' GIN index may not be used
before the policy (4.3 s: a parallel scan of the table for the 2.3M nationals of AE). This function runs as
the tables' owner, applies the caller's reach and the transaction's ``sagip.scope`` itself (as
``search_national_ids``, migration 0023), and gathers the candidates in a materialized CTE, planned for all
its rows (the two indexes), before the LIMIT, without parallel workers or JIT. It answers ids and the
reasons, never a row.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 08:00:00
"""
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
SIGNATURE = "duplicate_national_ids(date, text, varchar[], text[], uuid, int)"
SCOPE = ("(current_setting('sagip.scope', true) = '*' OR n.jurisdiction_country = ANY ("
         "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")


def upgrade():
    op.execute(f"""
        CREATE FUNCTION duplicate_national_ids(birth date, key text, numbers varchar[], countries text[],
                                               excluded uuid, lim int)
        RETURNS TABLE (national_id uuid, same_person boolean, same_phone boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
        -- The phone test's estimate (0.5% of the registry) would also start parallel workers and JIT for a
        -- statement that reads a few index pages (2 ms alone, 50-100 ms with them).
        SET max_parallel_workers_per_gather = 0 SET jit = off AS $$
            WITH candidates AS MATERIALIZED (
                SELECT n.id, coalesce(n.date_of_birth = birth AND n.search_name = key, false) AS same_person,
                       coalesce(n.phones && numbers, false) AS same_phone
                FROM nationals n
                WHERE (n.date_of_birth = birth AND n.search_name = key OR n.phones && numbers)
                  AND n.erased_at IS NULL AND (excluded IS NULL OR n.id <> excluded)
                  AND (countries IS NULL OR n.jurisdiction_country = ANY(countries)) AND {SCOPE}
            )
            SELECT id, same_person, same_phone FROM candidates LIMIT lim
        $$
    """)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade():
    op.execute(f"DROP FUNCTION {SIGNATURE}")
