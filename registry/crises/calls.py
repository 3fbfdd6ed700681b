"""The hotline's call list (SPEC §9 ``/console/crises/{id}/calls``): one person at a time, never two operators
on one person, and the unreached come back after a while.

The list is the crisis's latest exposure run, as the operator may see it (an
embassy officer: their jurisdiction), without the people whose welfare is
settled (``SETTLED_STATUSES``). ``claim_next`` gives the operator the first of
them in this order:

1. not tried within ``REGISTRY_CALL_RETRY_MINUTES`` before anyone who was (a
   person tried recently comes back only when no one else is left, the
   longest-waiting first);
2. roster priority (medical or disability, pregnant, minor or elderly, others),
   then distance to the area (inside first), then id;

and not claimed by another operator (a claim lasts ``REGISTRY_CALL_CLAIM_MINUTES``:
an abandoned one comes back). Two operators never get the same person: the
candidate's exposure row is taken ``FOR UPDATE SKIP LOCKED`` (a concurrent
operator passes over it to the next person), and the claim is written by an
``INSERT … ON CONFLICT`` that takes over only an expired claim, so a claim
written since our statement began is never overwritten (we try the next
person instead). Recording a contact attempt (``registry.crises.welfare.record``)
ends the claim; an operator holds one person at a time per crisis.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from registry.crises.models import SETTLED_STATUSES, CallClaim, Crisis, Exposure, WelfareStatus
from registry.crises.services import latest_run
from registry.extensions import db
from registry.nationals.models import National
from registry.nationals.services import visible_clause

ATTEMPTS = 8  # candidates tried when others are being claimed at the same moment


@dataclass(frozen=True)
class Claim:
    national_id: uuid.UUID
    claimed_at: datetime
    expires_at: datetime


def _minutes(name: str) -> timedelta:
    return timedelta(minutes=current_app.config[name])


def _unsettled():
    return func.coalesce(WelfareStatus.status, "unknown").notin_(SETTLED_STATUSES)


def _exposed(crisis: Crisis, user, run_id: uuid.UUID, *columns):
    """The run's people ``user`` may see, with their welfare in the crisis (outer joined)."""
    return (select(*columns).select_from(Exposure)
            .join(National, and_(National.id == Exposure.national_id, visible_clause(user)))
            .outerjoin(WelfareStatus, and_(WelfareStatus.crisis_id == crisis.id,
                                           WelfareStatus.national_id == Exposure.national_id))
            .where(Exposure.run_id == run_id))


def held(crisis: Crisis, user) -> Claim | None:
    """The person ``user`` is calling in this crisis (an unexpired claim), if any."""
    now = datetime.now(timezone.utc)
    found = db.session.execute(select(CallClaim).where(CallClaim.crisis_id == crisis.id,
                                                       CallClaim.operator_id == user.id, CallClaim.expires_at > now)
                               .order_by(CallClaim.claimed_at.desc()).limit(1)).scalar()
    return Claim(found.national_id, found.claimed_at, found.expires_at) if found else None


def release(crisis: Crisis, user) -> None:
    """``user`` lets go of whoever they hold in this crisis."""
    db.session.execute(delete(CallClaim).where(CallClaim.crisis_id == crisis.id, CallClaim.operator_id == user.id))
    db.session.flush()


def claim_next(crisis: Crisis, user) -> Claim | None:
    """Let go of the operator's current person and claim the next one (module docstring); None when nobody is
    left to call (or the crisis has no exposure run yet)."""
    release(crisis, user)
    run = latest_run(crisis, succeeded=True)
    if run is None:
        return None
    now = datetime.now(timezone.utc)
    recently = and_(WelfareStatus.last_contact_at.isnot(None),
                    WelfareStatus.last_contact_at > now - _minutes("REGISTRY_CALL_RETRY_MINUTES"))
    taken = (select(CallClaim.national_id)
             .where(CallClaim.crisis_id == crisis.id, CallClaim.national_id == Exposure.national_id,
                    CallClaim.expires_at > now, CallClaim.operator_id != user.id)
             .exists())
    passed: list[uuid.UUID] = []
    for _ in range(ATTEMPTS):
        query = (_exposed(crisis, user, run.id, Exposure.national_id)
                 .where(_unsettled(), ~taken)
                 .order_by(case((recently, 1), else_=0), case((recently, WelfareStatus.last_contact_at)),
                           Exposure.priority.asc().nulls_last(), Exposure.distance_km, Exposure.national_id)
                 .limit(1)
                 .with_for_update(of=Exposure, skip_locked=True))
        if passed:
            query = query.where(Exposure.national_id.notin_(passed))
        candidate = db.session.scalar(query)
        if candidate is None:
            return None
        expires = now + _minutes("REGISTRY_CALL_CLAIM_MINUTES")
        statement = insert(CallClaim).values(crisis_id=crisis.id, national_id=candidate, operator_id=user.id,
                                             claimed_at=now, expires_at=expires)
        statement = statement.on_conflict_do_update(
            index_elements=[CallClaim.crisis_id, CallClaim.national_id],
            set_={"operator_id": statement.excluded.operator_id, "claimed_at": statement.excluded.claimed_at,
                  "expires_at": statement.excluded.expires_at},
            where=(CallClaim.expires_at <= now) | (CallClaim.operator_id == user.id),
        ).returning(CallClaim.national_id)
        if db.session.execute(statement).scalar() is not None:
            db.session.flush()
            return Claim(candidate, now, expires)
        passed.append(candidate)  # another operator claimed them since our statement began
    return None


def counts(crisis: Crisis, user) -> dict:
    """How the call list stands, among the people ``user`` may see: ``to_call`` (not settled, not held by
    another operator), ``claimed_by_others``, ``reached`` (at least once), ``settled`` and ``total``."""
    empty = {"to_call": 0, "claimed_by_others": 0, "reached": 0, "settled": 0, "total": 0}
    run = latest_run(crisis, succeeded=True)
    if run is None:
        return empty
    now = datetime.now(timezone.utc)
    by_others = and_(CallClaim.national_id.isnot(None), CallClaim.operator_id != user.id)
    query = (_exposed(crisis, user, run.id,
                      func.count().filter(and_(_unsettled(), ~by_others)),
                      func.count().filter(and_(_unsettled(), by_others)),
                      func.count().filter(WelfareStatus.reached.is_(True)),
                      func.count().filter(~_unsettled()),
                      func.count())
             .outerjoin(CallClaim, and_(CallClaim.crisis_id == crisis.id,
                                        CallClaim.national_id == Exposure.national_id, CallClaim.expires_at > now)))
    to_call, others, reached, settled, total = db.session.execute(query).one()
    return {"to_call": to_call, "claimed_by_others": others, "reached": reached, "settled": settled, "total": total}


def exposure_of(crisis: Crisis, national_id: uuid.UUID) -> Exposure | None:
    """The person's row in the crisis's latest run (zone, distance, household, priority), if listed."""
    run = latest_run(crisis, succeeded=True)
    if run is None:
        return None
    return db.session.get(Exposure, (run.id, national_id))
