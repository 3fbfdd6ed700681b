"""SMS replies and the inbox (SPEC §10): every reply received by the hook, what it was read as, whom it was
matched to, what was done, and who handled it

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 08:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
OUTCOMES = "'applied', 'needs_review', 'unknown_number', 'opted_out', 'opted_in'"
REVIEW_REASONS = "'shared_number', 'several_crises', 'not_exposed', 'free_text', 'note'"
# A reply follows the row-level security of the people it matched (migration 0002's rule on nationals, applied
# inside the EXISTS): an embassy officer sees it when one of them is theirs; a reply that matched nobody only
# unscoped roles (coordinators, admins; the hook and workers).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = ANY (national_ids)))")


def upgrade():
    op.create_table(
        "sms_replies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("keyword", sa.String(length=40), nullable=True),
        sa.Column("welfare_status", sa.String(length=20), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("review_reason", sa.String(length=20), nullable=True),
        sa.Column("crisis_id", sa.Uuid(), nullable=True),
        sa.Column("national_id", sa.Uuid(), nullable=True),
        sa.Column("national_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("crisis_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("handled_by", sa.Uuid(), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"outcome IN ({OUTCOMES})", name=op.f("ck_sms_replies_outcome")),
        sa.CheckConstraint(f"review_reason IN ({REVIEW_REASONS})", name=op.f("ck_sms_replies_review_reason")),
        sa.ForeignKeyConstraint(["crisis_id"], ["crises.id"], name=op.f("fk_sms_replies_crisis_id_crises"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["national_id"], ["nationals.id"], name=op.f("fk_sms_replies_national_id_nationals"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["handled_by"], ["users.id"], name=op.f("fk_sms_replies_handled_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_replies")),
    )
    op.create_index("ix_sms_replies_received_at_id", "sms_replies", ["received_at", "id"])
    op.create_index("ix_sms_replies_unhandled", "sms_replies", ["received_at", "id"],
                    postgresql_where=sa.text("handled_at IS NULL"))
    op.create_index("ix_sms_replies_crisis_ids", "sms_replies", ["crisis_ids"], postgresql_using="gin")
    op.create_index("ix_sms_replies_national_ids", "sms_replies", ["national_ids"], postgresql_using="gin")
    op.execute("ALTER TABLE sms_replies ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE sms_replies FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON sms_replies USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON sms_replies TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON sms_replies FROM {APP_ROLE}")
    op.execute("DROP POLICY in_scope ON sms_replies")
    op.drop_index("ix_sms_replies_national_ids", table_name="sms_replies", postgresql_using="gin")
    op.drop_index("ix_sms_replies_crisis_ids", table_name="sms_replies", postgresql_using="gin")
    op.drop_index("ix_sms_replies_unhandled", table_name="sms_replies", postgresql_where=sa.text("handled_at IS NULL"))
    op.drop_index("ix_sms_replies_received_at_id", table_name="sms_replies")
    op.drop_table("sms_replies")
