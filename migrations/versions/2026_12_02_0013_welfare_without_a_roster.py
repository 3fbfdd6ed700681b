"""welfare without a roster (SPEC §10): the status needs_evacuation, and each welfare event's source
(hotline, sms, email, self; earlier events were an officer's: hotline)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

OLD = "'unknown', 'contacted', 'safe', 'needs_assistance', 'evacuated', 'repatriated', 'missing'"
NEW = "'unknown', 'contacted', 'safe', 'needs_assistance', 'needs_evacuation', 'evacuated', 'repatriated', 'missing'"
SOURCES = "'hotline', 'sms', 'email', 'self'"


def _statuses(values: str) -> None:
    for table in ("welfare_statuses", "welfare_events"):
        op.drop_constraint(op.f(f"ck_{table}_status"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_status"), table, f"status IN ({values})")


def upgrade():
    _statuses(NEW)
    op.add_column("welfare_events", sa.Column("source", sa.String(length=10), server_default="hotline",
                                              nullable=False))
    op.create_check_constraint(op.f("ck_welfare_events_source"), "welfare_events", f"source IN ({SOURCES})")


def downgrade():
    op.drop_constraint(op.f("ck_welfare_events_source"), "welfare_events", type_="check")
    op.drop_column("welfare_events", "source")
    for table in ("welfare_statuses", "welfare_events"):
        op.execute(f"UPDATE {table} SET status = 'needs_assistance' WHERE status = 'needs_evacuation'")
    _statuses(OLD)
