"""What arrives by SMS: opt-outs (``STOP``), which later campaigns honour."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from registry.extensions import db


class OptOut(db.Model):
    """A phone number (E.164) that asked for no more messages."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
