"""Check-in links (one per crisis and national, the token derived, never stored: registry/checkin/links.py), the
answers given through them, and self-registrations awaiting an officer (SPEC §10)."""
from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, CheckConstraint, DateTime, Float, ForeignKey, ForeignKeyConstraint, Identity,
                        Index, LargeBinary, SmallInteger, String, Text, Uuid, func)
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db, sql_in


class CheckinLink(db.Model):
    __tablename__ = "checkin_links"
    __table_args__ = (Index("uq_checkin_links_token_index", "token_index", unique=True),)

    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"), primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"), primary_key=True)
    # SHA-256 of the token: a stolen table gives no working link.
    token_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Bumped to issue a new token (an officer unlocks a locked link): the old one stops working.
    generation: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    failed_attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# What a person answers on their check-in page (SPEC §10).
CHECKIN_STATUSES = ("safe", "needs_assistance", "needs_evacuation")
# How an officer settled a self-registration (the verification queue).
RESOLUTIONS = ("verified", "merged", "rejected")


class CheckinAnswer(db.Model):
    """One answer given on a check-in page: kept beside the welfare status and the location report it made,
    purged with its closed crisis (``registry.retention``)."""

    __tablename__ = "checkin_answers"
    __table_args__ = (
        ForeignKeyConstraint(["crisis_id", "national_id"], ["checkin_links.crisis_id", "checkin_links.national_id"],
                             ondelete="CASCADE"),
        CheckConstraint(f"status IN {sql_in(CHECKIN_STATUSES)}", name="status"),
        CheckConstraint("household_present >= 0", name="household_present"),
        CheckConstraint("accuracy_m >= 0", name="accuracy_m"),
        Index("ix_checkin_answers_crisis_id_national_id", "crisis_id", "national_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    crisis_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    national_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20))
    household_present: Mapped[int | None] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(Text)
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SelfRegistration(db.Model):
    """How a self-registered national came in (the crisis whose page they used) and how an officer settled
    them. ``passport_holder_id``: a national who already held the passport number given, when it was
    registered (the self-registration keeps the number encrypted, without its index, until an officer
    merges or rejects it: an anonymous form never learns that a passport is registered)."""

    __tablename__ = "self_registrations"
    __table_args__ = (
        CheckConstraint(f"resolution IN {sql_in(RESOLUTIONS)}", name="resolution"),
        Index("ix_self_registrations_crisis_id", "crisis_id"),
    )

    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"), primary_key=True)
    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"))
    passport_holder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("nationals.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolution: Mapped[str | None] = mapped_column(String(10))
    merged_into: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("nationals.id", ondelete="SET NULL"))
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
