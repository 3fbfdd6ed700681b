"""Assembly points: embassies, shelters, airports, ports and schools where people gather to be moved."""
from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import Boolean, CheckConstraint, DateTime, Index, Integer, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db, sql_in

KINDS = ("embassy", "shelter", "airport", "port", "school", "other")


class AssemblyPoint(db.Model):
    __tablename__ = "assembly_points"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(KINDS)}", name="kind"),
        CheckConstraint("capacity >= 0", name="capacity"),
        Index("ix_assembly_points_location", "location", postgresql_using="gist"),
        Index("ix_assembly_points_country", "country"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    capacity: Mapped[int] = mapped_column(Integer)
    country: Mapped[str] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
