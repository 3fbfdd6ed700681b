"""self check-in answers, self-registration and the verification queue (SPEC §10): owned by registry/checkin

The location source ``self_report`` (a person's own phone), the answers given on check-in pages, and the
self-registrations an officer has to verify, merge or reject.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 08:00:00
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
OLD_SOURCES = "'gps', 'geocoded_city', 'geocoded_address', 'country_centroid'"
NEW_SOURCES = OLD_SOURCES + ", 'self_report'"
# Rows naming nationals get the row-level security of the national tables (migrations 0002, 0004, 0006).
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
            "SELECT 1 FROM nationals n WHERE n.id = national_id))")
TABLES = ("checkin_answers", "self_registrations")


def _sources(sources: str) -> None:
    op.drop_constraint(op.f("ck_nationals_location_source"), "nationals", type_="check")
    op.create_check_constraint(op.f("ck_nationals_location_source"), "nationals", f"location_source IN ({sources})")
    op.drop_constraint(op.f("ck_location_reports_source"), "location_reports", type_="check")
    op.create_check_constraint(op.f("ck_location_reports_source"), "location_reports", f"source IN ({sources})")


def upgrade():
    _sources(NEW_SOURCES)
    op.create_table(
        "checkin_answers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("national_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("household_present", sa.SmallInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("location", geoalchemy2.types.Geometry(geometry_type="POINT", srid=4326, spatial_index=False,
                                                         from_text="ST_GeomFromEWKT", name="geometry"),
                  nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('safe', 'needs_assistance', 'needs_evacuation')",
                           name=op.f("ck_checkin_answers_status")),
        sa.CheckConstraint("household_present >= 0", name=op.f("ck_checkin_answers_household_present")),
        sa.CheckConstraint("accuracy_m >= 0", name=op.f("ck_checkin_answers_accuracy_m")),
        sa.ForeignKeyConstraint(["crisis_id", "national_id"], ["checkin_links.crisis_id", "checkin_links.national_id"],
                                name=op.f("fk_checkin_answers_crisis_id_checkin_links"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_answers")),
    )
    op.create_index("ix_checkin_answers_crisis_id_national_id", "checkin_answers", ["crisis_id", "national_id"])
    op.create_table(
        "self_registrations",
        sa.Column("national_id", sa.Uuid(), nullable=False),
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("passport_holder_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolution", sa.String(length=10), nullable=True),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("resolution IN ('verified', 'merged', 'rejected')",
                           name=op.f("ck_self_registrations_resolution")),
        sa.ForeignKeyConstraint(["national_id"], ["nationals.id"],
                                name=op.f("fk_self_registrations_national_id_nationals"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["crisis_id"], ["crises.id"], name=op.f("fk_self_registrations_crisis_id_crises"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["passport_holder_id"], ["nationals.id"],
                                name=op.f("fk_self_registrations_passport_holder_id_nationals"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["merged_into"], ["nationals.id"],
                                name=op.f("fk_self_registrations_merged_into_nationals"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["resolved_by"], ["users.id"], name=op.f("fk_self_registrations_resolved_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("national_id", name=op.f("pk_self_registrations")),
    )
    op.create_index("ix_self_registrations_crisis_id", "self_registrations", ["crisis_id"])
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY in_scope ON {table} USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")


def downgrade():
    for table in TABLES:
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
        op.execute(f"DROP POLICY in_scope ON {table}")
    op.drop_index("ix_self_registrations_crisis_id", table_name="self_registrations")
    op.drop_table("self_registrations")
    op.drop_index("ix_checkin_answers_crisis_id_national_id", table_name="checkin_answers")
    op.drop_table("checkin_answers")
    # A self-reported point becomes what it was before the source existed: a device's fix.
    op.execute("UPDATE location_reports SET source = 'gps' WHERE source = 'self_report'")
    op.execute("UPDATE nationals SET location_source = 'gps' WHERE location_source = 'self_report'")
    _sources(OLD_SOURCES)
