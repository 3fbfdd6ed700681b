"""The UN M49 groups of each country, in the database, for statistics grouped by region (SPEC §11)."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db


class CountryRegion(db.Model):
    """One row per country of ``countries``: its M49 code and groups (``registry/data/m49.csv``; Taiwan and
    Kosovo, which M49 does not list apart, in the groups of the area UN statistics count them under).
    Loaded by migration 0020 from ``registry.codes.services.region_of``; reference data, read-only for the app."""

    __tablename__ = "country_regions"

    alpha2: Mapped[str] = mapped_column(String(2), ForeignKey("countries.alpha2", ondelete="CASCADE"),
                                        primary_key=True)
    m49: Mapped[str | None] = mapped_column(String(3))
    region_code: Mapped[str | None] = mapped_column(String(3))
    region_name: Mapped[str | None] = mapped_column(String(100))
    subregion_code: Mapped[str | None] = mapped_column(String(3))
    subregion_name: Mapped[str | None] = mapped_column(String(100))
    intermediate_region_code: Mapped[str | None] = mapped_column(String(3))
    intermediate_region_name: Mapped[str | None] = mapped_column(String(100))
