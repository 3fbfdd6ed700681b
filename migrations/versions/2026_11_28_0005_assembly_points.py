"""assembly points: embassies, shelters, airports, ports and schools with a point and a capacity

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:00:00
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"


def upgrade():
    op.create_table('assembly_points',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('location', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, spatial_index=False,
                                                     from_text='ST_GeomFromEWKT', name='geometry', nullable=False),
              nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('embassy', 'shelter', 'airport', 'port', 'school', 'other')",
                       name=op.f('ck_assembly_points_kind')),
    sa.CheckConstraint('capacity >= 0', name=op.f('ck_assembly_points_capacity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assembly_points'))
    )
    op.create_index('ix_assembly_points_country', 'assembly_points', ['country'], unique=False)
    op.create_index('ix_assembly_points_location', 'assembly_points', ['location'], unique=False,
                    postgresql_using='gist')
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON assembly_points TO {APP_ROLE}")


def downgrade():
    op.execute(f"REVOKE ALL ON assembly_points FROM {APP_ROLE}")
    op.drop_index('ix_assembly_points_location', table_name='assembly_points', postgresql_using='gist')
    op.drop_index('ix_assembly_points_country', table_name='assembly_points')
    op.drop_table('assembly_points')
