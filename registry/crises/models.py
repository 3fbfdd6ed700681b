"""Crises, their area versions, exposure runs and the exposure rows (SPEC §3, §4.1)."""
from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, ForeignKeyConstraint,
                        Identity, Index, Integer, SmallInteger, String, Text, Uuid, false, func)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db, sql_in

KINDS = ("earthquake", "typhoon", "flood", "conflict", "civil_unrest", "epidemic", "other")
SEVERITIES = ("low", "moderate", "high", "extreme")
STATUSES = ("active", "closed")
ZONES = ("inside", "ring")
CERTAINTIES = ("high", "possible", "country_only")
RUN_STATUSES = ("queued", "running", "succeeded", "failed")
# A national's welfare in a crisis (SPEC §4): whoever learns it (a roster's call list, the hotline without a
# roster, an SMS reply, the person's own check-in) records it here.
WELFARE_STATUSES = ("unknown", "contacted", "safe", "needs_assistance", "needs_evacuation", "evacuated",
                    "repatriated", "missing")
# Nobody needs calling any more: the hotline's list leaves them out.
SETTLED_STATUSES = ("safe", "evacuated", "repatriated")
# Where the news came from (SPEC §10): an officer on the phone, an SMS reply, an email reply, the person.
WELFARE_SOURCES = ("hotline", "sms", "email", "self")
CONTACT_CHANNELS = ("phone", "sms", "messaging_app", "email", "in_person", "via_employer", "via_next_of_kin",
                    "other")
CONTACT_OUTCOMES = ("reached", "no_answer", "busy", "voicemail", "wrong_number", "unreachable", "other")


class Crisis(db.Model):
    __tablename__ = "crises"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(KINDS)}", name="kind"),
        CheckConstraint(f"severity IN {sql_in(SEVERITIES)}", name="severity"),
        CheckConstraint(f"status IN {sql_in(STATUSES)}", name="status"),
        Index("ix_crises_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Whether nationals not yet registered may register themselves during this crisis (SPEC §10).
    self_registration: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class CrisisVersion(db.Model):
    """One version of a crisis's area and rings; every version is kept."""

    __tablename__ = "crisis_versions"

    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The area as stored: valid, counter-clockwise shells, cut at ±180°.
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)
    zones_km: Mapped[list[float]] = mapped_column(ARRAY(Float), default=list, server_default="{}")
    # How the area was given (type, and for CAP/feature inputs their identifiers), and any repair made.
    source: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    vertices: Mapped[int] = mapped_column(Integer)
    # [west, south, east, north] as RFC 7946 writes it (west > east across ±180°): lists show it, not the area.
    bbox: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CrisisAreaPart(db.Model):
    """The area cut by ST_Subdivide into indexed pieces: what exposure runs join against."""

    __tablename__ = "crisis_area_parts"
    __table_args__ = (
        ForeignKeyConstraint(["crisis_id", "version"], ["crisis_versions.crisis_id", "crisis_versions.version"],
                             ondelete="CASCADE"),
        Index("ix_crisis_area_parts_crisis_id_version", "crisis_id", "version"),
        Index("ix_crisis_area_parts_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    crisis_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)


class ExposureRun(db.Model):
    __tablename__ = "exposure_runs"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(RUN_STATUSES)}", name="status"),
        ForeignKeyConstraint(["crisis_id", "version"], ["crisis_versions.crisis_id", "crisis_versions.version"],
                             ondelete="CASCADE"),
        Index("ix_exposure_runs_crisis_id_version", "crisis_id", "version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    crisis_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    counts: Mapped[dict | None] = mapped_column(JSONB)
    # Whether ``ExposureCount`` holds the run's counts whole (migration 0031): written by the run, taken away
    # by an erasure of someone it listed.
    counts_kept: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Exposure(db.Model):
    """A national in a run's zones, as computed at that moment (names and contacts are read live).

    No foreign keys: a run writes up to hundreds of thousands of rows in one statement, and a key
    check per row costs a third of it (bench/exposure.py). The run writes only ids it just read
    from ``nationals`` under its own run id; nationals are never deleted (erasure keeps a stub),
    and neither are crises or runs (a crisis is closed).
    """

    __tablename__ = "exposures"
    __table_args__ = (
        CheckConstraint(f"zone IN {sql_in(ZONES)}", name="zone"),
        CheckConstraint(f"certainty IN {sql_in(CERTAINTIES)}", name="certainty"),
        Index("ix_exposures_national_id", "national_id"),
        # A page of a list (by distance, then id: ``listing._BY_DISTANCE``) read from here in order, LIMIT
        # rows, instead of sorting the whole run for every page (migration 0028).
        Index("ix_exposures_run_id_distance", "run_id", "distance_km", "national_id"),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    zone: Mapped[str] = mapped_column(String(10))
    ring_km: Mapped[float | None] = mapped_column(Float)
    distance_km: Mapped[float] = mapped_column(Float)
    certainty: Mapped[str] = mapped_column(String(15))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    location_source: Mapped[str | None] = mapped_column(String(20))
    location_precision_m: Mapped[float | None] = mapped_column(Float)
    location_age_days: Mapped[int | None] = mapped_column(Integer)
    # As of the run, for rosters (registry/rosters): the household, and the priority class of the
    # national's vulnerabilities and age (1 medical or disability … 4 none; exposure.PRIORITY_SQL).
    household_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    priority: Mapped[int | None] = mapped_column(SmallInteger)


class ExposureCount(db.Model):
    """How many of a run's rows fall in one bucket of the filters a list counts by, per jurisdiction (a
    caller's reach is made of jurisdictions), as of the run (migration 0031): written by the run, summed by
    ``registry.crises.listing.counts``. Deleted with the rows of the runs an erasure touched."""

    __tablename__ = "exposure_counts"
    __table_args__ = (Index("ix_exposure_counts_run_id", "run_id"),)
    __mapper_args__ = {"primary_key": ["run_id", "jurisdiction_country", "zone", "ring_km", "certainty", "priority",
                                       "city"]}

    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    jurisdiction_country: Mapped[str | None] = mapped_column(String(2))
    zone: Mapped[str] = mapped_column(String(10))
    ring_km: Mapped[float | None] = mapped_column(Float)
    certainty: Mapped[str] = mapped_column(String(15))
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    city: Mapped[str | None] = mapped_column(String(200))
    n: Mapped[int] = mapped_column(Integer)


class WelfareStatus(db.Model):
    """A national's welfare in one crisis: it outlives any roster of that crisis."""

    __tablename__ = "welfare_statuses"
    __table_args__ = (CheckConstraint(f"status IN {sql_in(WELFARE_STATUSES)}", name="status"),)

    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"), primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    contact_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_contact_outcome: Mapped[str | None] = mapped_column(String(20))
    # Reached at least once in this crisis (a contact with outcome "reached").
    reached: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    updated_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WelfareEvent(db.Model):
    """The history: every status change or contact attempt, by whom, from which source, through which roster
    (none: the hotline without a roster, a reply, a check-in)."""

    __tablename__ = "welfare_events"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(WELFARE_STATUSES)}", name="status"),
        CheckConstraint(f"source IN {sql_in(WELFARE_SOURCES)}", name="source"),
        CheckConstraint(f"contact_channel IN {sql_in(CONTACT_CHANNELS)}", name="contact_channel"),
        CheckConstraint(f"contact_outcome IN {sql_in(CONTACT_OUTCOMES)}", name="contact_outcome"),
        Index("ix_welfare_events_crisis_id_national_id", "crisis_id", "national_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"))
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"))
    roster_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rosters.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(10), default="hotline", server_default="hotline")
    previous_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    contact_channel: Mapped[str | None] = mapped_column(String(20))
    contact_outcome: Mapped[str | None] = mapped_column(String(20))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CallClaim(db.Model):
    """The hotline operator calling a person of a crisis right now: one operator per person (the key), until
    ``expires_at`` (an abandoned claim comes back) or the attempt is recorded (the claim goes)."""

    __tablename__ = "call_claims"
    __table_args__ = (Index("ix_call_claims_operator_id", "operator_id"),)

    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"), primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"), primary_key=True)
    operator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
