"""Check-in links (SPEC §10): ``/checkin/{token}``, one per crisis and national.

The token is 128 bits of HMAC-SHA256 (``REGISTRY_CHECKIN_KEY``) over the
crisis, the national and the link's generation, written in base64url: 22
characters, short enough for one SMS, unguessable without the key and not
enumerable (nothing about it counts up). It is derived, so a campaign re-sending
after a crash writes the same link, and never stored: the table keeps its
SHA-256, which finds the link and gives nothing to whoever reads the table.
Bumping the generation (an officer unlocking a link) issues a new token and
retires the old one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import text

from registry.checkin.models import CheckinLink
from registry.extensions import db

TOKEN_BYTES = 16


def token_for(crisis_id: uuid.UUID, national_id: uuid.UUID, generation: int = 0) -> str:
    mac = hmac.new(current_app.config["REGISTRY_CHECKIN_KEY"],
                   f"checkin:{crisis_id}:{national_id}:{generation}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:TOKEN_BYTES]).rstrip(b"=").decode()


def index_of(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def url_for_token(token: str) -> str:
    return f"{current_app.config['REGISTRY_PUBLIC_URL']}/checkin/{token}"


def expiry(now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)) + timedelta(days=current_app.config["REGISTRY_CHECKIN_TTL_DAYS"])


_ENSURE = text("""
INSERT INTO checkin_links (crisis_id, national_id, token_index, expires_at)
SELECT :crisis_id, n, i, :expires_at FROM unnest(CAST(:nationals AS uuid[]), CAST(:indexes AS bytea[])) AS t(n, i)
ON CONFLICT (crisis_id, national_id) DO UPDATE SET expires_at = greatest(checkin_links.expires_at,
                                                                         excluded.expires_at)
RETURNING national_id, generation""")


def ensure_many(crisis_id: uuid.UUID, national_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The link of each national in this crisis (created, or kept and its expiry renewed), as ``{national_id:
    absolute URL}``. One statement, however many."""
    ids = list(national_ids)
    if not ids:
        return {}
    rows = db.session.execute(_ENSURE, {
        "crisis_id": crisis_id, "expires_at": expiry(), "nationals": ids,
        "indexes": [index_of(token_for(crisis_id, n)) for n in ids]}).all()
    # A link issued again since (``reissue``) keeps its generation, and its index with it.
    return {national_id: url_for_token(token_for(crisis_id, national_id, generation))
            for national_id, generation in rows}


def find(token: str) -> CheckinLink | None:
    """The link a token opens, whatever its state (expired, locked: the caller says which)."""
    if not token or len(token) > 64:
        return None
    return db.session.query(CheckinLink).filter(CheckinLink.token_index == index_of(token)).one_or_none()


def reissue(link: CheckinLink) -> str:
    """A new token for the link (unlocking it): the old one stops working. The new absolute URL."""
    link.generation += 1
    link.failed_attempts, link.locked_at = 0, None
    token = token_for(link.crisis_id, link.national_id, link.generation)
    link.token_index, link.expires_at = index_of(token), expiry()
    db.session.flush()
    return url_for_token(token)
