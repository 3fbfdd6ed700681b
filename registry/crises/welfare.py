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

import logging
import uuid
from datetime import datetime, timezone

import redis
from sqlalchemy import delete, event, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from registry.crises.models import CallClaim, Exposure, ExposureRun, WelfareEvent, WelfareStatus
from registry.errors import NotFound, Unprocessable
from registry.extensions import db, redis_client
from registry.nationals.models import National
from registry.nationals.services import get_national


log = logging.getLogger(__name__)

# The crises whose welfare changed in the session's transaction (``_changed``).
_CHANGED_KEY = "sagip_welfare_changed"
GENERATION_KEPT_S = 86_400


def _generation_key(crisis_id: uuid.UUID) -> str:
    return f"sagip:welfare-generation:{crisis_id}"


def generation(crisis_id: uuid.UUID) -> int:
    """How many times the crisis's welfare statuses changed (as counted in Redis): the exposure lists' shared
    counts (``listing``) are kept under it, so a change makes the next list count again.
    :raises redis.RedisError: Redis is unavailable."""
    return int(redis_client().get(_generation_key(crisis_id)) or 0)


def _changed(crisis_id: uuid.UUID) -> None:
    """Raise the crisis's welfare generation now and again once the transaction commits: a list counted in
    between (without this change, not yet visible) is kept under the generation the commit leaves behind."""
    _raise_generations({crisis_id})
    db.session.info.setdefault(_CHANGED_KEY, set()).add(crisis_id)


def _raise_generations(crisis_ids) -> None:
    try:
        pipe = redis_client().pipeline()
        for crisis_id in crisis_ids:
            pipe.incr(_generation_key(crisis_id))
            pipe.expire(_generation_key(crisis_id), GENERATION_KEPT_S)
        pipe.execute()
    except redis.RedisError as exc:  # the shared counts are then at most listing.COUNTS_FRESH_S old
        log.warning("welfare generation not raised, Redis unavailable: %s", type(exc).__name__)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changed = session.info.pop(_CHANGED_KEY, None)
    if changed:
        _raise_generations(changed)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED_KEY, None)


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
    _changed(crisis_id)
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
