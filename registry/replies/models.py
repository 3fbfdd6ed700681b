"""What arrives by SMS: every reply as it came and what was done with it (the inbox), and opt-outs
(``STOP``), which later campaigns honour."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db, sql_in

# What the hook did with a reply (SPEC §10):
# applied        the keyword became the welfare status of the one person the number belongs to (a contact
#                attempt recorded with it); or an officer assigned the reply to a person
# needs_review   a person has to read it: a number several exposed people share, one person exposed in
#                several active crises, a known number of someone exposed in no active crisis, or text
#                that is no keyword (kept as a note and a contact attempt, the status left alone)
# unknown_number no national has this number
# opted_out      STOP: no more campaign messages to this number
# opted_in       START: the number's opt-out lifted
OUTCOMES = ("applied", "needs_review", "unknown_number", "opted_out", "opted_in")
REVIEW_REASONS = ("shared_number", "several_crises", "not_exposed", "free_text", "note")


class OptOut(db.Model):
    """A phone number (E.164) that asked for no more messages."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SmsReply(db.Model):
    """One SMS received through the hook, never dropped: its sender, text, what it was read as, whom it was
    matched to and what was done; ``handled_at`` empty while a person still has to look at it.

    ``national_ids`` are the people the number matched (the exposed ones, else every holder of the number),
    ``crisis_ids`` the active crises they were exposed in: row-level security lets an embassy officer see a
    reply when one of those people is in their jurisdiction; a reply that matched nobody is the
    coordinators' and admins' alone (SPEC §4).
    """

    __tablename__ = "sms_replies"
    __table_args__ = (
        CheckConstraint(f"outcome IN {sql_in(OUTCOMES)}", name="outcome"),
        CheckConstraint(f"review_reason IN {sql_in(REVIEW_REASONS)}", name="review_reason"),
        Index("ix_sms_replies_received_at_id", "received_at", "id"),
        # The inbox: what a person still has to read, newest first.
        Index("ix_sms_replies_unhandled", "received_at", "id", postgresql_where=text("handled_at IS NULL")),
        Index("ix_sms_replies_crisis_ids", "crisis_ids", postgresql_using="gin"),
        Index("ix_sms_replies_national_ids", "national_ids", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # E.164 when the sender is a number (normalised), else the sender as the gateway gave it.
    phone: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    # The keyword recognised (normalised: upper case, no accents), and the status it stands for.
    keyword: Mapped[str | None] = mapped_column(String(40))
    welfare_status: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    review_reason: Mapped[str | None] = mapped_column(String(20))
    # Where it was recorded (by the hook, or an officer's assignment).
    crisis_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"))
    national_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"))
    national_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default="{}")
    crisis_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default="{}")
    handled_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
