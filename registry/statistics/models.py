"""Every status a national takes, and since when: what stocks on a past day and returns by month are read from.

Written by statement triggers on ``nationals`` (migration 0021), never by the service.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db


class StatusHistory(db.Model):
    __tablename__ = "national_status_history"
    __table_args__ = (
        Index("ix_national_status_history_national_id_since", "national_id", "since"),
        Index("ix_national_status_history_status_since", "status", "since"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    national_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nationals.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
