"""message campaigns and their recipients (SPEC §10): owned by registry/campaigns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
# Rows naming nationals get the row-level security of the national tables (migrations 0002, 0004, 0006, 0014).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = national_id))")
CAMPAIGN_STATUSES = "'queued', 'sending', 'completed', 'cancelled', 'failed'"
RECIPIENT_STATES = "'queued', 'sending', 'submitting', 'sent', 'delivered', 'failed', 'skipped', 'cancelled'"


def upgrade():
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("channels", postgresql.ARRAY(sa.String(length=8)), nullable=False),
        sa.Column("templates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("audience", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("jurisdiction", postgresql.ARRAY(sa.String(length=2)), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="queued", nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({CAMPAIGN_STATUSES})", name=op.f("ck_campaigns_status")),
        sa.CheckConstraint("channels <@ ARRAY['sms', 'email']::varchar[]", name=op.f("ck_campaigns_channels")),
        sa.ForeignKeyConstraint(["crisis_id"], ["crises.id"], name=op.f("fk_campaigns_crisis_id_crises"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_campaigns_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_campaigns_job_id_jobs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_crisis_id_created_at", "campaigns", ["crisis_id", "created_at", "id"])
    op.create_index("ix_campaigns_sending", "campaigns", ["status"],
                    postgresql_where=sa.text("status IN ('queued', 'sending')"))
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON campaigns TO {APP_ROLE}")

    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("national_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), server_default="queued", nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("phone_index", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("parts", sa.SmallInteger(), nullable=True),
        sa.Column("encoding", sa.String(length=8), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=32), nullable=True),
        sa.Column("possible_duplicate", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint(f"state IN ({RECIPIENT_STATES})", name=op.f("ck_campaign_recipients_state")),
        sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f("ck_campaign_recipients_channel")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_campaign_recipients_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["national_id"], ["nationals.id"],
                                name=op.f("fk_campaign_recipients_national_id_nationals"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
    )
    op.create_index("uq_campaign_recipients_campaign_id_national_id_channel", "campaign_recipients",
                    ["campaign_id", "national_id", "channel"], unique=True)
    op.create_index("ix_campaign_recipients_open", "campaign_recipients", ["campaign_id", "id"],
                    postgresql_where=sa.text("state IN ('queued', 'sending', 'submitting')"))
    op.create_index("ix_campaign_recipients_national_id", "campaign_recipients", ["national_id"])
    op.execute("ALTER TABLE campaign_recipients ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE campaign_recipients FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON campaign_recipients USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON campaign_recipients TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE campaign_recipients_id_seq TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON SEQUENCE campaign_recipients_id_seq FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON campaign_recipients FROM {APP_ROLE}")
    op.execute("DROP POLICY in_scope ON campaign_recipients")
    op.drop_index("ix_campaign_recipients_national_id", table_name="campaign_recipients")
    op.drop_index("ix_campaign_recipients_open", table_name="campaign_recipients")
    op.drop_index("uq_campaign_recipients_campaign_id_national_id_channel", table_name="campaign_recipients")
    op.drop_table("campaign_recipients")
    op.execute(f"REVOKE ALL ON campaigns FROM {APP_ROLE}")
    op.drop_index("ix_campaigns_sending", table_name="campaigns")
    op.drop_index("ix_campaigns_crisis_id_created_at", table_name="campaigns")
    op.drop_table("campaigns")
