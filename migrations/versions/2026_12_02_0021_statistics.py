"""migration-profile statistics (SPEC §11): the analyst role, nationals' status history (kept by statement
triggers), and the aggregate functions statistics are read through

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
OLD_ROLES = "'desk', 'embassy', 'coordinator', 'admin', 'auditor'"
NEW_ROLES = "'desk', 'embassy', 'coordinator', 'admin', 'auditor', 'analyst'"

# The dimensions a table may have and how each is computed over ``n`` (nationals), ``d`` (the deployment of the
# day) and ``s`` (the status of the day); a missing value is the category 'unknown'. Must match
# registry/statistics/tables.py DIMENSIONS (a test checks it).
# Five-year bands and 65+: the age in whole years from dates written as numbers (yyyymmdd), looked up in an
# array: about half the time of age() and text formatting per row (bench/stocks.py). ``@day@`` is the day
# as such a number.
BANDS = ", ".join(f"'{a:02d}-{a + 4:02d}'" for a in range(0, 65, 5)) + ", '65+'"
DATE_NUMBER = "(date_part('year', {d}) * 10000 + date_part('month', {d}) * 100 + date_part('day', {d}))::int"
AGE_BAND = ("CASE WHEN n.date_of_birth IS NULL THEN 'unknown' ELSE (ARRAY[" + BANDS + "])[greatest(least((@day@ - "
            + DATE_NUMBER.format(d="n.date_of_birth") + ") / 50000, 13), 0) + 1] END")
DIMENSIONS = {
    "host_country": "coalesce(d.host_country, 'unknown')",
    # The UN M49 sub-region of the host country (e.g. 145 Western Asia), from country_regions (migration 0020).
    "region": "coalesce(r.subregion_code, 'unknown')",
    "sex": "coalesce(n.sex, 'unknown')",
    "age_band": AGE_BAND,
    "occupation": "coalesce(left(d.occupation_isco, 1), 'unknown')",
    "occupation_submajor": "coalesce(left(d.occupation_isco, 2), 'unknown')",
    "sector": "coalesce(nullif(lower(d.sector), ''), 'unknown')",
    "legal_status": "coalesce(d.legal_status, 'unknown')",
    "status": "s.status",
}
# Abroad at the end of a day: the status of that day is one of these (unverified self-registrations are counted,
# SPEC §3; a missing person is still abroad), and a deployment had begun.
ABROAD = "('abroad', 'missing', 'unverified')"
START = "coalesce(d.contract_start, d.created_at::date)"


def _quoted(fragment: str) -> str:
    """``fragment`` inside a single-quoted SQL string (the functions' dynamic statements)."""
    return fragment.replace("'", "''")


def _dimension_case(variable: str) -> str:
    return ("CASE " + variable + " " + " ".join(f"WHEN '{name}' THEN $q${expr}$q$" for name, expr in DIMENSIONS.items())
            + " ELSE NULL END")


# Jurisdiction inside the function as well as in the caller: a session scoped to countries (an embassy
# officer) counts those countries' nationals only, whatever it asks; the analyst's scope is empty (no record
# is theirs to read) and the function is how they get counts, never rows.
SCOPED = ("(coalesce(current_setting('sagip.scope', true), '') IN ('*', '') OR n.jurisdiction_country = ANY("
          "string_to_array(current_setting('sagip.scope', true), ',')))")

STOCKS = f"""
CREATE FUNCTION statistics_stocks(day date, dims text[], countries text[])
RETURNS TABLE (c1 text, c2 text, c3 text, people bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $f$
DECLARE
    exprs text[] := ARRAY[]::text[];
    expr text;
    dim text;
BEGIN
    IF coalesce(array_length(dims, 1), 0) > 3 THEN
        RAISE EXCEPTION 'at most three dimensions';
    END IF;
    FOREACH dim IN ARRAY coalesce(dims, ARRAY[]::text[]) LOOP
        expr := {_dimension_case('dim')};
        IF expr IS NULL THEN
            RAISE EXCEPTION 'unknown dimension %', dim;
        END IF;
        exprs := exprs || replace(expr, '@day@', to_char(day, 'YYYYMMDD'));
    END LOOP;
    WHILE coalesce(array_length(exprs, 1), 0) < 3 LOOP
        exprs := exprs || 'NULL::text'::text;
    END LOOP;
    IF day >= current_date THEN
        -- Today (the default): the current status and deployment are the day's.
        RETURN QUERY EXECUTE format(
            'SELECT (%s)::text, (%s)::text, (%s)::text, count(*) FROM nationals n '
            'JOIN deployments d ON d.national_id = n.id AND d.is_current '
            'LEFT JOIN country_regions r ON r.alpha2 = d.host_country '
            'CROSS JOIN LATERAL (SELECT n.status) s(status) '
            'WHERE n.erased_at IS NULL AND n.status IN {_quoted(ABROAD)} AND {START} <= $1 '
            'AND n.created_at < $1 + 1 AND ($2 IS NULL OR n.jurisdiction_country = ANY($2)) AND {_quoted(SCOPED)} '
            'GROUP BY 1, 2, 3', exprs[1], exprs[2], exprs[3]) USING day, countries;
    ELSE
        RETURN QUERY EXECUTE format(
            'SELECT (%s)::text, (%s)::text, (%s)::text, count(*) FROM nationals n '
            'JOIN LATERAL (SELECT h.status FROM national_status_history h WHERE h.national_id = n.id '
            '              AND h.since < $1 + 1 ORDER BY h.since DESC, h.id DESC LIMIT 1) s ON true '
            'JOIN LATERAL (SELECT * FROM deployments d WHERE d.national_id = n.id AND {START} <= $1 '
            '              ORDER BY {START} DESC, d.created_at DESC LIMIT 1) d ON true '
            'LEFT JOIN country_regions r ON r.alpha2 = d.host_country '
            'WHERE n.erased_at IS NULL AND s.status IN {_quoted(ABROAD)} AND n.created_at < $1 + 1 '
            'AND ($2 IS NULL OR n.jurisdiction_country = ANY($2)) AND {_quoted(SCOPED)} '
            'GROUP BY 1, 2, 3', exprs[1], exprs[2], exprs[3]) USING day, countries;
    END IF;
END
$f$"""

# Flows by month: departures (a deployment beginning), returns (the status becoming returned), repatriations
# (a welfare status becoming repatriated in a crisis, once per person and crisis).
FLOWS = f"""
CREATE FUNCTION statistics_flows(kind text, first_day date, last_day date, dims text[], countries text[])
RETURNS TABLE (month text, c1 text, c2 text, people bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $f$
DECLARE
    exprs text[] := ARRAY[]::text[];
    expr text;
    dim text;
    source text;
BEGIN
    IF coalesce(array_length(dims, 1), 0) > 2 THEN
        RAISE EXCEPTION 'at most two dimensions beside the month';
    END IF;
    FOREACH dim IN ARRAY coalesce(dims, ARRAY[]::text[]) LOOP
        expr := {_dimension_case('dim')};
        IF expr IS NULL OR dim = 'status' THEN
            RAISE EXCEPTION 'unknown dimension %', dim;
        END IF;
        exprs := exprs || replace(expr, '@day@', $q${DATE_NUMBER.format(d='e.day')}$q$);
    END LOOP;
    WHILE coalesce(array_length(exprs, 1), 0) < 2 LOOP
        exprs := exprs || 'NULL::text'::text;
    END LOOP;
    IF kind = 'departures' THEN
        source := 'SELECT d.national_id, {START} AS day, d.id AS deployment_id FROM deployments d';
    ELSIF kind = 'returns' THEN
        source := 'SELECT h.national_id, h.since::date AS day, NULL::uuid AS deployment_id '
                  'FROM national_status_history h WHERE h.status = ''returned''';
    ELSIF kind = 'repatriations' THEN
        source := 'SELECT w.national_id, min(w.created_at)::date AS day, NULL::uuid AS deployment_id '
                  'FROM welfare_events w WHERE w.status = ''repatriated'' GROUP BY w.crisis_id, w.national_id';
    ELSE
        RAISE EXCEPTION 'unknown kind %', kind;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT to_char(e.day, ''YYYY-MM''), (%s)::text, (%s)::text, count(*) FROM (%s) e '
        'JOIN nationals n ON n.id = e.national_id '
        'LEFT JOIN LATERAL (SELECT * FROM deployments d WHERE d.national_id = e.national_id '
        '                   AND (d.id = e.deployment_id OR (e.deployment_id IS NULL AND {START} <= e.day)) '
        '                   ORDER BY (d.id = e.deployment_id) DESC, {START} DESC, d.created_at DESC LIMIT 1) d ON true '
        'LEFT JOIN country_regions r ON r.alpha2 = d.host_country '
        'WHERE e.day BETWEEN $1 AND $2 AND n.erased_at IS NULL '
        'AND ($3 IS NULL OR n.jurisdiction_country = ANY($3)) AND {_quoted(SCOPED)} '
        'GROUP BY 1, 2, 3', exprs[1], exprs[2], source) USING first_day, last_day, countries;
END
$f$"""

STOCKS_SIGNATURE = "statistics_stocks(date, text[], text[])"
FLOWS_SIGNATURE = "statistics_flows(text, date, date, text[], text[])"

# Every status a national takes, from when: written by statement triggers (one INSERT per statement, not per
# row), so a million-row import pays one statement.
HISTORY_INSERTED = """
CREATE FUNCTION national_status_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO national_status_history (national_id, status, since)
    SELECT id, status, created_at FROM new_rows;
    RETURN NULL;
END $$"""
HISTORY_UPDATED = """
CREATE FUNCTION national_status_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO national_status_history (national_id, status, since)
    SELECT n.id, n.status, clock_timestamp() FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status;
    RETURN NULL;
END $$"""


def upgrade():
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN ({NEW_ROLES})")
    op.create_table(
        "national_status_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("national_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["national_id"], ["nationals.id"],
                                name=op.f("fk_national_status_history_national_id_nationals"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_national_status_history")),
    )
    op.create_index("ix_national_status_history_national_id_since", "national_status_history",
                    ["national_id", "since"])
    op.create_index("ix_national_status_history_status_since", "national_status_history", ["status", "since"])
    # A national's deployment of a past day (the functions below): every deployment, not only the current one.
    op.create_index("ix_deployments_national_id", "deployments", ["national_id"])
    # What is known of the past: registered with its status then; a return when it was recorded.
    op.execute("INSERT INTO national_status_history (national_id, status, since) "
               "SELECT id, CASE WHEN status = 'returned' AND returned_at IS NOT NULL THEN 'abroad' ELSE status END, "
               "created_at FROM nationals")
    op.execute("INSERT INTO national_status_history (national_id, status, since) "
               "SELECT id, 'returned', returned_at FROM nationals WHERE status = 'returned' AND returned_at IS NOT NULL")
    op.execute(HISTORY_INSERTED)
    op.execute(HISTORY_UPDATED)
    op.execute("CREATE TRIGGER national_status_inserted AFTER INSERT ON nationals REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION national_status_inserted()")
    op.execute("CREATE TRIGGER national_status_updated AFTER UPDATE ON nationals "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION national_status_updated()")
    op.execute("ALTER TABLE national_status_history ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE national_status_history FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY in_scope ON national_status_history USING (current_setting('sagip.scope', true) = '*' "
               "OR EXISTS (SELECT 1 FROM nationals n WHERE n.id = national_id)) WITH CHECK (true)")
    op.execute(f"GRANT SELECT, INSERT ON national_status_history TO {APP_ROLE}")
    op.execute(STOCKS)
    op.execute(FLOWS)
    for signature in (STOCKS_SIGNATURE, FLOWS_SIGNATURE):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade():
    op.execute(f"DROP FUNCTION {FLOWS_SIGNATURE}")
    op.execute(f"DROP FUNCTION {STOCKS_SIGNATURE}")
    op.execute("DROP TRIGGER national_status_updated ON nationals")
    op.execute("DROP TRIGGER national_status_inserted ON nationals")
    op.execute("DROP FUNCTION national_status_updated()")
    op.execute("DROP FUNCTION national_status_inserted()")
    op.execute(f"REVOKE ALL ON national_status_history FROM {APP_ROLE}")
    op.execute("DROP POLICY in_scope ON national_status_history")
    op.drop_table("national_status_history")
    op.drop_index("ix_deployments_national_id", table_name="deployments")
    op.execute("UPDATE users SET role = 'auditor', active = false WHERE role = 'analyst'")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN ({OLD_ROLES})")
