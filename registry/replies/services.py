"""SMS replies (SPEC §10): matched by phone to the people exposed in active crises, read into welfare statuses,
kept for a person to read when they cannot be (the inbox); opt-outs; their retention.

A reply is matched to the nationals whose phones hold the sender's number (the GIN index on
``nationals.phones``) and who are listed in the latest succeeded exposure run of an active crisis, in one
statement. Then:

* one person in one crisis: the keyword becomes their welfare status, recorded through
  ``registry.crises.welfare.record`` (source ``sms``) with a contact attempt (channel ``sms``, reached) and the
  rest of the text as the note. Text that is no keyword is recorded as a note and a contact attempt, the
  status left alone, and waits in the inbox for a person to read (``needs_review``, ``free_text``); so does a
  keyword followed by a note (``applied``, ``note``).
* a number several exposed people share (a family's phone) marks none of them: the reply waits for review
  (``shared_number``); so does one person exposed in several active crises (``several_crises``: which one
  the reply answers is not known; an officer assigns it), and a known number of someone exposed in no
  active crisis (``not_exposed``: a closed crisis is never matched).
* nobody has the number: ``unknown_number``, in the inbox of coordinators and admins.
* ``STOP`` opts the number out of later campaigns (``sms_opt_outs``), ``START`` lifts it; a person's
  reply is still recorded as a contact attempt.

Nothing is dropped: every reply is stored with what was done. Services flush, never commit.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import and_, any_, delete, exists, func, or_, select, text, true
from sqlalchemy.dialects.postgresql import insert

from registry.auth.reach import Reach
from registry.crises import welfare
from registry.crises.models import Crisis
from registry.errors import Conflict, NotFound, Unprocessable
from registry.extensions import db
from registry.nationals.models import National
from registry.nationals.services import on_erasure, visible_clause
from registry.pagination import Keyset, keyset_page, timestamp
from registry.replies import keywords, phones
from registry.replies.models import OptOut, SmsReply

SMS_CONTACT = {"channel": "sms", "outcome": "reached"}
# Who holds the number, and in which active crisis's current list (latest succeeded run, any version: while
# a new area's run is still running, the previous list answers) each of them is; one round trip, the
# phones GIN index and the exposures' national_id index.
_MATCH = text("""
WITH current_runs AS (
    SELECT DISTINCT ON (r.crisis_id) r.id, r.crisis_id
    FROM exposure_runs r JOIN crises c ON c.id = r.crisis_id
    WHERE c.status = 'active' AND r.status = 'succeeded'
    ORDER BY r.crisis_id, r.created_at DESC
)
SELECT n.id, cr.crisis_id
FROM nationals n
LEFT JOIN (exposures e JOIN current_runs cr ON cr.id = e.run_id) ON e.national_id = n.id
WHERE n.phones @> CAST(ARRAY[:phone] AS varchar(16)[]) AND n.erased_at IS NULL
""")
INBOX_ORDER = Keyset((SmsReply.received_at, SmsReply.id), (timestamp, uuid.UUID), descending=True)


def keyword_table() -> dict[str, str]:
    return keywords.table(current_app.config["REGISTRY_SMS_KEYWORDS"])


def matches(phone: str) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """(national, active crisis or None) for every holder of ``phone`` (E.164)."""
    return [(row[0], row[1]) for row in db.session.execute(_MATCH, {"phone": phone})]


def receive(sender: str, body: str) -> SmsReply:
    """Store one reply and act on it (see the module). The reply as stored."""
    now = datetime.now(timezone.utc)
    phone = phones.normalise(sender, current_app.config["REGISTRY_NATIONALITY"])
    body = body.replace("\x00", "")
    reading = keywords.read(body, keyword_table())
    found = matches(phone) if phone else []
    holders = list(dict.fromkeys(national for national, _ in found))
    exposed = [(national, crisis) for national, crisis in found if crisis is not None]
    people = list(dict.fromkeys(national for national, _ in exposed))
    crises = list(dict.fromkeys(crisis for _, crisis in exposed))
    status = reading.meaning if reading.meaning in keywords.STATUSES else None
    reply = SmsReply(id=uuid.uuid4(), received_at=now, phone=phones.stored_sender(sender, current_app.config[
        "REGISTRY_NATIONALITY"]), text=body, keyword=reading.keyword, welfare_status=status,
        national_ids=people or holders, crisis_ids=crises)
    note = reading.note
    if reading.meaning in (keywords.STOP, keywords.START) and phone:
        _opt(phone, out=reading.meaning == keywords.STOP)
        reply.outcome = "opted_out" if reading.meaning == keywords.STOP else "opted_in"
    if len(people) == 1 and len(crises) == 1:
        reply.national_id, reply.crisis_id = people[0], crises[0]
        data = {"contact": dict(SMS_CONTACT)}
        if status:
            data["welfare_status"] = status
        if note:
            data["note"] = note[:2000]
        welfare.record(reply.crisis_id, reply.national_id, data, None, source="sms")
        if reply.outcome is None:
            reply.outcome = "applied" if reading.meaning else "needs_review"
            reply.review_reason = ("note" if note else None) if reading.meaning else "free_text"
    elif reply.outcome is None:
        reply.outcome, reply.review_reason = _unmatched(holders, people, crises)
    if reply.outcome in ("applied", "opted_out", "opted_in") and not note:
        reply.handled_at = now  # nothing left for a person to read
    db.session.add(reply)
    db.session.flush()
    return reply


def _unmatched(holders: list, people: list, crises: list) -> tuple[str, str | None]:
    if not holders:
        return "unknown_number", None
    if not people:
        return "needs_review", "not_exposed"
    if len(people) > 1:
        return "needs_review", "shared_number"
    return "needs_review", "several_crises"


def _opt(phone: str, *, out: bool) -> None:
    if out:
        db.session.execute(insert(OptOut).values(phone=phone).on_conflict_do_nothing(index_elements=["phone"]))
    else:
        db.session.execute(delete(OptOut).where(OptOut.phone == phone))


def opted_out(numbers) -> set[str]:
    """Which of ``numbers`` (E.164) asked for no more messages: campaigns leave them out."""
    numbers = list(set(numbers))
    if not numbers:
        return set()
    return set(db.session.scalars(select(OptOut.phone).where(OptOut.phone.in_(numbers))))


# ---------------------------------------------------------------------- the inbox

def _reach_clause(user):
    """Replies ``user`` may read: every one for unscoped roles; an embassy officer's, those that matched a
    national of their jurisdiction (the row-level security rule of migration 0018, once more)."""
    if Reach.of(user).is_everywhere:
        return true()
    return exists(select(National.id).where(National.id == any_(SmsReply.national_ids), visible_clause(user)))


def inbox(user, *, crisis_id: uuid.UUID | None = None, outcome: str | None = None, handled: bool | None = None,
          limit: int = 100, cursor: str | None = None) -> dict:
    """A page of replies newest first, each as ``as_item`` shows it."""
    query = select(SmsReply).where(_reach_clause(user))
    if crisis_id is not None:
        query = query.where(or_(SmsReply.crisis_ids.contains([crisis_id]), SmsReply.crisis_id == crisis_id))
    if outcome is not None:
        query = query.where(SmsReply.outcome == outcome)
    if handled is not None:
        query = query.where(SmsReply.handled_at.isnot(None) if handled else SmsReply.handled_at.is_(None))
    page = keyset_page(query, INBOX_ORDER, limit=limit, cursor=cursor, key=lambda r: (r.received_at, r.id))
    page["items"] = as_items(page["items"], user)
    return page


def as_items(replies: list[SmsReply], user) -> list[dict]:
    """Replies with the people they name that ``user`` may see (id and names)."""
    ids = {national for reply in replies for national in (reply.national_ids or [])}
    names = {}
    if ids:
        rows = db.session.execute(select(National.id, National.family_name, National.given_names)
                                  .where(National.id.in_(ids), visible_clause(user)))
        names = {row.id: {"id": row.id, "family_name": row.family_name, "given_names": row.given_names}
                 for row in rows}
    return [as_item(reply, [names[n] for n in reply.national_ids or [] if n in names]) for reply in replies]


def as_item(reply: SmsReply, people: list[dict]) -> dict:
    return {"id": reply.id, "received_at": reply.received_at, "phone": reply.phone, "text": reply.text,
            "keyword": reply.keyword, "welfare_status": reply.welfare_status, "outcome": reply.outcome,
            "review_reason": reply.review_reason, "crisis_id": reply.crisis_id, "national_id": reply.national_id,
            "crisis_ids": list(reply.crisis_ids or []), "people": people,
            "handled": reply.handled_at is not None, "handled_at": reply.handled_at,
            "handled_by": reply.handled_by}


def get_reply(reply_id: uuid.UUID, user, *, for_update: bool = False) -> SmsReply:
    """:raises NotFound: unknown, or not the caller's to read (never revealed)."""
    query = select(SmsReply).where(SmsReply.id == reply_id, _reach_clause(user))
    reply = db.session.scalar(query.with_for_update(of=SmsReply) if for_update else query)
    if reply is None:
        raise NotFound("No such reply.")
    return reply


def item(reply_id: uuid.UUID, user) -> dict:
    return as_items([get_reply(reply_id, user)], user)[0]


def update(reply_id: uuid.UUID, data: dict, user) -> SmsReply:
    """``PATCH /inbox/{id}``: assign the reply to a person exposed in a crisis (``national_id`` and
    ``crisis_id``: recorded as the hook would have, by ``user``; a ``welfare_status`` given overrides the
    keyword's) and/or mark it ``handled`` (assigning marks it handled).
    :raises NotFound, Conflict, Unprocessable:"""
    if not data:
        raise Unprocessable("Give handled, or national_id and crisis_id to assign the reply.",
                            errors={"handled": ["Missing data for required field."]})
    if ("national_id" in data) != ("crisis_id" in data):
        missing = "crisis_id" if "national_id" in data else "national_id"
        raise Unprocessable("Assigning a reply names the person and the crisis.",
                            errors={missing: ["Missing data for required field."]})
    if "welfare_status" in data and "national_id" not in data:
        raise Unprocessable("A welfare status is recorded for the person the reply is assigned to.",
                            errors={"national_id": ["Missing data for required field."]})
    reply = get_reply(reply_id, user, for_update=True)
    now = datetime.now(timezone.utc)
    if "national_id" in data:
        _assign(reply, data["crisis_id"], data["national_id"], data.get("welfare_status"), user)
        reply.handled_at, reply.handled_by = now, user.id
    if "handled" in data:
        reply.handled_at, reply.handled_by = (now, user.id) if data["handled"] else (None, None)
    db.session.flush()
    return reply


def _assign(reply: SmsReply, crisis_id: uuid.UUID, national_id: uuid.UUID, status: str | None, user) -> None:
    crisis = db.session.get(Crisis, crisis_id)
    if crisis is None:
        raise NotFound("No such crisis.")
    if crisis.status != "active":
        raise Conflict("The crisis is closed: replies are recorded in active crises only.")
    welfare.exposed(crisis_id, national_id, user)  # 404: not exposed in it, or not the caller's
    status = status or reply.welfare_status
    if reply.national_id is not None:
        if (reply.national_id, reply.crisis_id) != (national_id, crisis_id):
            raise Conflict("The reply is already recorded for another person or crisis.")
        if status and status != _current_status(crisis_id, national_id):
            welfare.record(crisis_id, national_id, {"welfare_status": status}, user, source="sms")
    else:
        data = {"contact": dict(SMS_CONTACT)}
        if status:
            data["welfare_status"] = status
        note = _note(reply)
        if note:
            data["note"] = note[:2000]
        welfare.record(crisis_id, national_id, data, user, source="sms")
        reply.national_id, reply.crisis_id = national_id, crisis_id
    reply.welfare_status = status or reply.welfare_status
    reply.national_ids = list(dict.fromkeys([*(reply.national_ids or []), national_id]))
    reply.crisis_ids = list(dict.fromkeys([*(reply.crisis_ids or []), crisis_id]))
    reply.outcome = "applied"


def _current_status(crisis_id: uuid.UUID, national_id: uuid.UUID) -> str:
    state = welfare.current(crisis_id, national_id)
    return state.status if state else "unknown"


def _note(reply: SmsReply) -> str:
    """What of the reply is a note: the text after its keyword, or all of it."""
    if reply.keyword:
        return keywords.read(reply.text, {reply.keyword: "keyword"}).note
    return reply.text.strip()


def counts(user) -> dict:
    """Unhandled replies the caller may read, by outcome (the console's summary)."""
    rows = db.session.execute(select(SmsReply.outcome, func.count()).where(
        _reach_clause(user), SmsReply.handled_at.is_(None)).group_by(SmsReply.outcome))
    return dict(rows.all())


# ---------------------------------------------------------------------- retention

def purge_closed(older_than_days: int) -> int:
    """Delete the replies of crises closed more than ``older_than_days`` ago (every crisis they matched
    closed), and replies that matched no crisis received as long ago (SPEC §6b). How many."""
    cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
    closed = select(Crisis.id).where(Crisis.status == "closed", Crisis.closed_at < cutoff)
    stale = or_(and_(func.cardinality(SmsReply.crisis_ids) > 0,
                     SmsReply.crisis_ids.contained_by(func.array(closed.scalar_subquery()))),
                and_(func.cardinality(SmsReply.crisis_ids) == 0, SmsReply.received_at < cutoff))
    return db.session.execute(delete(SmsReply).where(stale)).rowcount


@on_erasure
def _forget_replies(national_id: uuid.UUID) -> None:
    """An erased national's replies go (their text, their number)."""
    db.session.execute(delete(SmsReply).where(SmsReply.national_ids.contains([national_id])))


def crisis_names(crisis_ids) -> dict[uuid.UUID, tuple[str, str]]:
    """{id: (name, status)} of these crises (the inbox names them)."""
    ids = list(set(crisis_ids))
    if not ids:
        return {}
    return {row.id: (row.name, row.status)
            for row in db.session.execute(select(Crisis.id, Crisis.name, Crisis.status).where(Crisis.id.in_(ids)))}


def active_crises() -> list[tuple[uuid.UUID, str]]:
    """(id, name) of the active crises, newest first: where a reply from an unknown number may be assigned."""
    return [(row.id, row.name) for row in db.session.execute(
        select(Crisis.id, Crisis.name).where(Crisis.status == "active").order_by(Crisis.created_at.desc()))]
