"""Message campaigns and their recipients (SPEC §10)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Identity, Index, SmallInteger,
                        String, Uuid, func, text)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db, sql_in

CHANNELS = ("sms", "email")
CAMPAIGN_STATUSES = ("queued", "sending", "completed", "cancelled", "failed")
# queued → sending (claimed by a sender) → submitting (handed to the gateway right now) → sent → delivered;
# or failed (no phone left, refused), skipped (nothing to send to), cancelled (never sent).
RECIPIENT_STATES = ("queued", "sending", "submitting", "sent", "delivered", "failed", "skipped", "cancelled")
# Still to do: a campaign is finished when none of its recipients is in one of these.
OPEN_STATES = ("queued", "sending", "submitting")
# Why a recipient was skipped or failed (``error``): stable codes, never a gateway's text.
REASONS = ("no_phone", "no_email", "opted_out", "refused", "delivery_failed", "no_phone_left", "cancelled")


class Campaign(db.Model):
    """One message to a crisis's exposed people (an audience of its latest exposure run), by SMS and/or email."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(CAMPAIGN_STATUSES)}", name="status"),
        CheckConstraint(f"channels <@ ARRAY{list(CHANNELS)}::varchar[]", name="channels"),
        Index("ix_campaigns_crisis_id_created_at", "crisis_id", "created_at", "id"),
        # Sending campaigns: what the resumer (tasks/campaigns.py) looks at every few seconds.
        Index("ix_campaigns_sending", "status", postgresql_where=text("status IN ('queued', 'sending')")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    crisis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("crises.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the exposure run the audience is drawn from
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(8)))
    # {language: template}; the first key is the fallback after "en".
    templates: Mapped[dict] = mapped_column(JSONB)
    subject: Mapped[str | None] = mapped_column(String(200))
    # {zones, certainty, welfare_status, vulnerability}: lists, empty for no restriction.
    audience: Mapped[dict] = mapped_column(JSONB)
    # The creator's reach (host countries), None for everywhere: the job draws the audience within it.
    jurisdiction: Mapped[list[str] | None] = mapped_column(ARRAY(String(2)))
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    # Counts by state when it finished (while sending, they are counted from the recipients).
    counts: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A sender's sign of life: the resumer re-dispatches a sending campaign whose heartbeat is stale.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignRecipient(db.Model):
    """One national on one channel of a campaign: its state, the phone tried, the gateway's times.

    The id is short (a bigint) because it travels in Kannel's ``dlr-url``.
    """

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        CheckConstraint(f"state IN {sql_in(RECIPIENT_STATES)}", name="state"),
        CheckConstraint(f"channel IN {sql_in(CHANNELS)}", name="channel"),
        Index("uq_campaign_recipients_campaign_id_national_id_channel", "campaign_id", "national_id", "channel",
              unique=True),
        # What senders claim: the open rows of a campaign, in id order.
        Index("ix_campaign_recipients_open", "campaign_id", "id",
              postgresql_where=text("state IN ('queued', 'sending', 'submitting')")),
        Index("ix_campaign_recipients_national_id", "national_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12), default="queued", server_default="queued")
    language: Mapped[str | None] = mapped_column(String(8))
    # The position in the national's phones of the number tried (SMS).
    phone_index: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    parts: Mapped[int | None] = mapped_column(SmallInteger)
    encoding: Mapped[str | None] = mapped_column(String(8))
    # A sender's claim on the row lasts until then; an expired claim is taken over.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(32))
    # Re-sent after a sender died between the gateway's acceptance and its record: it may have gone twice.
    possible_duplicate: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
