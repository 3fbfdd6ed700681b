"""Recording audit events, sealing them into a hash chain, and verifying the chain.

Every API call made with (or refused for) a token records one event, in the
same transaction as the call's own work: a read is not answered unless its
event is stored. Events hold ids, counts, the filters' names and the
purpose, never the personal data itself.

Sealing is separate from recording so that reads never wait for each
other: ``seal()`` (the worker's beat, every ``REGISTRY_AUDIT_SEAL_SECONDS``)
takes the unsealed events in id order and gives each the next
``chain_seq`` and ``chain_hash = HMAC(audit key, previous hash | event)``,
then writes a seal row with the new head. ``verify()`` recomputes the chain;
an edited, deleted, reordered or truncated entry breaks it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g, request
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from registry.audit.models import AuditEvent, AuditSeal, RefusedCalls
from registry.extensions import db
from registry.pagination import Keyset, bigint, keyset_page

GENESIS = bytes(32)
SEAL_BATCH = 5000
_SEAL_LOCK = 0x5A6170A0  # pg_advisory_xact_lock key: one sealer at a time
_INSERT = insert(AuditEvent.__table__)
_CHAIN_COLUMNS = ("id", "at", "actor_id", "actor_role", "action", "outcome", "object_type", "object_ids",
                  "result_count", "purpose", "details")

OUTCOMES = {401: "unauthenticated", 403: "denied", 404: "not_found", 409: "conflict", 429: "rate_limited"}


def note(**fields) -> None:
    """What the current request's event should say (object ids, count, purpose, filters)."""
    noted = g.setdefault("audit_note", {})
    noted.update(fields)


def action_name() -> str:
    """The action of the current request: its endpoint without the blueprint prefix."""
    return (request.endpoint or "unknown").removeprefix("api.")


def record(action: str, *, outcome: str = "ok", actor=None, object_type: str | None = None,
           object_ids=(), result_count: int | None = None, purpose: str | None = None,
           details: dict | None = None) -> None:
    """Add one event to the current transaction (the caller commits)."""
    db.session.execute(_INSERT, {
        "actor_id": actor.id if actor else None, "actor_role": actor.role if actor else None,
        "action": action, "outcome": outcome, "object_type": object_type,
        "object_ids": list(object_ids), "result_count": result_count,
        "purpose": purpose[:200] if purpose else None, "details": details or {},
    })


def record_request(*, status: int, outcome: str | None = None) -> None:
    """The current request's event, from what its view noted (the purpose: the one the view noted, else the
    call's validated ``?purpose=``)."""
    noted = g.pop("audit_note", {})
    details = dict(noted.pop("details", {}) or {})
    details["status"] = status
    if request.remote_addr:
        details["client"] = request.remote_addr
    purpose = noted.pop("purpose", None) or g.get("purpose")
    record(action_name(), outcome=outcome or ("ok" if status < 400 else OUTCOMES.get(status, "invalid")),
           actor=g.get("user"), purpose=purpose, details=details, **noted)


NO_ACTOR = uuid.UUID(int=0)
_COUNT_REFUSAL = (pg_insert(RefusedCalls.__table__)
                  .values(minute=func.date_trunc("minute", func.clock_timestamp()), client=bindparam("client"),
                          actor_id=bindparam("actor_id"), status=bindparam("status"), calls=1))
_COUNT_REFUSAL = _COUNT_REFUSAL.on_conflict_do_update(
    index_elements=["minute", "client", "actor_id", "status"],
    set_={"calls": RefusedCalls.__table__.c.calls + 1})


def count_refused_call(*, status: int) -> None:
    """Count the current call, refused with ``status`` (401, 429), in its address's (and user's) row of
    this minute: a flood adds one row a minute per address, not one per call."""
    user = g.get("user")
    db.session.execute(_COUNT_REFUSAL, {"client": (request.remote_addr or "unknown")[:64],
                                        "actor_id": user.id if user else NO_ACTOR, "status": status})


def fold_refused_calls(until: datetime | None = None) -> int:
    """Turn the counts of every minute before ``until`` (default: the current minute, which may still grow)
    into audit events, one per address, user and status with the count in ``result_count``; the caller
    commits. How many events."""
    end = func.date_trunc("minute", until if until is not None else func.clock_timestamp())
    rows = db.session.execute(
        delete(RefusedCalls).where(RefusedCalls.minute < end)
        .returning(RefusedCalls.minute, RefusedCalls.client, RefusedCalls.actor_id, RefusedCalls.status,
                   RefusedCalls.calls)).all()
    for minute, client, actor_id, status, calls in sorted(rows):
        db.session.execute(_INSERT, {
            "actor_id": None if actor_id == NO_ACTOR else actor_id, "actor_role": None,
            "action": "refused_calls", "outcome": OUTCOMES.get(status, "invalid"), "object_type": None,
            "object_ids": [], "result_count": calls, "purpose": None,
            "details": {"status": status, "client": client, "minute": minute.isoformat()}})
    return len(rows)


# ---------------------------------------------------------------------- the chain

def _key() -> bytes:
    return current_app.config["REGISTRY_AUDIT_KEY"]


def _canonical(row, seq: int) -> bytes:
    """The bytes an event's hash covers: every column but the hash, in a fixed form."""
    values = {
        "seq": seq, "id": row.id, "at": row.at.isoformat(), "actor_id": str(row.actor_id) if row.actor_id else None,
        "actor_role": row.actor_role, "action": row.action, "outcome": row.outcome, "object_type": row.object_type,
        "object_ids": [str(i) for i in row.object_ids or ()], "result_count": row.result_count,
        "purpose": row.purpose, "details": row.details,
    }
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(previous: bytes, row, seq: int, key: bytes) -> bytes:
    return hmac.new(key, previous + _canonical(row, seq), hashlib.sha256).digest()


def _head() -> tuple[int, bytes]:
    last = db.session.execute(select(AuditEvent.chain_seq, AuditEvent.chain_hash)
                              .where(AuditEvent.chain_seq.is_not(None))
                              .order_by(AuditEvent.chain_seq.desc()).limit(1)).first()
    return (last[0], bytes(last[1])) if last else (0, GENESIS)


def seal(batch: int = SEAL_BATCH) -> int:
    """Chain the unsealed events (oldest id first), up to ``batch`` of them; returns how many.

    Runs in the caller's transaction, which must commit. An event committed
    late (a long request with a smaller id) is simply sealed in a later batch.
    """
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEAL_LOCK})
    seq, previous = _head()
    rows = db.session.execute(select(*(getattr(AuditEvent, c) for c in _CHAIN_COLUMNS))
                              .where(AuditEvent.chain_seq.is_(None)).order_by(AuditEvent.id).limit(batch)).all()
    if not rows:
        return 0
    key = _key()
    updates = []
    for row in rows:
        seq += 1
        previous = chain_hash(previous, row, seq, key)
        updates.append({"event_id": row.id, "seq": seq, "hash": previous})
    db.session.execute(update(AuditEvent.__table__).where(AuditEvent.__table__.c.id == bindparam("event_id"))
                       .values(chain_seq=bindparam("seq"), chain_hash=bindparam("hash")), updates)
    db.session.add(AuditSeal(through_seq=seq, head_hash=previous, events=len(rows)))
    db.session.flush()
    return len(rows)


def seal_all() -> int:
    """Fold the finished minutes' refused calls into events, then seal everything unsealed, committing batch
    by batch."""
    fold_refused_calls()
    db.session.commit()
    total = 0
    while True:
        sealed = seal()
        db.session.commit()
        total += sealed
        if sealed < SEAL_BATCH:
            return total


@dataclass
class Verification:
    ok: bool
    checked: int
    unsealed: int = 0
    problem: str | None = None
    first_bad: str | None = None  # "event id N", or "chain entry N (missing …)"


def verify(progress=None) -> Verification:
    """Recompute the whole chain; name the first entry that does not fit.

    Detects an edited entry (its hash differs), a deleted one (a gap in
    ``chain_seq``), reordered ones (the hash covers the sequence number) and a
    truncated tail (the chain ends before the last seal's head).
    """
    key = _key()
    previous, expected_seq, last_id = GENESIS, 1, None
    seals = {s.through_seq: bytes(s.head_hash) for s in db.session.scalars(select(AuditSeal))}
    query = (select(*(getattr(AuditEvent, c) for c in _CHAIN_COLUMNS), AuditEvent.chain_seq, AuditEvent.chain_hash)
             .where(AuditEvent.chain_seq.is_not(None)).order_by(AuditEvent.chain_seq)
             .execution_options(yield_per=10_000))
    for row in db.session.execute(query):
        checked = expected_seq - 1
        if row.chain_seq != expected_seq:
            return Verification(False, checked, problem=f"chain entries {expected_seq}-{row.chain_seq - 1} were "
                                f"removed", first_bad=f"chain entry {expected_seq} (missing; the next present "
                                f"is event id {row.id})")
        expected = chain_hash(previous, row, row.chain_seq, key)
        if not hmac.compare_digest(expected, bytes(row.chain_hash or b"")):
            return Verification(False, checked, problem=f"chain entry {row.chain_seq} does not match its hash: "
                                "the event was altered, or entries were reordered", first_bad=f"event id {row.id}")
        if row.chain_seq in seals and seals[row.chain_seq] != expected:
            return Verification(False, checked, problem=f"the seal through chain entry {row.chain_seq} does not "
                                "match the chain", first_bad=f"event id {row.id}")
        previous, expected_seq, last_id = expected, expected_seq + 1, row.id
        if progress and expected_seq % 10_000 == 0:
            progress(expected_seq - 1)
    checked = expected_seq - 1
    sealed_through = max(seals, default=0)
    if sealed_through > checked:
        return Verification(False, checked, problem=f"the chain ends at entry {checked} but was sealed through "
                            f"entry {sealed_through}: entries were removed from its end",
                            first_bad=f"chain entry {checked + 1} (missing; the last present is event id {last_id})")
    unsealed = db.session.scalar(select(db.func.count()).select_from(AuditEvent).where(AuditEvent.chain_seq.is_(None)))
    return Verification(True, checked, unsealed)


# ---------------------------------------------------------------------- reading the trail

def list_events(*, object_id: uuid.UUID | None = None, actor: uuid.UUID | None = None, action: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                cursor: str | None = None) -> dict:
    """Newest first, keyset-paginated on id."""
    query = select(AuditEvent)
    if object_id:
        query = query.where(AuditEvent.object_ids.contains([object_id]))
    if actor:
        query = query.where(AuditEvent.actor_id == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return keyset_page(query, _NEWEST_FIRST, limit=limit, cursor=cursor, key=lambda event: (event.id,))


_NEWEST_FIRST = Keyset((AuditEvent.id,), (bigint,), descending=True)
