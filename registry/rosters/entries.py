"""A roster's people as the caller may see them: the call list (paged, filtered) and one entry."""
from __future__ import annotations

import uuid

from sqlalchemy import and_, func, literal, select

from registry.crises.models import Exposure
from registry.errors import NotFound
from registry.extensions import db
from registry.nationals.models import Deployment
from registry.nationals.services import visible_nationals
from registry.pagination import Keyset, bigint, keyset_page
from registry.rosters.models import PRIORITIES, Roster, RosterEntry, RosterPoint, WelfareStatus
from registry.rosters.services import require_built

_IN_ORDER = Keyset((RosterEntry.rank,), (bigint,))


def entries_query(roster: Roster, user):
    """(the visible-nationals subquery, the query of the roster's rows the caller may see, with everything
    a list or an export shows), ordered by the roster's order."""
    visible = visible_nationals(user).subquery()
    query = (select(RosterEntry, visible.c.family_name, visible.c.given_names, visible.c.native_name,
                    visible.c.sex, visible.c.date_of_birth, visible.c.phones, visible.c.vulnerabilities,
                    Exposure.household_id, Exposure.zone, Exposure.ring_km, Exposure.distance_km, Exposure.certainty,
                    func.ST_X(Exposure.location).label("lon"), func.ST_Y(Exposure.location).label("lat"),
                    RosterPoint.name.label("assembly_point"), RosterPoint.kind.label("assembly_point_kind"),
                    func.ST_X(RosterPoint.location).label("assembly_point_lon"),
                    func.ST_Y(RosterPoint.location).label("assembly_point_lat"),
                    Deployment.host_country, Deployment.city, WelfareStatus)
             .join(visible, visible.c.id == RosterEntry.national_id)
             .join(Exposure, and_(Exposure.run_id == literal(roster.run_id), Exposure.national_id == RosterEntry.national_id))
             .outerjoin(RosterPoint, and_(RosterPoint.roster_id == RosterEntry.roster_id,
                                          RosterPoint.assembly_point_id == RosterEntry.assembly_point_id))
             .outerjoin(Deployment, and_(Deployment.national_id == RosterEntry.national_id, Deployment.is_current))
             .outerjoin(WelfareStatus, and_(WelfareStatus.crisis_id == literal(roster.crisis_id),
                                            WelfareStatus.national_id == RosterEntry.national_id))
             .where(RosterEntry.roster_id == roster.id))
    return visible, query


def entry_row(result) -> dict:
    (entry, family, given, native, sex, born, phones, vulnerabilities, household, zone, ring_km, distance_km, certainty,
     lon, lat, point, point_kind, point_lon, point_lat, host, city, welfare) = result
    return {"national_id": entry.national_id, "family_name": family, "given_names": given, "native_name": native,
            "sex": sex, "date_of_birth": born, "phones": phones or [], "vulnerabilities": vulnerabilities or [],
            "household_id": household, "priority": entry.priority,
            "priority_label": PRIORITIES[entry.priority], "rank": entry.rank, "zone": zone, "ring_km": ring_km,
            "distance_km": distance_km, "certainty": certainty, "lat": lat, "lon": lon,
            "assembly_point_id": entry.assembly_point_id, "assembly_point": point,
            "assembly_point_kind": point_kind, "assembly_point_lat": point_lat, "assembly_point_lon": point_lon,
            "vehicle": entry.vehicle, "seat": entry.seat, "distance_to_point_km": entry.distance_to_point_km,
            "unassigned_reason": entry.unassigned_reason, "host_country": host, "city": city,
            "welfare_status": welfare.status if welfare else "unknown",
            "welfare_note": welfare.note if welfare else None,
            "welfare_updated_at": welfare.updated_at if welfare else None,
            "contact_attempts": welfare.contact_attempts if welfare else 0,
            "last_contact_at": welfare.last_contact_at if welfare else None,
            "last_contact_outcome": welfare.last_contact_outcome if welfare else None,
            "reached": welfare.reached if welfare else False}


def list_entries(roster: Roster, user, *, welfare_status=None, reached=None, assembly_point_id=None,
                 vehicle=None, assigned=None, priority=None, limit: int = 100, cursor: str | None = None) -> dict:
    """The call list: the roster's people in its order, filtered (``reached`` False: never reached yet)."""
    require_built(roster)
    _, query = entries_query(roster, user)
    if welfare_status == "unknown":
        query = query.where(func.coalesce(WelfareStatus.status, "unknown") == "unknown")
    elif welfare_status:
        query = query.where(WelfareStatus.status == welfare_status)
    if reached is not None:
        query = query.where(func.coalesce(WelfareStatus.reached, False).is_(reached))
    if assembly_point_id:
        query = query.where(RosterEntry.assembly_point_id == assembly_point_id)
    if vehicle is not None:
        query = query.where(RosterEntry.vehicle == vehicle)
    if assigned is not None:
        query = query.where(RosterEntry.assembly_point_id.isnot(None) if assigned
                            else RosterEntry.assembly_point_id.is_(None))
    if priority is not None:
        query = query.where(RosterEntry.priority == priority)
    return keyset_page(query, _IN_ORDER, limit=limit, cursor=cursor, key=lambda row: (row["rank"],),
                       rows=lambda statement: [entry_row(r) for r in db.session.execute(statement)])


def get_entry(roster: Roster, national_id: uuid.UUID, user) -> dict:
    """One entry the caller may see. :raises NotFound:"""
    require_built(roster)
    _, query = entries_query(roster, user)
    found = db.session.execute(query.where(RosterEntry.national_id == national_id)).first()
    if found is None:
        raise NotFound("No such national in this roster.")
    return entry_row(found)


