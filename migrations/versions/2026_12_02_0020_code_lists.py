"""code lists (SPEC §11): the UN M49 groups of each country (country_regions), so that statistics can be
grouped by region in SQL; owned by registry/codes

The rows come from ``registry.codes.services.region_of`` (registry/data/m49.csv, the one source of the
``regions`` code list too); a test checks the table and the list agree.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
LEVELS = ("region", "subregion", "intermediate_region")


def upgrade():
    op.create_table(
        'country_regions',
        sa.Column('alpha2', sa.String(length=2), nullable=False),
        sa.Column('m49', sa.String(length=3), nullable=True),
        *[column for level in LEVELS for column in (sa.Column(f'{level}_code', sa.String(length=3), nullable=True),
                                                    sa.Column(f'{level}_name', sa.String(length=100), nullable=True))],
        sa.ForeignKeyConstraint(['alpha2'], ['countries.alpha2'], name=op.f('fk_country_regions_alpha2_countries'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('alpha2', name=op.f('pk_country_regions')),
    )
    _load()
    op.execute(f"GRANT SELECT ON country_regions TO {APP_ROLE}")


def _load():
    from registry.codes.services import region_of

    conn = op.get_bind()
    countries = [row[0] for row in conn.execute(sa.text("SELECT alpha2 FROM countries ORDER BY alpha2"))]
    table = sa.table('country_regions', sa.column('alpha2'), sa.column('m49'),
                     *[sa.column(f'{level}_{part}') for level in LEVELS for part in ('code', 'name')])
    rows = []
    for alpha2 in countries:
        item = region_of(alpha2) or {}
        row = {"alpha2": alpha2, "m49": item.get("m49")}
        for level in LEVELS:
            group = item.get(level) or {}
            row[f"{level}_code"], row[f"{level}_name"] = group.get("code"), group.get("name")
        rows.append(row)
    op.bulk_insert(table, rows)


def downgrade():
    op.drop_table('country_regions')
