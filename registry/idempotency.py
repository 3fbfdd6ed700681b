"""``Idempotency-Key`` on creating calls: the same key and body give the same answer once."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from flask import request
from sqlalchemy import DateTime, ForeignKey, Integer, String, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.errors import IdempotencyMismatch, Unprocessable
from registry.extensions import db


class IdempotencyKey(db.Model):
    """The stored answer of a creating call: its status and the created record's id, never its data."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise Unprocessable("Idempotency-Key must be 1 to 200 printable characters.",
                            errors={"Idempotency-Key": ["1 to 200 printable characters."]})
    return key


def stored_answer(user_id: uuid.UUID, key: str, fingerprint: str) -> tuple[int, dict] | None:
    """The earlier answer for this key, or None. :raises IdempotencyMismatch: another request used the key."""
    row = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                         IdempotencyKey.key == key))
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyMismatch("This Idempotency-Key was used with a different request.")
    return row.status_code, row.response


def remember(user_id: uuid.UUID, key: str, fingerprint: str, status_code: int, response: dict) -> None:
    db.session.add(IdempotencyKey(user_id=user_id, key=key, request_hash=fingerprint,
                                  status_code=status_code, response=response))
    db.session.flush()


def _request_key() -> tuple[str, str] | None:
    """(the current request's Idempotency-Key, its fingerprint), or None without one. :raises Unprocessable:"""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    return check_key(key), request_fingerprint(request.method, request.path, request.get_data(cache=True))


def earlier_answer(user_id: uuid.UUID) -> tuple[int, dict] | None:
    """What the current request's key answered before, or None (no key, or its first use).
    :raises Unprocessable, IdempotencyMismatch:"""
    found = _request_key()
    return stored_answer(user_id, *found) if found else None


def remember_answer(user_id: uuid.UUID, status_code: int, response: dict) -> None:
    """Keep the answer under the current request's key, if it sent one."""
    found = _request_key()
    if found:
        remember(user_id, *found, status_code, response)
