"""Welfare: one status per national and crisis (it survives a rebuilt roster, and needs no roster), with its
history (SPEC §4, §10 "Welfare without a roster").

The one way a status or a contact attempt is recorded, whoever learns it: a
roster's call list (``PATCH /rosters/{id}/entries/{national_id}``), the hotline
without a roster (``PATCH /crises/{id}/welfare/{national_id}`` and the console's
call list), and later SMS replies and self check-ins (their ``source``).
Recording an attempt ends the hotline's claim on the person
(``registry.crises.calls``). Callers check that the person is theirs to see:
``exposed`` does it for the crisis (404 outside the caller's reach or when the
person was never exposed in it).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from registry.crises.models import CallClaim, Exposure, ExposureRun, WelfareEvent, WelfareStatus
from registry.errors import NotFound, Unprocessable
from registry.extensions import db
from registry.nationals.models import National
from registry.nationals.services import get_national


def exposed(crisis_id: uuid.UUID, national_id: uuid.UUID, user) -> National:
    """The national, when ``user`` may see them and some exposure run of the crisis listed them.
    :raises NotFound: otherwise (whether the person exists is not revealed)."""
    national = get_national(national_id, user)
    listed = db.session.scalar(select(exists().where(
        Exposure.national_id == national_id, Exposure.run_id == ExposureRun.id, ExposureRun.crisis_id == crisis_id)))
    if not listed:
        raise NotFound("No such national in this crisis.")
    return national


def current(crisis_id: uuid.UUID, national_id: uuid.UUID) -> WelfareStatus | None:
    return db.session.get(WelfareStatus, (crisis_id, national_id))


def check_given(data: dict) -> None:
    """:raises Unprocessable: an update that gives neither a status, nor a note, nor a contact attempt."""
    if not ({"welfare_status", "note", "contact"} & data.keys()):
        raise Unprocessable("Give a welfare_status, a note or a contact attempt.",
                            errors={"welfare_status": ["Missing data for required field."]})


def record(crisis_id: uuid.UUID, national_id: uuid.UUID, data: dict, user, *, source: str = "hotline",
           roster_id: uuid.UUID | None = None) -> WelfareStatus:
    """Change the status and/or log a contact attempt (``{"welfare_status", "note", "contact": {"channel",
    "outcome"}}``, any of them); the status as it is now. The caller has checked the person is theirs.
    :raises Unprocessable: nothing given."""
    check_given(data)
    # The row first (a concurrent first news of the same person waits here, then finds it), then locked: two
    # updates at once (two SMS replies of one phone, a reply during a call) are applied one after the other.
    db.session.execute(pg_insert(WelfareStatus).values(crisis_id=crisis_id, national_id=national_id,
                                                       status="unknown", contact_attempts=0, reached=False)
                       .on_conflict_do_nothing(index_elements=["crisis_id", "national_id"]))
    state = db.session.scalar(select(WelfareStatus).where(WelfareStatus.crisis_id == crisis_id,
                                                          WelfareStatus.national_id == national_id)
                              .with_for_update().execution_options(populate_existing=True))
    previous = state.status
    now = datetime.now(timezone.utc)
    contact = data.get("contact")
    state.status = data.get("welfare_status") or previous
    if "note" in data:
        state.note = data["note"]
    if contact:
        state.contact_attempts = (state.contact_attempts or 0) + 1
        state.last_contact_at, state.last_contact_outcome = now, contact["outcome"]
        state.reached = bool(state.reached) or contact["outcome"] == "reached"
    state.updated_by, state.updated_at = user.id if user else None, now
    db.session.add(WelfareEvent(crisis_id=crisis_id, national_id=national_id, roster_id=roster_id, source=source,
                                status=state.status, previous_status=previous, note=data.get("note"),
                                contact_channel=contact["channel"] if contact else None,
                                contact_outcome=contact["outcome"] if contact else None,
                                created_by=user.id if user else None, created_at=now))
    # The attempt is made: whoever was calling the person lets go of them.
    db.session.execute(delete(CallClaim).where(CallClaim.crisis_id == crisis_id,
                                               CallClaim.national_id == national_id))
    db.session.flush()
    return state


def history(crisis_id: uuid.UUID, national_id: uuid.UUID) -> list[dict]:
    """Every change and contact attempt, oldest first (the caller has already been allowed the person)."""
    events = db.session.scalars(select(WelfareEvent).where(WelfareEvent.crisis_id == crisis_id,
                                                           WelfareEvent.national_id == national_id)
                                .order_by(WelfareEvent.id))
    return [{"welfare_status": e.status, "status": e.status, "previous_status": e.previous_status,
             "source": e.source, "note": e.note,
             "contact": {"channel": e.contact_channel, "outcome": e.contact_outcome} if e.contact_channel else None,
             "roster_id": e.roster_id, "by": e.created_by, "at": e.created_at} for e in events]


def welfare_of(crisis_id: uuid.UUID, national_id: uuid.UUID, user) -> dict:
    """``GET /crises/{id}/welfare/{national_id}``: the status (``unknown`` before any news) and its history.
    :raises NotFound:"""
    exposed(crisis_id, national_id, user)
    return _answer(crisis_id, national_id)


def update(crisis_id: uuid.UUID, national_id: uuid.UUID, data: dict, user, *, source: str = "hotline") -> dict:
    """``PATCH /crises/{id}/welfare/{national_id}``: record, then the answer of ``welfare_of``.
    :raises NotFound, Unprocessable:"""
    check_given(data)
    exposed(crisis_id, national_id, user)
    record(crisis_id, national_id, data, user, source=source)
    return _answer(crisis_id, national_id)


def _answer(crisis_id: uuid.UUID, national_id: uuid.UUID) -> dict:
    state = current(crisis_id, national_id)
    return {"national_id": national_id, "crisis_id": crisis_id,
            "welfare_status": state.status if state else "unknown", "note": state.note if state else None,
            "contact_attempts": state.contact_attempts if state else 0,
            "last_contact_at": state.last_contact_at if state else None,
            "last_contact_outcome": state.last_contact_outcome if state else None,
            "reached": state.reached if state else False,
            "history": history(crisis_id, national_id)}
