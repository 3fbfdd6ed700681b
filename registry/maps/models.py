"""``map_cells``: how many nationals each grid cell holds, per zoom, jurisdiction country and filter values;
``map_cell_changes``: what writes changed since the worker last folded them into ``map_cells``.

The changes are appended only by the triggers of migration 0015 on ``nationals``, and folded by
``registry.maps.grid.fold`` (``registry.maps.grid`` explains the design).
"""
from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db


class MapCell(db.Model):
    __tablename__ = "map_cells"
    __table_args__ = (Index("ix_map_cells_empty", "zoom", postgresql_where=text("n = 0")),)

    zoom: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    # The cell: floor(lon / size), floor(lat / size), size = 90 / 2^zoom degrees.
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_country: Mapped[str] = mapped_column(String(2), primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    certainty: Mapped[str] = mapped_column(String(12), primary_key=True)
    # Bit i set: the national has ``VULNERABILITIES[i]``.
    vulnerability_mask: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    sum_lon: Mapped[float] = mapped_column(Float)
    sum_lat: Mapped[float] = mapped_column(Float)


# Rows without a key (a statement's changes per cell, appended; a cell may have many until folded).
map_cell_changes = db.Table(
    "map_cell_changes",
    Column("zoom", SmallInteger, nullable=False), Column("cx", Integer, nullable=False),
    Column("cy", Integer, nullable=False), Column("jurisdiction_country", String(2), nullable=False),
    Column("status", String(12), nullable=False), Column("certainty", String(12), nullable=False),
    Column("vulnerability_mask", SmallInteger, nullable=False), Column("n", Integer, nullable=False),
    Column("sum_lon", Float, nullable=False), Column("sum_lat", Float, nullable=False),
    Index("ix_map_cell_changes_cell", "zoom", "cx", "cy"),
)
