"""reaching the exposed (SPEC §10), what campaigns, replies and check-ins share: the national status
unverified (self-registrations no officer has checked), a crisis's self-registration switch, check-in links
(one per crisis and national) and SMS opt-outs

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
OLD_STATUSES = "'abroad', 'returned', 'missing', 'deceased'"
NEW_STATUSES = "'abroad', 'returned', 'missing', 'deceased', 'unverified'"
# Rows naming nationals get the row-level security of the national tables (migrations 0002, 0004, 0006).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = national_id))")


def upgrade():
    op.drop_constraint(op.f("ck_nationals_status"), "nationals", type_="check")
    op.create_check_constraint(op.f("ck_nationals_status"), "nationals", f"status IN ({NEW_STATUSES})")
    op.add_column("crises", sa.Column("self_registration", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.create_table(
        "checkin_links",
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("national_id", sa.Uuid(), nullable=False),
        # SHA-256 of the token (the token itself is never stored: registry/checkin/links.py).
        sa.Column("token_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("generation", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("failed_attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["crisis_id"], ["crises.id"], name=op.f("fk_checkin_links_crisis_id_crises"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["national_id"], ["nationals.id"],
                                name=op.f("fk_checkin_links_national_id_nationals"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("crisis_id", "national_id", name=op.f("pk_checkin_links")),
    )
    op.create_index("uq_checkin_links_token_index", "checkin_links", ["token_index"], unique=True)
    op.execute("ALTER TABLE checkin_links ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE checkin_links FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON checkin_links USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON checkin_links TO {APP_ROLE}")
    op.create_table(
        "sms_opt_outs",
        # E.164, as nationals' phones are stored.
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_sms_opt_outs")),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON sms_opt_outs TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON sms_opt_outs FROM {APP_ROLE}")
    op.drop_table("sms_opt_outs")
    op.execute(f"REVOKE ALL ON checkin_links FROM {APP_ROLE}")
    op.execute("DROP POLICY in_scope ON checkin_links")
    op.drop_index("uq_checkin_links_token_index", table_name="checkin_links")
    op.drop_table("checkin_links")
    op.drop_column("crises", "self_registration")
    op.execute("UPDATE nationals SET status = 'abroad' WHERE status = 'unverified'")
    op.drop_constraint(op.f("ck_nationals_status"), "nationals", type_="check")
    op.create_check_constraint(op.f("ck_nationals_status"), "nationals", f"status IN ({OLD_STATUSES})")
