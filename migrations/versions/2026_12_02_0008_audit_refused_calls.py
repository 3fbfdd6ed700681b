"""audit refused calls: 401s and 429s counted per client address, user, status and minute (one row, not one
event per call); the sealing task folds finished minutes into audit events

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"


def upgrade():
    op.create_table(
        "audit_refused_calls",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "client", "actor_id", "status", name=op.f("pk_audit_refused_calls")),
    )
    # The API counts (insert or add one); the sealing task folds and deletes.
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON audit_refused_calls TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON audit_refused_calls FROM {APP_ROLE}")
    op.drop_table("audit_refused_calls")
