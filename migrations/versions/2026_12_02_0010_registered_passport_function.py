"""registered passport function: whether a passport is registered, asked across every jurisdiction without
reading any row (row-level security keeps an embassy officer's queries to their own jurisdiction; a duplicate
passport must still be refused, counted and audited as a passport lookup)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 12:00:00
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
SIGNATURE = "registered_passport(varchar, bytea[], uuid)"


def upgrade():
    # SECURITY DEFINER: runs as the tables' owner, past row-level security, and answers one id or null.
    op.execute(f"""
        CREATE FUNCTION {SIGNATURE} RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT id FROM nationals
            WHERE nationality = $1 AND passport_index = ANY($2) AND ($3 IS NULL OR id <> $3)
            LIMIT 1
        $$
    """)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade():
    op.execute(f"DROP FUNCTION {SIGNATURE}")
