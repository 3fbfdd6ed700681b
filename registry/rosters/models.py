"""Rosters built from an exposure run (SPEC §3, §4.3). Welfare statuses belong to the national in the crisis
(``registry.crises.models``); their names are kept here too for the roster code that reads them."""
from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, SmallInteger, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.crises.models import (CONTACT_CHANNELS, CONTACT_OUTCOMES, WELFARE_STATUSES,  # noqa: F401
                                    WelfareEvent, WelfareStatus)
from registry.extensions import db, sql_in

ROSTER_STATUSES = ("queued", "running", "succeeded", "failed")
# Why a national of the roster has no place; every unplaced national carries one.
UNASSIGNED_REASONS = (
    "no_capacity_in_reach",           # points within max_distance_km, but all full (or too full for the household)
    "beyond_max_distance",            # no considered assembly point within max_distance_km
    "location_unknown",               # only the country is known: nobody can say which point is near
    "household_larger_than_vehicle",  # a household rides together, and it does not fit one vehicle
    "no_assembly_points",             # the roster considered no active point at all
)
# Priority classes (SPEC §4.3 and the roster issue), lower first.
PRIORITIES = {1: "medical_or_disability", 2: "pregnant", 3: "minor_or_elderly", 4: "standard"}


class Roster(db.Model):
    """One assignment of an exposure run's nationals to assembly points and vehicles; kept, numbered per crisis."""

    __tablename__ = "rosters"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(ROSTER_STATUSES)}", name="status"),
        Index("uq_rosters_crisis_id_number", "crisis_id", "number", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("exposure_runs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # The request as resolved: zones, max_ring_km, certainties, assembly_point_ids, vehicle_capacity, max_distance_km.
    params: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    counts: Mapped[dict | None] = mapped_column(JSONB)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RosterPoint(db.Model):
    """An assembly point as the roster saw it (name, capacity, place), with what it was given."""

    __tablename__ = "roster_points"

    roster_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"), primary_key=True)
    assembly_point_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    country: Mapped[str] = mapped_column(String(2))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    capacity: Mapped[int] = mapped_column(Integer)
    # The point's place in the manifests' order (by name): exports sort on it, not on text.
    position: Mapped[int] = mapped_column(Integer, default=0)
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    vehicles: Mapped[int] = mapped_column(Integer, default=0)


class RosterEntry(db.Model):
    """A national of the roster: placed (point, vehicle, seat) or not, with the reason.

    Zone, ring and distance to the area are the exposure row's (run_id, national_id), not copied.
    No foreign keys and no index but the key, for the reason ``Exposure`` has none: a roster writes up to a
    million rows at once, and every lookup names the roster.
    """

    __tablename__ = "roster_entries"
    __table_args__ = (
        CheckConstraint(f"unassigned_reason IN {sql_in(UNASSIGNED_REASONS)}", name="unassigned_reason"),
        CheckConstraint("(assembly_point_id IS NULL) = (unassigned_reason IS NOT NULL)", name="placed_or_reason"),
    )

    roster_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # The household is the exposure row's; this is the household's priority (its most vulnerable member's).
    priority: Mapped[int] = mapped_column(SmallInteger)
    # Position in the roster's order (priority, zone, distance); households are consecutive.
    rank: Mapped[int] = mapped_column(Integer)
    assembly_point_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    vehicle: Mapped[int | None] = mapped_column(Integer)
    seat: Mapped[int | None] = mapped_column(Integer)
    distance_to_point_km: Mapped[float | None] = mapped_column(Float)
    unassigned_reason: Mapped[str | None] = mapped_column(String(32))
