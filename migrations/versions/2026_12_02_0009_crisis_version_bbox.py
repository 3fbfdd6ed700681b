"""crisis version bbox: lists show a crisis's bounding box, never its area (RFC 7946 bbox, crossing ±180° as
west > east)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("crisis_versions", sa.Column("bbox", postgresql.ARRAY(sa.Float()), nullable=True))
    # Existing versions: the plain extent, or the one across ±180° where the area has parts on both sides and
    # that box is narrower (the rule of registry.crises.areas.bbox).
    op.execute("""
        UPDATE crisis_versions v SET bbox = CASE
            WHEN ST_XMin(v.geom) <= -180 AND ST_XMax(v.geom) >= 180
                 AND ST_XMax(ST_ShiftLongitude(v.geom)) - ST_XMin(ST_ShiftLongitude(v.geom))
                     < ST_XMax(v.geom) - ST_XMin(v.geom)
            THEN ARRAY[ST_XMin(ST_ShiftLongitude(v.geom)), ST_YMin(v.geom),
                       ST_XMax(ST_ShiftLongitude(v.geom)) - 360, ST_YMax(v.geom)]
            ELSE ARRAY[ST_XMin(v.geom), ST_YMin(v.geom), ST_XMax(v.geom), ST_YMax(v.geom)] END
    """)


def downgrade():
    op.drop_column("crisis_versions", "bbox")
