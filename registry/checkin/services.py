"""Self check-in and self-registration (SPEC §10): what the public pages do, without HTTP.

A check-in link (``registry.checkin.links``) opens one person's page in one crisis. The person proves it is
them with their date of birth: a wrong one records nothing but the failure, and the fifth locks the link
(an officer issues a new one: ``links.reissue``). A right one records their answer three ways: a welfare
status through ``registry.crises.welfare`` (source ``self``), a location report through the nationals
service (source ``self_report``: it moves their jurisdiction when they crossed a border, and the next
exposure run uses it), and the answer itself (``checkin_answers``, purged with the closed crisis).

Self-registration creates an ``unverified`` national (``nationals.services.create_self_registration``) for
the verification queue (``registry.checkin.verification``); it never merges into an existing record.
Services flush, never commit.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import delete, func, select, text

from registry import geo
from registry.checkin import links
from registry.checkin.models import CheckinAnswer, CheckinLink, SelfRegistration
from registry.crises import welfare
from registry.crises.models import Crisis
from registry.errors import Conflict, NotFound, Unprocessable
from registry.extensions import db
from registry.geo import point_wkt
from registry.nationals import services as nationals
from registry.nationals.models import National

MAX_FAILED_ATTEMPTS = 5
# Without a stated accuracy, a phone's point is taken as precise to this (a browser always gives one).
DEFAULT_ACCURACY_M = 100.0
OPEN, LOCKED, EXPIRED = "open", "locked", "expired"


def open_link(token: str) -> tuple[CheckinLink, Crisis, National]:
    """The link a token opens, its crisis and its person. :raises NotFound: no such link, or the person's
    record was erased."""
    link = links.find(token)
    if link is None:
        raise NotFound("This check-in link is not known.")
    crisis = db.session.get(Crisis, link.crisis_id)
    national = db.session.get(National, link.national_id)
    if crisis is None or national is None or national.erased_at is not None:
        raise NotFound("This check-in link is not known.")
    return link, crisis, national


def state_of(link: CheckinLink, crisis: Crisis) -> str:
    """``expired`` (the crisis closed, or past the link's expiry), ``locked`` (too many wrong dates of
    birth), else ``open``."""
    if crisis.status != "active" or link.expires_at <= datetime.now(timezone.utc):
        return EXPIRED
    if link.locked_at is not None:
        return LOCKED
    return OPEN


def lock_for_answer(link: CheckinLink) -> None:
    """Hold the link's row until the request ends: two answers at once count their failures right."""
    db.session.refresh(link, with_for_update=True)


def failed_attempt(link: CheckinLink) -> int:
    """Count a wrong date of birth; the tries left (0: the link is locked now)."""
    link.failed_attempts += 1
    if link.failed_attempts >= MAX_FAILED_ATTEMPTS:
        link.locked_at = datetime.now(timezone.utc)
    db.session.flush()
    return max(0, MAX_FAILED_ATTEMPTS - link.failed_attempts)


def check_in(link: CheckinLink, national: National, answer: dict) -> CheckinAnswer:
    """Record a person's answer (``status``, ``household_present``, ``note``, optional ``lat``, ``lon``,
    ``accuracy_m``), the date of birth already checked: a welfare status (source ``self``), a location
    report (source ``self_report``) when a point is given, and the answer itself."""
    update = {"welfare_status": answer["status"], "contact": {"channel": "other", "outcome": "reached"}}
    if answer.get("note"):
        update["note"] = answer["note"]
    welfare.record(link.crisis_id, link.national_id, update, None, source="self")
    located = answer.get("lat") is not None and answer.get("lon") is not None
    accuracy = answer.get("accuracy_m")
    if located:
        nationals.add_self_report(national, answer["lat"], answer["lon"],
                                  DEFAULT_ACCURACY_M if accuracy is None else accuracy)
    stored = CheckinAnswer(crisis_id=link.crisis_id, national_id=link.national_id, status=answer["status"],
                           household_present=answer.get("household_present"), note=answer.get("note"),
                           location=f"SRID=4326;{point_wkt(answer['lon'], answer['lat'])}" if located else None,
                           accuracy_m=accuracy if located else None)
    db.session.add(stored)
    link.failed_attempts, link.last_used_at = 0, datetime.now(timezone.utc)
    db.session.flush()
    return stored


def issue_new_link(crisis_id: uuid.UUID, national_id: uuid.UUID, user) -> dict:
    """A new link for a person exposed in an active crisis, for an officer to send by hand (a locked link, a
    lost message): the old token stops working, the tries are counted again from zero.
    :raises NotFound: not exposed in the crisis, or outside ``user``'s reach; Conflict: the crisis is closed."""
    crisis = db.session.get(Crisis, crisis_id)
    if crisis is None:
        raise NotFound("No such crisis.")
    welfare.exposed(crisis_id, national_id, user)
    if crisis.status != "active":
        raise Conflict("The crisis is closed: its check-in links no longer work.")
    links.ensure_many(crisis_id, [national_id])
    link = db.session.get(CheckinLink, (crisis_id, national_id), with_for_update=True)
    url = links.reissue(link)
    return {"crisis_id": crisis_id, "national_id": national_id, "url": url, "expires_at": link.expires_at,
            "generation": link.generation}


# ---------------------------------------------------------------------- self-registration

def registration_crisis(crisis_id: uuid.UUID) -> Crisis:
    """The crisis whose self-registration page this is. :raises NotFound: unknown, closed, or the
    coordinator has not turned self-registration on (a page that does not exist, either way)."""
    crisis = db.session.get(Crisis, crisis_id)
    if crisis is None or crisis.status != "active" or not crisis.self_registration:
        raise NotFound("There is no self-registration page here.")
    return crisis


# The country most of the crisis's current area lies in; for an area wholly at sea, the nearest one.
_CRISIS_COUNTRY = text("""
SELECT coalesce(
    (SELECT cp.alpha2 FROM crisis_area_parts a
     JOIN country_parts cp ON cp.geom && a.geom AND ST_Intersects(cp.geom, a.geom)
     WHERE a.crisis_id = :crisis_id AND a.version = :version
     GROUP BY cp.alpha2 ORDER BY sum(ST_Area(ST_Intersection(cp.geom, a.geom))) DESC, cp.alpha2 LIMIT 1),
    (SELECT cp.alpha2 FROM crisis_area_parts a CROSS JOIN LATERAL (
         SELECT alpha2, geom FROM country_parts ORDER BY country_parts.geom <-> a.geom LIMIT 1) cp
     WHERE a.crisis_id = :crisis_id AND a.version = :version
     ORDER BY ST_Distance(cp.geom, a.geom) LIMIT 1))
""")


def crisis_country(crisis: Crisis) -> str | None:
    """The country of the crisis's area: where a self-registration without a point is placed."""
    return db.session.execute(_CRISIS_COUNTRY, {"crisis_id": crisis.id, "version": crisis.version}).scalar()


def self_register(crisis: Crisis, data: dict) -> tuple[National, uuid.UUID | None]:
    """Register the person of ``data`` (the form, validated: names, ``date_of_birth``, ``phone``, documents,
    ``lat``/``lon`` (+ ``accuracy_m``) or ``where``, ``sex``) as an unverified national of the host country
    (the point's, else the crisis's), for the verification queue. → (national, holder of the same passport).
    :raises Unprocessable: the point is at sea or (0, 0)."""
    location, host = None, None
    if data.get("lat") is not None and data.get("lon") is not None:
        host, problem = geo.check_on_land(data["lon"], data["lat"])
        if problem:
            raise Unprocessable(problem.message, errors={problem.field: [problem.message]})
        location = {"lat": data["lat"], "lon": data["lon"],
                    "precision_m": data.get("accuracy_m") if data.get("accuracy_m") is not None else DEFAULT_ACCURACY_M}
    host = host or crisis_country(crisis)
    person = {key: data.get(key) for key in ("family_name", "given_names", "date_of_birth", "sex")}
    person["phones"] = [data["phone"]] if data.get("phone") else []
    for field in ("passport_number", "national_id_number"):
        if data.get(field):
            person[field] = data[field]
    national, holder = nationals.create_self_registration(person, host, location=location, place=data.get("where"))
    db.session.add(SelfRegistration(national_id=national.id, crisis_id=crisis.id, passport_holder_id=holder))
    db.session.flush()
    return national, holder


# ---------------------------------------------------------------------- retention and erasure

def purge_closed(older_than_days: int) -> list[uuid.UUID]:
    """Delete the check-in answers and links of crises closed more than ``older_than_days`` ago (SPEC §12);
    the ids of the crises that had any."""
    closed = select(Crisis.id).where(Crisis.status == "closed",
                                     Crisis.closed_at < func.now() - func.make_interval(0, 0, 0, older_than_days))
    purged = set(db.session.scalars(delete(CheckinAnswer).where(CheckinAnswer.crisis_id.in_(closed))
                                    .returning(CheckinAnswer.crisis_id)))
    purged |= set(db.session.scalars(delete(CheckinLink).where(CheckinLink.crisis_id.in_(closed))
                                     .returning(CheckinLink.crisis_id)))
    return sorted(purged)


@nationals.on_erasure
def _forget_answers(national_id: uuid.UUID) -> None:
    """An erased national's answers go (they hold a location and a note), and so do their links."""
    db.session.execute(delete(CheckinAnswer).where(CheckinAnswer.national_id == national_id))
    db.session.execute(delete(CheckinLink).where(CheckinLink.national_id == national_id))
