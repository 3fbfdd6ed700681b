"""Rosters: requested by coordinators, built by a worker, read (and diffed) within the caller's jurisdiction.

A roster request resolves everything it depends on at once (the exposure run,
the zones, the assembly points) and stores it with a queued job in the
request's transaction; the worker's result then depends only on that stored
input and the run's rows, so building it twice gives the same roster.
"""
from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select, text

from registry.auth.reach import Reach
from registry.crises.exposure import degrees
from registry.crises.models import CERTAINTIES, ZONES, CallClaim, Crisis, Exposure, ExposureCount, ExposureRun
from registry.crises.services import get_crisis, latest_run, version_of
from registry.errors import NotFound, Unprocessable
from registry.extensions import db, get_or_404
from registry.jobs import services as jobs
from registry.nationals.services import on_erasure, visible_nationals
from registry.pagination import Keyset, bigint, keyset_page
from registry.assembly_points.models import AssemblyPoint
from registry.rosters.models import Roster, RosterEntry, RosterPoint, WelfareEvent, WelfareStatus

ROSTER_TASK = "rosters.build"
DEFAULT_VEHICLE_CAPACITY = 40
# Far enough for a bus ride to an airport or a border post; beyond it, a roster says so per person.
DEFAULT_MAX_DISTANCE_KM = 100.0
MAX_EXPLICIT_POINTS = 5000

# Each piece's box is also searched shifted by ±360°: a ring reaches countries across the antimeridian.
_AFFECTED_COUNTRIES_SQL = text("""
SELECT DISTINCT cp.alpha2
FROM crisis_area_parts p CROSS JOIN (VALUES (-360.0), (0.0), (360.0)) AS shift(x)
JOIN country_parts cp
  ON cp.geom && ST_Expand(ST_Translate(p.geom, shift.x, 0), :reach_deg)
 AND ST_DWithin(cp.geom::geography, p.geom::geography, :reach_m)
WHERE p.crisis_id = :crisis_id AND p.version = :version
""")


def _affected_countries(run: ExposureRun, reach_km: float) -> list[str]:
    """Countries the area or its outer ring touch: where the default assembly points are."""
    reach_m = reach_km * 1000.0
    return sorted(db.session.scalars(_AFFECTED_COUNTRIES_SQL, {
        "crisis_id": run.crisis_id, "version": run.version, "reach_m": reach_m, "reach_deg": degrees(reach_m)}))


def _resolve_points(data: dict, run: ExposureRun, reach_km: float) -> list[uuid.UUID]:
    """:raises Unprocessable: unknown or inactive points named, or none to use."""
    ids = data.get("assembly_point_ids")
    if ids:
        found = dict(db.session.execute(select(AssemblyPoint.id, AssemblyPoint.active)
                                        .where(AssemblyPoint.id.in_(ids))).all())
        unknown = [str(i) for i in ids if i not in found]
        inactive = [str(i) for i in ids if found.get(i) is False]
        if unknown or inactive:
            messages = ([f"Unknown: {', '.join(unknown)}."] if unknown else []) + \
                       ([f"Inactive: {', '.join(inactive)}."] if inactive else [])
            raise Unprocessable("Some assembly points cannot be used.", errors={"assembly_point_ids": messages})
        return sorted(set(ids))
    countries = _affected_countries(run, reach_km)
    return sorted(db.session.scalars(select(AssemblyPoint.id).where(
        AssemblyPoint.active.is_(True), AssemblyPoint.country.in_(countries))))


def request_roster(crisis_id: uuid.UUID, data: dict, user) -> Roster:
    """A queued roster of the crisis's latest succeeded run. :raises NotFound, Unprocessable:"""
    crisis = db.session.scalar(select(Crisis).where(Crisis.id == crisis_id).with_for_update())
    if crisis is None:
        raise NotFound("No such crisis.")
    if crisis.status != "active":
        raise Unprocessable("The crisis is closed; reopen it to build a roster.", errors={"status": ["Closed."]})
    run = latest_run(crisis, succeeded=True)
    if run is None:
        newest = latest_run(crisis)
        state = newest.status if newest else "missing"
        raise Unprocessable(f"The exposure run of version {crisis.version} is {state}; retry when it has "
                            "succeeded.", errors={"run": [state]})
    params = {
        "zones": sorted(data.get("zones") or ZONES),
        "certainties": sorted(data.get("certainties") or CERTAINTIES),
        "max_ring_km": data.get("max_ring_km"),
        "vehicle_capacity": int(data.get("vehicle_capacity", DEFAULT_VEHICLE_CAPACITY)),
        "max_distance_km": float(data.get("max_distance_km", DEFAULT_MAX_DISTANCE_KM)),
    }
    outer_ring_km = max(version_of(crisis, run.version).zones_km or [0.0])
    points = _resolve_points(data, run, outer_ring_km)
    params["assembly_point_ids"] = [str(p) for p in points]
    number = (db.session.scalar(select(func.max(Roster.number)).where(Roster.crisis_id == crisis.id)) or 0) + 1
    roster = Roster(id=uuid.uuid4(), crisis_id=crisis.id, number=number, run_id=run.id, version=run.version,
                    params=params, status="queued", created_by=user.id if user else None)
    job = jobs.enqueue("roster", ROSTER_TASK, params={"roster_id": str(roster.id)},
                       created_by=user.id if user else crisis.created_by)
    roster.job_id = job.id
    db.session.add(roster)
    db.session.flush()
    return roster


def get_roster(roster_id: uuid.UUID) -> Roster:
    return get_or_404(Roster, roster_id, "No such roster.")


def list_rosters(crisis_id: uuid.UUID, *, limit: int = 100, cursor: str | None = None) -> dict:
    get_crisis(crisis_id)
    query = select(Roster).where(Roster.crisis_id == crisis_id)
    return keyset_page(query, _NEWEST_FIRST, limit=limit, cursor=cursor, key=lambda r: (r.number,))


_NEWEST_FIRST = Keyset((Roster.number,), (bigint,), descending=True)


# ---------------------------------------------------------------------- reading

def visible_counts(roster: Roster, user) -> dict | None:
    """``assigned``, ``unassigned``, ``by_reason``, ``vehicles`` and ``by_assembly_point`` as the caller may
    see them: an embassy officer counts only their jurisdiction's people (capacities are not personal)."""
    if roster.status != "succeeded":
        return None
    points = list(db.session.scalars(select(RosterPoint).where(RosterPoint.roster_id == roster.id)
                                     .order_by(RosterPoint.position)))
    if Reach.of(user).is_everywhere:
        counts = dict(roster.counts)
        per_point = {p.assembly_point_id: (p.assigned, p.vehicles) for p in points}
    else:
        visible = visible_nationals(user).subquery()
        rows = db.session.execute(
            select(RosterEntry.assembly_point_id, RosterEntry.unassigned_reason, func.count(),
                   func.count(func.distinct(RosterEntry.vehicle)))
            .join(visible, visible.c.id == RosterEntry.national_id)
            .where(RosterEntry.roster_id == roster.id)
            .group_by(RosterEntry.assembly_point_id, RosterEntry.unassigned_reason)).all()
        per_point = {point: (number, vehicles) for point, reason, number, vehicles in rows if point}
        by_reason = {reason: number for point, reason, number, _ in rows if reason}
        counts = {"assigned": sum(n for n, _ in per_point.values()), "unassigned": sum(by_reason.values()),
                  "by_reason": by_reason, "vehicles": sum(v for _, v in per_point.values())}
    counts["by_assembly_point"] = [
        {"assembly_point_id": p.assembly_point_id, "name": p.name, "kind": p.kind, "country": p.country,
         "capacity": p.capacity, "assigned": per_point.get(p.assembly_point_id, (0, 0))[0],
         "vehicles": per_point.get(p.assembly_point_id, (0, 0))[1]} for p in points]
    return counts


def roster_out(roster: Roster, user) -> dict:
    return {"id": roster.id, "crisis_id": roster.crisis_id, "number": roster.number, "run_id": roster.run_id,
            "version": roster.version, "status": roster.status, "job_id": roster.job_id, "params": roster.params,
            "counts": visible_counts(roster, user), "created_at": roster.created_at,
            "finished_at": roster.finished_at}


def require_built(roster: Roster) -> None:
    """:raises Unprocessable: the roster is not (yet) built."""
    if roster.status != "succeeded":
        raise Unprocessable(f"The roster is {roster.status}; retry when it has succeeded.",
                            errors={"status": [roster.status]})


@on_erasure
def _forget_welfare(national_id: uuid.UUID) -> None:
    """An erased national's welfare records go (free-text notes). Roster entries keep only ids and a
    place; every read joins the (now erased) national and leaves them out."""
    for table in (WelfareEvent, WelfareStatus):
        db.session.execute(delete(table).where(table.national_id == national_id))


def previous_roster(roster: Roster) -> Roster | None:
    return db.session.scalar(select(Roster).where(Roster.crisis_id == roster.crisis_id,
                                                  Roster.number < roster.number, Roster.status == "succeeded")
                             .order_by(Roster.number.desc()).limit(1))


def purge_closed(older_than_days: int) -> list[uuid.UUID]:
    """Delete the rosters, welfare records and exposure rows of crises closed more than ``older_than_days``
    ago (SPEC §6b); the crisis, its versions and its runs' counts stay. The ids of the crises purged."""
    crisis_ids = list(db.session.scalars(select(Crisis.id).where(
        Crisis.status == "closed", Crisis.closed_at < func.now() - func.make_interval(0, 0, 0, older_than_days))))
    if not crisis_ids:
        return []
    runs = select(ExposureRun.id).where(ExposureRun.crisis_id.in_(crisis_ids))
    rosters = select(Roster.id).where(Roster.crisis_id.in_(crisis_ids))
    deleted = 0
    deleted += db.session.execute(delete(RosterEntry).where(RosterEntry.roster_id.in_(rosters))).rowcount
    deleted += db.session.execute(delete(Roster).where(Roster.crisis_id.in_(crisis_ids))).rowcount
    deleted += db.session.execute(delete(WelfareEvent).where(WelfareEvent.crisis_id.in_(crisis_ids))).rowcount
    deleted += db.session.execute(delete(WelfareStatus).where(WelfareStatus.crisis_id.in_(crisis_ids))).rowcount
    deleted += db.session.execute(delete(CallClaim).where(CallClaim.crisis_id.in_(crisis_ids))).rowcount
    deleted += db.session.execute(delete(Exposure).where(Exposure.run_id.in_(runs))).rowcount
    db.session.execute(delete(ExposureCount).where(ExposureCount.run_id.in_(runs)))
    return crisis_ids if deleted else []
