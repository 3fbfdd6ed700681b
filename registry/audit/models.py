"""The audit trail: who did what to which records, when and why; never the personal data itself."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, LargeBinary, SmallInteger, String, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db


class AuditEvent(db.Model):
    """One audited action. ``chain_seq`` / ``chain_hash`` are set when the event is sealed.

    The application's database role may insert and read events and set the
    two chain columns once; it may not change or delete anything else.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_object_ids", "object_ids", postgresql_using="gin"),
        Index("uq_audit_events_chain_seq", "chain_seq", unique=True),
        Index("ix_audit_events_unsealed", "id", postgresql_where=text("chain_seq IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("clock_timestamp()"))
    # No foreign key: the trail outlives users and records.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(80))
    # ok, denied (403), not_found (404), unauthenticated (401), rate_limited (429), invalid (4xx)
    outcome: Mapped[str] = mapped_column(String(20))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default="{}")
    result_count: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String(200))
    # Non-personal context only: which filters were used, the HTTP status, the client address.
    details: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    chain_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class AuditSeal(db.Model):
    """A checkpoint of the chain: events up to ``through_seq`` end in ``head_hash``.

    Seals make a truncated trail visible: the chain must reach the last seal.
    """

    __tablename__ = "audit_seals"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    through_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    events: Mapped[int] = mapped_column(Integer)
    sealed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("clock_timestamp()"))


class RefusedCalls(db.Model):
    """Calls refused before anyone was known (401) or for going too fast (429), counted per client address,
    user (the nil UUID when none), status and minute: one row however many calls. The sealing task folds
    each finished minute into one audit event (``audit.services.fold_refused_calls``)."""

    __tablename__ = "audit_refused_calls"

    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
