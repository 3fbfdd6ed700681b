"""name search function: a name search of a scoped caller (an embassy officer) by the trigram index

pg_trgm's operators are not LEAKPROOF, so under row-level security (the embassy officers' transactions,
bound by the policies) the planner may not use the trigram index before the policy: a name search read
the whole jurisdiction (1.7 s for 165k nationals of AE at 1M, ``bench/load.py``). This function runs as the
tables' owner, past the policy, and applies the same rule itself twice, as ``map_points`` does (migration
0015): the caller's reach given by the service (``countries``, NULL for everywhere) and the transaction's
``sagip.scope`` the policy reads. It answers ids, scores and the number of matches, never a row.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 12:30:00
"""
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
SIGNATURE = "search_national_ids(text, text[], text, text, text, text, int, int)"
SCOPE = ("(current_setting('sagip.scope', true) = '*' OR n.jurisdiction_country = ANY ("
         "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")


def upgrade():
    # The filters of ``registry.nationals.services._filtered``: current deployment's host country and city,
    # status, vulnerability. Ordered as the service orders a search: best word similarity first, then id.
    op.execute(f"""
        CREATE FUNCTION search_national_ids(key text, countries text[], want_host text, want_city text,
                                            want_status text, want_vulnerability text, lim int, off int)
        RETURNS TABLE (national_id uuid, score real, total bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT n.id, word_similarity(key, n.search_name), count(*) OVER ()
            FROM nationals n
            WHERE n.search_name %> key AND n.erased_at IS NULL
              AND (countries IS NULL OR n.jurisdiction_country = ANY(countries)) AND {SCOPE}
              AND (want_status IS NULL OR n.status = want_status)
              AND (want_vulnerability IS NULL OR n.vulnerabilities @> ARRAY[want_vulnerability]::varchar[])
              AND (want_host IS NULL AND want_city IS NULL OR EXISTS (
                      SELECT 1 FROM deployments d WHERE d.national_id = n.id AND d.is_current
                      AND (want_host IS NULL OR d.host_country = want_host)
                      AND (want_city IS NULL OR lower(d.city) = lower(want_city))))
            ORDER BY 2 DESC, 1
            LIMIT lim OFFSET off
        $$
    """)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade():
    op.execute(f"DROP FUNCTION {SIGNATURE}")
