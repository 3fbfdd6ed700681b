"""Check-in links: one per crisis and national, its token derived, never stored (registry/checkin/links.py)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, SmallInteger, func
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db


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
