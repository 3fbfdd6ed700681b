"""the hotline's call claims: which operator is calling which person of a crisis, until when

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
# Rows naming nationals get the row-level security of the national tables (migrations 0002, 0004, 0006).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = national_id))")


def upgrade():
    op.create_table(
        "call_claims",
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("national_id", sa.Uuid(), nullable=False),
        sa.Column("operator_id", sa.Uuid(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["crisis_id"], ["crises.id"], name=op.f("fk_call_claims_crisis_id_crises"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["national_id"], ["nationals.id"], name=op.f("fk_call_claims_national_id_nationals"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_call_claims_operator_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("crisis_id", "national_id", name=op.f("pk_call_claims")),
    )
    op.create_index("ix_call_claims_operator_id", "call_claims", ["operator_id"])
    op.execute("ALTER TABLE call_claims ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE call_claims FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON call_claims USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON call_claims TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON call_claims FROM {APP_ROLE}")
    op.execute("DROP POLICY in_scope ON call_claims")
    op.drop_index("ix_call_claims_operator_id", table_name="call_claims")
    op.drop_table("call_claims")
