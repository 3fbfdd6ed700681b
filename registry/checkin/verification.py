"""The verification queue (SPEC §10): self-registered nationals no officer has checked yet, each beside its
likely duplicates, and what an officer decides about them.

Who sees whom is the nationals' rule (``visible_nationals``: coordinators and admins everyone, an embassy
officer the people in their jurisdiction, i.e. the country the person is in). Decisions:

* ``verify``: the record becomes an ordinary one (status ``abroad``); a passport number it holds without an
  index (it met a registered passport when it came in) is indexed now, or the verification is refused
  (409, naming the holder when the officer may see it): merge or reject instead.
* ``merge`` into another record, by hand: the newer location (a phone's point, a geocoded place: never a
  country's reference point) and the phones the other record lacks are copied to it, through the nationals
  service (so the jurisdiction follows the point, SPEC §4), then the self-registration is erased (a stub
  stays) and marked merged into the other. Both records are named in the audit event.
* ``reject``: the self-registration is erased (a stub stays) and marked rejected.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from geoalchemy2.shape import to_shape
from sqlalchemy import func, select

from registry.audit import services as audit
from registry.checkin.models import SelfRegistration
from registry.crises.models import Crisis
from registry.errors import Conflict, Unprocessable
from registry.extensions import db
from registry.nationals import services as nationals
from registry.nationals.models import National
from registry.pagination import Keyset, keyset_page, timestamp

ACTIONS = ("verify", "merge", "reject")
_OLDEST_FIRST = Keyset((National.created_at, National.id), (timestamp, uuid.UUID))
# A location worth copying to the record merged into: not a country's reference point.
_INFORMATIVE = ("gps", "self_report", "geocoded_city", "geocoded_address")


def queue(user, *, limit: int = 100, cursor: str | None = None) -> dict:
    """Unverified nationals ``user`` may see, oldest first, each with its likely duplicates (a page)."""
    query = nationals.visible_nationals(user).where(National.status == "unverified")
    page = keyset_page(query, _OLDEST_FIRST, limit=limit, cursor=cursor,
                       key=lambda n: (n.created_at.isoformat(), n.id))
    page["items"] = _entries(page["items"], user)
    return page


def _entries(people: list[National], user) -> list[dict]:
    found = {r.national_id: r for r in db.session.scalars(
        select(SelfRegistration).where(SelfRegistration.national_id.in_([p.id for p in people])))} if people else {}
    crises = {c.id: c.name for c in db.session.scalars(
        select(Crisis).where(Crisis.id.in_({r.crisis_id for r in found.values()})))} if found else {}
    entries = []
    for person in people:
        registration = found.get(person.id)
        duplicates = nationals.likely_duplicates(person, user)
        holder = registration.passport_holder_id if registration else None
        if holder and holder not in {d["id"] for d in duplicates} and nationals.visible_by_ids([holder], user):
            duplicates.append({"id": holder, "reasons": ["same_passport_number"]})
        others = {n.id: n for n in nationals.visible_by_ids([d["id"] for d in duplicates], user)}
        entries.append({
            "national": _person(person, user.role),
            "crisis": {"id": registration.crisis_id, "name": crises.get(registration.crisis_id)}
            if registration else None,
            "passport_already_registered": holder is not None,
            "duplicates": [{**_person(others[d["id"]], user.role), "reasons": d["reasons"]}
                           for d in duplicates if d["id"] in others],
        })
    return entries


def _person(national: National, role: str) -> dict:
    record = nationals.as_seen_by(national, role)
    person = {key: record.get(key) for key in (
        "id", "family_name", "given_names", "sex", "date_of_birth", "phones", "passport_number",
        "national_id_number", "status", "source", "location", "created_at")
        if key in record}
    # The country whose embassy answers for them (where their point is): not in the record as the API shows it.
    person["jurisdiction_country"] = national.jurisdiction_country
    return person


def decide(national_id: uuid.UUID, data: dict, user) -> dict:
    """Verify, merge (``into``) or reject an unverified national (see the module).
    :raises NotFound: not visible to ``user``; Conflict: not in the queue, or its passport is still held
    by another record (verify); Unprocessable: a merge without a target, or into itself.
    """
    national = nationals.get_national(national_id, user)
    if national.status != "unverified":
        raise Conflict("This national is not waiting for verification.")
    registration = db.session.get(SelfRegistration, national.id)
    action = data["action"]
    merged_into = None
    if action == "verify":
        nationals.claim_passport(national, user)
        national.status, national.updated_at = "abroad", func.now()
    elif action == "merge":
        merged_into = _merge(national, data.get("into"), user)
    else:
        nationals.erase_national(national.id, user)
    if registration is not None:
        registration.resolution = {"verify": "verified", "merge": "merged", "reject": "rejected"}[action]
        registration.merged_into = merged_into
        registration.resolved_by, registration.resolved_at = user.id, datetime.now(timezone.utc)
    db.session.flush()
    audit.note(object_type="national", object_ids=[national.id, *([merged_into] if merged_into else [])],
               details={"verification": action})
    return {"id": national.id, "action": action, "status": "abroad" if action == "verify" else "erased",
            "merged_into": merged_into}


def _merge(national: National, into: uuid.UUID | None, user) -> uuid.UUID:
    if into is None:
        raise Unprocessable("Name the record to merge into.", errors={"into": ["Missing data for required field."]})
    if into == national.id:
        raise Unprocessable("A record cannot be merged into itself.", errors={"into": ["The same record."]})
    target = nationals.get_national(into, user)
    if target.erased_at is not None:
        raise Unprocessable("That record was erased.", errors={"into": ["Erased."]})
    phones = [p for p in national.phones or [] if p not in (target.phones or [])]
    if phones:
        # The newer numbers first: they are how the person was last reachable.
        nationals.update_national(target.id, {"phones": phones + list(target.phones or [])}, user)
    newer = (national.location is not None and national.location_source in _INFORMATIVE
             and (target.location_reported_at is None or national.location_reported_at > target.location_reported_at))
    if newer:
        point = to_shape(national.location)
        nationals.add_location(target.id, {"lat": point.y, "lon": point.x, "source": national.location_source,
                                           "precision_m": national.location_precision_m,
                                           "reported_at": national.location_reported_at}, user)
    nationals.erase_national(national.id, user)
    return target.id
