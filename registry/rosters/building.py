"""Rosters: requested by coordinators, built by a worker, read (and diffed) within the caller's jurisdiction.

A roster request resolves everything it depends on at once (the exposure run,
the zones, the assembly points) and stores it with a queued job in the
request's transaction; the worker's result then depends only on that stored
input and the run's rows, so building it twice gives the same roster.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import and_, delete, func, literal, select, text

from registry.auth import scope
from registry.auth.reach import Reach
from registry.crises.exposure import degrees
from registry.crises.models import CERTAINTIES, ZONES, Crisis, Exposure, ExposureRun
from registry.crises.services import get_crisis, latest_run, version_of
from registry.errors import NotFound, Unprocessable
from registry.extensions import db
from registry.jobs import services as jobs
from registry.nationals.models import Deployment
from registry.nationals.services import visible_nationals
from registry.pagination import Keyset, bigint, keyset_page
from registry.rosters import assign, compute
from registry.rosters.models import (PRIORITIES, UNASSIGNED_REASONS, AssemblyPoint, Roster, RosterEntry,
                                     RosterPoint, WelfareEvent, WelfareStatus)

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
    roster = db.session.get(Roster, roster_id)
    if roster is None:
        raise NotFound("No such roster.")
    return roster


def list_rosters(crisis_id: uuid.UUID, *, limit: int = 100, cursor: str | None = None) -> dict:
    get_crisis(crisis_id)
    query = select(Roster).where(Roster.crisis_id == crisis_id)
    return keyset_page(query, _NEWEST_FIRST, limit=limit, cursor=cursor, key=lambda r: (r.number,))


_NEWEST_FIRST = Keyset((Roster.number,), (bigint,), descending=True)
_IN_ORDER = Keyset((RosterEntry.rank,), (bigint,))


# ---------------------------------------------------------------------- building (the worker)

_POINTS_SQL = text("""
SELECT id, name, kind, country, location, ST_X(location) AS lon, ST_Y(location) AS lat, capacity
FROM assembly_points WHERE id = ANY(:ids) ORDER BY id
""")


def build(job) -> dict:
    """The task's work: the roster's entries, points and counts (the caller commits). Rerunnable."""
    roster = db.session.get(Roster, uuid.UUID(job.params["roster_id"]))
    if roster is None:
        raise NotFound("The roster is gone (its crisis was deleted).")
    params = roster.params
    roster.status = "running"
    # The entries are written and committed on connections of their own (two at once for a large roster,
    # compute.write_entries) before this transaction marks the roster succeeded: readers only read
    # succeeded rosters, and a rerun (or a failure, ``mark_failed``) first deletes what an attempt left.
    with db.engine.begin() as connection:
        connection.execute(*scope.everything_statement())
        connection.execute(delete(RosterEntry).where(RosterEntry.roster_id == roster.id))
    db.session.execute(text("SET LOCAL work_mem = '256MB'"))
    db.session.execute(text("SET LOCAL jit = off"))
    db.session.execute(delete(RosterPoint).where(RosterPoint.roster_id == roster.id))
    points = db.session.execute(_POINTS_SQL, {"ids": [uuid.UUID(p) for p in params["assembly_point_ids"]]}).all()
    cursor = db.session.connection().connection.driver_connection.cursor()
    started = time.perf_counter()
    ids, members = compute.read_members(cursor, roster.run_id, params)
    read_s = time.perf_counter() - started
    jobs.set_progress(job.id, 0.3)
    started = time.perf_counter()
    result = assign.assign(members, assign.Points(
        lon=np.array([p.lon for p in points], dtype=np.float64), lat=np.array([p.lat for p in points], dtype=np.float64),
        capacity=np.array([p.capacity for p in points], dtype=np.int64)),
        vehicle_capacity=params["vehicle_capacity"], max_distance_km=params["max_distance_km"])
    assign_s = time.perf_counter() - started
    jobs.set_progress(job.id, 0.6)
    started = time.perf_counter()
    compute.write_entries(db.engine, scope.everything_statement(), roster.id, ids, result, [p.id for p in points])
    write_s = time.perf_counter() - started
    by_name = sorted(range(len(points)), key=lambda i: (points[i].name.casefold(), str(points[i].id)))
    position = {index: place for place, index in enumerate(by_name)}
    db.session.add_all(RosterPoint(roster_id=roster.id, assembly_point_id=p.id, name=p.name, kind=p.kind,
                                   country=p.country, location=p.location, capacity=p.capacity,
                                   position=position[i], assigned=int(result.assigned_per_point[i]),
                                   vehicles=int(result.vehicles_per_point[i]))
                       for i, p in enumerate(points))
    reasons = np.bincount(result.reason, minlength=len(UNASSIGNED_REASONS) + 1)
    counts = {"assigned": int((result.point >= 0).sum()), "unassigned": int((result.point < 0).sum()),
              "by_reason": {reason: int(reasons[code]) for code, reason in enumerate(UNASSIGNED_REASONS, start=1)
                            if reasons[code]},
              "vehicles": int(result.vehicles_per_point.sum())}
    roster.status, roster.counts, roster.finished_at = "succeeded", counts, datetime.now(timezone.utc)
    jobs.finish(job.id, {"roster_id": str(roster.id), "counts": counts, "seconds": {
        "read": round(read_s, 3), "assign": round(assign_s, 3), "write": round(write_s, 3)}})
    return counts


def mark_failed(job_id: uuid.UUID) -> None:
    """The roster of a failed job: failed, and without the entries an attempt may have committed."""
    failed = select(Roster.id).where(Roster.job_id == job_id).scalar_subquery()
    db.session.execute(delete(RosterEntry).where(RosterEntry.roster_id == failed))
    db.session.execute(Roster.__table__.update().where(Roster.job_id == job_id).values(status="failed"))


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


# People added, removed, or moved (another point, vehicle or reason) between two rosters, in one statement;
# each list capped at :cap rows in roster order, with its full count. ``{visible}`` narrows to the caller's
# jurisdiction (and, as every read, leaves erased nationals out).
_DIFF_SQL = """
WITH pairs AS (
    SELECT coalesce(new.national_id, old.national_id) AS national_id,
           CASE WHEN old.national_id IS NULL THEN 'added' WHEN new.national_id IS NULL THEN 'removed'
                ELSE 'changed' END AS kind,
           new.assembly_point_id, new.vehicle, new.seat, coalesce(new.priority, old.priority) AS priority,
           new.unassigned_reason, coalesce(new.rank, old.rank) AS rank,
           old.assembly_point_id AS old_assembly_point_id, old.vehicle AS old_vehicle,
           old.unassigned_reason AS old_unassigned_reason
    FROM (SELECT * FROM roster_entries WHERE roster_id = :new) new
    FULL JOIN (SELECT * FROM roster_entries WHERE roster_id = :old) old ON old.national_id = new.national_id
    WHERE old.national_id IS NULL OR new.national_id IS NULL
       OR old.assembly_point_id IS DISTINCT FROM new.assembly_point_id OR old.vehicle IS DISTINCT FROM new.vehicle
       OR old.unassigned_reason IS DISTINCT FROM new.unassigned_reason
), ranked AS (
    SELECT d.*, n.family_name, n.given_names, row_number() OVER (PARTITION BY d.kind ORDER BY d.rank) AS place,
           count(*) OVER (PARTITION BY d.kind) AS total
    FROM pairs d JOIN nationals n ON n.id = d.national_id AND n.erased_at IS NULL {visible}
)
SELECT r.*, p.name AS assembly_point, op.name AS old_assembly_point,
       coalesce(x.zone, ox.zone) AS zone, coalesce(x.distance_km, ox.distance_km) AS distance_km
FROM ranked r
LEFT JOIN roster_points p ON p.roster_id = :new AND p.assembly_point_id = r.assembly_point_id
LEFT JOIN roster_points op ON op.roster_id = :old AND op.assembly_point_id = r.old_assembly_point_id
LEFT JOIN exposures x ON x.run_id = :new_run AND x.national_id = r.national_id
LEFT JOIN exposures ox ON ox.run_id = :old_run AND ox.national_id = r.national_id
WHERE r.place <= :cap
ORDER BY r.kind, r.place
"""
DIFF_CAP = 10_000


def diff(roster: Roster, other: Roster, user, *, cap: int = DIFF_CAP) -> dict:
    """What changed from ``other`` (an earlier roster of the crisis) to ``roster``: people ``added``,
    ``removed`` and ``changed`` (another point, vehicle or reason), each in roster order and capped at
    ``cap`` rows, with every list's full size in ``counts``."""
    require_built(roster)
    require_built(other)
    if other.crisis_id != roster.crisis_id:
        raise Unprocessable("Both rosters must belong to the same crisis.", errors={"from": ["Another crisis."]})
    visible, reach_params = Reach.of(user).sql("n.jurisdiction_country")
    found = db.session.execute(text(_DIFF_SQL.format(visible=visible)), {
        "new": roster.id, "old": other.id, "new_run": roster.run_id, "old_run": other.run_id, "cap": cap,
        **reach_params}).mappings().all()
    result = {"from": other.id, "to": roster.id, "added": [], "removed": [], "changed": [],
              "counts": {"added": 0, "removed": 0, "changed": 0}}
    for row in found:
        result[row["kind"]].append(dict(row))
        result["counts"][row["kind"]] = row["total"]
    result["truncated"] = any(result["counts"][kind] > len(result[kind]) for kind in ("added", "removed", "changed"))
    return result


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
    deleted += db.session.execute(delete(Exposure).where(Exposure.run_id.in_(runs))).rowcount
    return crisis_ids if deleted else []
