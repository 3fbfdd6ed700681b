"""name search close first: the name search function takes the least word similarity of the matches it reads

At 10M nationals a common name ("maria luisa santos") is similar (word similarity 0.6, pg_trgm's default and
the search's rule) to 250,000 names: scoring them all to rank 20 read 210,000 heap pages, 2-2.8 s a call,
and the mixed load at 10M did not hold (``bench/load.py``). Every name at least 0.9 similar ranks before
every name below it, so when the close ones fill a page they are that page: the service asks for them first
(``registry.nationals.services._search_by_name``) and for the 0.6 ones only when they do not, with the number
of close matches given as a lower bound of the total. ``min_score`` sets ``pg_trgm.word_similarity_threshold``
(what ``%>`` and the trigram index test) for the call only: the function's own SET restores it on return. The
caller's reach is applied as in migration 0023; the memory and JIT settings are migration 0027's.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 17:30:00
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
OLD_SIGNATURE = "search_national_ids(text, text[], text, text, text, text, int, int)"
SIGNATURE = "search_national_ids(text, text[], text, text, text, text, int, int, real)"
SCOPE = ("(current_setting('sagip.scope', true) = '*' OR n.jurisdiction_country = ANY ("
         "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")


def upgrade():
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    # The filters of ``registry.nationals.services._filtered``: current deployment's host country and city,
    # status, vulnerability. Ordered as the service orders a search: best word similarity first, then id.
    op.execute(f"""
        CREATE FUNCTION search_national_ids(key text, countries text[], want_host text, want_city text,
                                            want_status text, want_vulnerability text, lim int, off int,
                                            min_score real)
        RETURNS TABLE (national_id uuid, score real, total bigint)
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = public SET work_mem = '64MB' SET jit = off
        SET pg_trgm.word_similarity_threshold = 0.6 AS $$
        BEGIN
            PERFORM set_config('pg_trgm.word_similarity_threshold', min_score::text, true);
            RETURN QUERY
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
            LIMIT lim OFFSET off;
        END
        $$
    """)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade():
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    for name in ("2026_12_02_0023_name_search_function", "2026_12_03_0027_name_search_memory"):
        spec = importlib.util.spec_from_file_location(f"sagip_migration_{name[11:15]}", Path(__file__).with_name(
            f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.upgrade()  # the function of 0023 with the settings of 0027
