"""Welfare status: one per national and crisis (it survives a rebuilt roster), with its history.

Set through a roster entry by coordinators, admins and embassy officers in
whose jurisdiction the national is (others get a 404, as for any record they
may not see). Each update may record a contact attempt, so a hotline can work
the roster as a call list: who has never been reached, who needs help.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from registry.errors import Unprocessable
from registry.extensions import db
from registry.rosters.entries import get_entry
from registry.rosters.models import Roster, WelfareEvent, WelfareStatus


def update(roster: Roster, national_id: uuid.UUID, data: dict, user) -> dict:
    """Change the status and/or log a contact attempt; the entry as it is now. :raises NotFound, Unprocessable:"""
    if not ({"welfare_status", "note", "contact"} & data.keys()):
        raise Unprocessable("Give a welfare_status, a note or a contact attempt.",
                            errors={"welfare_status": ["Missing data for required field."]})
    get_entry(roster, national_id, user)  # 404 outside the roster or the caller's jurisdiction
    current = db.session.scalar(select(WelfareStatus).where(WelfareStatus.crisis_id == roster.crisis_id,
                                                            WelfareStatus.national_id == national_id)
                                .with_for_update())
    if current is None:
        current = WelfareStatus(crisis_id=roster.crisis_id, national_id=national_id, status="unknown",
                                contact_attempts=0, reached=False)
        db.session.add(current)
    previous = current.status
    now = datetime.now(timezone.utc)
    contact = data.get("contact")
    current.status = data.get("welfare_status", previous)
    if "note" in data:
        current.note = data["note"]
    if contact:
        current.contact_attempts += 1
        current.last_contact_at, current.last_contact_outcome = now, contact["outcome"]
        current.reached = current.reached or contact["outcome"] == "reached"
    current.updated_by, current.updated_at = user.id, now
    db.session.add(WelfareEvent(crisis_id=roster.crisis_id, national_id=national_id, roster_id=roster.id,
                                status=current.status, previous_status=previous, note=data.get("note"),
                                contact_channel=contact["channel"] if contact else None,
                                contact_outcome=contact["outcome"] if contact else None, created_by=user.id,
                                created_at=now))
    db.session.flush()
    return get_entry(roster, national_id, user)


def history(crisis_id: uuid.UUID, national_id: uuid.UUID) -> list[dict]:
    """Every change and contact attempt, oldest first (the caller has already been allowed the entry)."""
    events = db.session.scalars(select(WelfareEvent).where(WelfareEvent.crisis_id == crisis_id,
                                                           WelfareEvent.national_id == national_id)
                                .order_by(WelfareEvent.id))
    return [{"status": e.status, "previous_status": e.previous_status, "note": e.note,
             "contact": {"channel": e.contact_channel, "outcome": e.contact_outcome} if e.contact_channel else None,
             "roster_id": e.roster_id, "by": e.created_by, "at": e.created_at} for e in events]


def statuses(crisis_id: uuid.UUID, national_ids) -> dict[uuid.UUID, str]:
    """The welfare status of each of these nationals in the crisis that has one (a list shows them beside
    its rows; the caller has already limited the ids to those it may see)."""
    ids = list(national_ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(WelfareStatus.national_id, WelfareStatus.status).where(
        WelfareStatus.crisis_id == crisis_id, WelfareStatus.national_id.in_(ids))).all())
