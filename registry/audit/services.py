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

Chain and seals live in the database they protect: whoever can write it and
holds the audit key can rewrite events and recompute both. ``checkpoint()``
signs the head with a separate Ed25519 key for the auditor to keep outside
the service; ``verify(checkpoints=…)`` then requires the chain to reach each
kept head.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
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
# Every outcome an event may have: a call's (by its status; any other refusal is "invalid"), or a command's.
OUTCOME_NAMES = ("ok", *OUTCOMES.values(), "invalid", "error")


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
        # UTC whatever the session's time zone: the hash must not depend on who reads the event.
        "seq": seq, "id": row.id, "at": row.at.astimezone(timezone.utc).isoformat(),
        "actor_id": str(row.actor_id) if row.actor_id else None,
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
    checkpoints: int = 0  # kept heads the chain reached


def verify(progress=None, checkpoints: list[Checkpoint] = ()) -> Verification:
    """Recompute the whole chain; name the first entry that does not fit.

    Detects an edited entry (its hash differs), a deleted one (a gap in
    ``chain_seq``), reordered ones (the hash covers the sequence number) and a
    truncated tail (the chain ends before the last seal's head). With
    ``checkpoints`` (heads kept outside the database, see ``read_checkpoint``)
    it also detects a rewrite whose chain and seals were recomputed with the
    audit key: the chain no longer reaches a kept head.
    """
    key = _key()
    previous, expected_seq, last_id = GENESIS, 1, None
    seals = {s.through_seq: bytes(s.head_hash) for s in db.session.scalars(select(AuditSeal))}
    kept: dict[int, list[Checkpoint]] = {}
    for kept_head in checkpoints:
        kept.setdefault(kept_head.through_seq, []).append(kept_head)
    reached = 0  # the last entry known to match a kept head
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
        for kept_head in kept.get(row.chain_seq, ()):
            if not hmac.compare_digest(kept_head.head_hash, expected):
                return Verification(
                    False, reached, problem=f"chain entry {row.chain_seq} no longer hashes to the head kept in "
                    f"{kept_head.name}: events up to chain entry {row.chain_seq} were rewritten and the chain "
                    "and seals recomputed", first_bad=f"chain entry {row.chain_seq} (the head kept in "
                    f"{kept_head.name}; rewritten among entries {reached + 1}-{row.chain_seq})")
            reached = row.chain_seq
        previous, expected_seq, last_id = expected, expected_seq + 1, row.id
        if progress and expected_seq % 10_000 == 0:
            progress(expected_seq - 1)
    checked = expected_seq - 1
    sealed_through = max(seals, default=0)
    if sealed_through > checked:
        return Verification(False, checked, problem=f"the chain ends at entry {checked} but was sealed through "
                            f"entry {sealed_through}: entries were removed from its end",
                            first_bad=f"chain entry {checked + 1} (missing; the last present is event id {last_id})")
    for kept_head in sorted(checkpoints, key=lambda c: c.through_seq):
        if kept_head.through_seq > checked:
            return Verification(False, checked, problem=f"the chain ends at entry {checked} but {kept_head.name} "
                                f"was taken through entry {kept_head.through_seq}: entries were removed from its "
                                f"end", first_bad=f"chain entry {checked + 1} (missing; the last present is event "
                                f"id {last_id})")
    unsealed = db.session.scalar(select(db.func.count()).select_from(AuditEvent).where(AuditEvent.chain_seq.is_(None)))
    return Verification(True, checked, unsealed, checkpoints=len(checkpoints))


# ---------------------------------------------------------------------- checkpoints kept outside the database

CHECKPOINT_FORMAT = "sagip-audit-checkpoint"
CHECKPOINT_VERSION = 1
_CHECKPOINT_FIELDS = {"format": str, "version": int, "through_seq": int, "head_hash": str, "events": int,
                      "sealed_at": str, "public_key": str, "signature": str}
_HEX_LENGTHS = {"head_hash": 64, "public_key": 64, "signature": 128}


class CheckpointRefused(ValueError):
    """A checkpoint file that cannot be trusted: malformed, altered, or signed by another key."""


@dataclass(frozen=True)
class Checkpoint:
    """A chain head kept outside the database: entry ``through_seq`` must hash to ``head_hash``."""

    through_seq: int
    head_hash: bytes
    name: str


def _signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(current_app.config["REGISTRY_AUDIT_SIGNING_KEY"])


def public_key_hex() -> str:
    """This service's checkpoint-signing public key, which the auditor keeps to check checkpoints."""
    return _signing_key().public_key().public_bytes_raw().hex()


def _signed_message(document: dict) -> bytes:
    """What the signature covers: every field but the signature, as compact JSON with sorted keys.

    The values are taken as they stand in the document (no re-parsing), so
    any change to them, even of a hex digit's case, breaks the signature.
    """
    fields = {name: value for name, value in document.items() if name != "signature"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def checkpoint(actor=None) -> dict:
    """The signed head of the sealed chain, as a document for the auditor; records the act.

    Call after ``seal_all()``; the caller commits before handing the document out.
    :raises CheckpointRefused: nothing is sealed yet, or the last seal does not match its chain entry.
    """
    last = db.session.execute(select(AuditSeal.through_seq, AuditSeal.head_hash, AuditSeal.sealed_at,
                                     AuditEvent.chain_hash)
                              .join(AuditEvent, AuditEvent.chain_seq == AuditSeal.through_seq, isouter=True)
                              .order_by(AuditSeal.id.desc()).limit(1)).first()  # sealers take turns: the newest
    if last is None:
        raise CheckpointRefused("there are no sealed audit events to checkpoint yet")
    if last.chain_hash is None or not hmac.compare_digest(bytes(last.head_hash), bytes(last.chain_hash)):
        raise CheckpointRefused(f"the seal through chain entry {last.through_seq} does not match the chain: "
                                "run `registry audit verify`")
    document = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "through_seq": last.through_seq, "head_hash": bytes(last.head_hash).hex(), "events": last.through_seq,
        "sealed_at": last.sealed_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "public_key": public_key_hex(),
    }
    document["signature"] = _signing_key().sign(_signed_message(document)).hex()
    record("audit.checkpoint", actor=actor, details={"through_seq": last.through_seq,
                                                     "head_hash": document["head_hash"]})
    db.session.flush()
    return document


def read_checkpoint(data: bytes, name: str) -> Checkpoint:
    """Check a kept checkpoint file: its form, that this service's key signed it, and its signature.

    :raises CheckpointRefused: naming ``name`` and the reason; never quoting the file's content.
    """
    def refuse(reason: str):
        return CheckpointRefused(f"checkpoint {name} refused: {reason}")

    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise refuse("not a JSON document") from None
    if not isinstance(document, dict):
        raise refuse("not a JSON object")
    if document.get("format") != CHECKPOINT_FORMAT:
        raise refuse(f"it is not a {CHECKPOINT_FORMAT} document")
    if document.get("version") != CHECKPOINT_VERSION or isinstance(document.get("version"), bool):
        raise refuse(f"its version is not {CHECKPOINT_VERSION}, the one this service reads")
    missing = sorted(set(_CHECKPOINT_FIELDS) - set(document))
    if missing:
        raise refuse(f"missing field(s): {', '.join(missing)}")
    extra = sorted(set(document) - set(_CHECKPOINT_FIELDS))
    if extra:
        raise refuse(f"{len(extra)} unknown field(s); a checkpoint has only {', '.join(_CHECKPOINT_FIELDS)}")
    for field, kind in _CHECKPOINT_FIELDS.items():
        value = document[field]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise refuse(f"{field} must be a {'whole number' if kind is int else 'string'}")
    for field, length in _HEX_LENGTHS.items():
        if len(document[field]) != length or any(c not in "0123456789abcdef" for c in document[field]):
            raise refuse(f"{field} must be {length} lowercase hex digits")
    if document["through_seq"] < 1 or document["events"] != document["through_seq"]:
        raise refuse("through_seq must be at least 1 and equal events")
    if document["public_key"] != public_key_hex():
        raise refuse("it was not signed by this service's audit signing key (REGISTRY_AUDIT_SIGNING_KEY); "
                     f"this service's public key is {public_key_hex()}")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(document["public_key"])).verify(
            bytes.fromhex(document["signature"]), _signed_message(document))
    except InvalidSignature:
        raise refuse("its signature does not match its contents: the file was altered") from None
    return Checkpoint(document["through_seq"], bytes.fromhex(document["head_hash"]), name)


# ---------------------------------------------------------------------- reading the trail

def list_events(*, object_id: uuid.UUID | None = None, actor: uuid.UUID | None = None, action: str | None = None,
                since: datetime | None = None, until: datetime | None = None, object_type: str | None = None,
                outcome: str | None = None, purpose: str | None = None, limit: int = 100,
                cursor: str | None = None) -> dict:
    """Newest first, keyset-paginated on id. ``purpose``: events whose purpose contains this text (any case)."""
    query = select(AuditEvent)
    if object_id:
        query = query.where(AuditEvent.object_ids.contains([object_id]))
    if actor:
        query = query.where(AuditEvent.actor_id == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    if purpose:
        escaped = purpose.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AuditEvent.purpose.ilike(f"%{escaped}%", escape="\\"))
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return keyset_page(query, _NEWEST_FIRST, limit=limit, cursor=cursor, key=lambda event: (event.id,))


def _distinct(column, index_order) -> list[str]:
    """The distinct values of an indexed column, by skipping through its index (a loose index scan: one
    probe per value, however long the trail)."""
    name = column.key
    return list(db.session.scalars(text(f"""
        WITH RECURSIVE seen(value) AS (
            (SELECT {name} FROM audit_events WHERE {name} IS NOT NULL ORDER BY {index_order} LIMIT 1)
            UNION ALL
            SELECT (SELECT {name} FROM audit_events WHERE {name} > seen.value ORDER BY {index_order} LIMIT 1)
            FROM seen WHERE seen.value IS NOT NULL)
        SELECT value FROM seen WHERE value IS NOT NULL""")))


def actions() -> list[str]:
    """Every action the trail holds, in order (for an auditor's filter)."""
    return _distinct(AuditEvent.action, "action, id")


_NEWEST_FIRST = Keyset((AuditEvent.id,), (bigint,), descending=True)
