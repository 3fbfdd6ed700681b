"""Declaring, changing and reading crises; their exposure runs and lists.

Declaring (or changing the area or rings of) a crisis writes a new version
and a queued exposure run with its job in the request's transaction; the
job is dispatched after commit through the outbox, so a broker outage or a
killed worker delays the run but never loses it. Exposure rows are read
through ``visible_nationals``: an embassy officer sees only their
jurisdiction's rows, and counts computed from them.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import and_, func, select, tuple_, update

from registry.crises import areas, exposure
from registry.crises.models import Crisis, CrisisVersion, Exposure, ExposureRun
from registry.errors import NotFound, Unprocessable
from registry.extensions import db
from registry.jobs import services as jobs
from registry.nationals.models import Country, Deployment, National
from registry.nationals.services import visible_nationals
from registry.pagination import decode_keys, encode_cursor

EXPOSURE_TASK = "crises.run_exposure"


def _countries_geometry(codes: list[str]):
    found = db.session.execute(select(Country.alpha2, func.ST_AsBinary(Country.geom))
                               .where(Country.alpha2.in_(codes))).all()
    unknown = sorted(set(codes) - {code for code, _ in found})
    if unknown:
        raise areas.InvalidArea(f"Unknown country codes: {', '.join(unknown)}.", "area.codes")
    return shapely.union_all([shapely.from_wkb(bytes(wkb)) for _, wkb in found])


def _new_version(crisis: Crisis, area, source: dict, zones_km: list[float]) -> ExposureRun:
    db.session.add(CrisisVersion(crisis_id=crisis.id, version=crisis.version, geom=from_shape(area, srid=4326),
                                 zones_km=zones_km, source=source,
                                 vertices=int(shapely.get_num_coordinates(area))))
    db.session.flush()
    run = ExposureRun(id=uuid.uuid4(), crisis_id=crisis.id, version=crisis.version)
    job = jobs.enqueue("exposure", EXPOSURE_TASK, params={"run_id": str(run.id)}, created_by=crisis.created_by)
    run.job_id = job.id
    db.session.add(run)
    db.session.flush()
    return run


def declare(data: dict, user) -> Crisis:
    """A new active crisis, version 1, with its first exposure run queued. :raises InvalidArea:"""
    area, source = areas.area_from_spec(data["area"], _countries_geometry)
    zones = areas.zones_from_spec(data.get("zones_km"))
    severity = data.get("severity") or source.get("severity")
    if not severity:
        raise Unprocessable("Give 'severity' (or a CAP alert that carries one).",
                            errors={"severity": ["Missing data for required field."]})
    crisis = Crisis(id=uuid.uuid4(), name=data["name"], kind=data["kind"], severity=severity, version=1,
                    created_by=user.id)
    db.session.add(crisis)
    db.session.flush()
    _new_version(crisis, area, source, zones)
    return crisis


def get_crisis(crisis_id: uuid.UUID) -> Crisis:
    crisis = db.session.get(Crisis, crisis_id)
    if crisis is None:
        raise NotFound("No such crisis.")
    return crisis


def update_crisis(crisis_id: uuid.UUID, data: dict, user) -> Crisis:
    """Change severity or status; a new area or rings make a new version and a new run."""
    crisis = db.session.scalar(select(Crisis).where(Crisis.id == crisis_id).with_for_update())
    if crisis is None:
        raise NotFound("No such crisis.")
    reopening = data.get("status") == "active"
    if crisis.status == "closed" and not reopening and ("area" in data or "zones_km" in data):
        raise Unprocessable("The crisis is closed; reopen it (status active) to change its area.",
                            errors={"status": ["Closed."]})
    if "severity" in data:
        crisis.severity = data["severity"]
    if "status" in data and data["status"] != crisis.status:
        crisis.status = data["status"]
        crisis.closed_at = datetime.now(timezone.utc) if data["status"] == "closed" else None
    if "area" in data or "zones_km" in data:
        current = version_of(crisis)
        if "area" in data:
            area, source = areas.area_from_spec(data["area"], _countries_geometry)
        else:
            area, source = to_shape(current.geom), dict(current.source)
        zones = areas.zones_from_spec(data["zones_km"]) if "zones_km" in data else list(current.zones_km)
        crisis.version += 1
        _new_version(crisis, area, source, zones)
    crisis.updated_at = func.now()
    db.session.flush()
    db.session.refresh(crisis)
    return crisis


def version_of(crisis: Crisis, version: int | None = None) -> CrisisVersion:
    found = db.session.get(CrisisVersion, (crisis.id, version or crisis.version))
    if found is None:
        raise NotFound(f"The crisis has no version {version}.")
    return found


def latest_run(crisis: Crisis, version: int | None = None, *, succeeded: bool = False) -> ExposureRun | None:
    """The newest run of a version (the current one by default); with ``succeeded``, the newest finished one."""
    query = select(ExposureRun).where(ExposureRun.crisis_id == crisis.id,
                                      ExposureRun.version == (version or crisis.version))
    if succeeded:
        query = query.where(ExposureRun.status == "succeeded")
    return db.session.scalar(query.order_by(ExposureRun.created_at.desc()).limit(1))


def rerun(crisis: Crisis, user=None) -> ExposureRun:
    """A new run of the current version (nationals registered or moved since the last one)."""
    run = ExposureRun(id=uuid.uuid4(), crisis_id=crisis.id, version=crisis.version)
    job = jobs.enqueue("exposure", EXPOSURE_TASK, params={"run_id": str(run.id)},
                       created_by=user.id if user else crisis.created_by)
    run.job_id = job.id
    db.session.add(run)
    db.session.flush()
    return run


def refresh_active() -> list[uuid.UUID]:
    """Re-run every active crisis whose current run is older than a change to a national; their ids.

    The design for "nationals register or move during a crisis": not incremental
    updates of the rows, but a new run of the whole version, started by the
    worker's beat (every REGISTRY_EXPOSURE_REFRESH_SECONDS) when anything
    changed since the last run began. A run is one set-based statement, so a
    full re-run costs about what an incremental one would, and it is always
    exactly right. Lists keep serving the previous run until the new one succeeds.
    """
    started = []
    for crisis in db.session.scalars(select(Crisis).where(Crisis.status == "active")):
        run = latest_run(crisis)
        if run is not None and run.status in ("queued", "running"):
            continue
        since = run.created_at if run is not None else crisis.created_at
        changed = db.session.scalar(select(func.count()).select_from(
            select(National.id).where(National.updated_at > since).limit(1).subquery()))
        if changed:
            rerun(crisis)
            started.append(crisis.id)
    return started


def list_crises(*, status: str | None = None, limit: int = 100, cursor: str | None = None) -> dict:
    query = select(Crisis)
    if status:
        query = query.where(Crisis.status == status)
    total = db.session.scalar(query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None))
    if cursor:
        created, crisis_id = decode_keys(cursor, datetime.fromisoformat, uuid.UUID)
        query = query.where(tuple_(Crisis.created_at, Crisis.id) < tuple_(created, crisis_id))
    items = list(db.session.scalars(query.order_by(Crisis.created_at.desc(), Crisis.id.desc()).limit(limit + 1)))
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "total": total,
            "next_cursor": encode_cursor(items[-1].created_at.isoformat(), items[-1].id) if more else None}


# ---------------------------------------------------------------------- running

def run_exposure(job) -> dict:
    """The task's work: compute the run's rows, mark it succeeded with its counts (caller commits)."""
    run = db.session.get(ExposureRun, uuid.UUID(job.params["run_id"]))
    if run is None:
        raise NotFound("The exposure run is gone (its crisis was deleted).")
    version = db.session.get(CrisisVersion, (run.crisis_id, run.version))
    run.status = "running"
    counts = exposure.compute(run.id, run.crisis_id, run.version, list(version.zones_km))
    run.status, run.counts, run.finished_at = "succeeded", counts, datetime.now(timezone.utc)
    jobs.finish(job.id, {"run_id": str(run.id), "counts": counts})
    return counts


# ---------------------------------------------------------------------- reading rows

def _run_for(crisis: Crisis, version: int | None) -> ExposureRun:
    run = latest_run(crisis, version, succeeded=True)
    if run is None:
        newest = latest_run(crisis, version)
        state = newest.status if newest else "missing"
        raise Unprocessable(f"The exposure run of version {version or crisis.version} is {state}; "
                            "retry when it has succeeded.", errors={"run": [state]})
    return run


def _rows_query(user, run_id: uuid.UUID):
    """(the rows query, the visible-nationals subquery it joins)."""
    visible = visible_nationals(user).subquery()
    return visible, (select(Exposure, visible.c.family_name, visible.c.given_names, visible.c.vulnerabilities,
                   visible.c.phones, Deployment.host_country, Deployment.city)
            .join(visible, visible.c.id == Exposure.national_id)
            .outerjoin(Deployment, and_(Deployment.national_id == Exposure.national_id, Deployment.is_current))
            .where(Exposure.run_id == run_id))


def exposure_rows(crisis: Crisis, user, *, zone=None, ring_km=None, certainty=None, vulnerability=None, city=None,
                  version: int | None = None, limit: int | None = 1000, cursor: str | None = None) -> dict:
    """The run's rows the caller may see, filtered, ordered by distance; ``limit`` None for all (exports)."""
    run = _run_for(crisis, version)
    visible, query = _rows_query(user, run.id)
    if zone:
        query = query.where(Exposure.zone == zone)
    if ring_km is not None:
        query = query.where(Exposure.ring_km == ring_km)
    if certainty:
        query = query.where(Exposure.certainty == certainty)
    if vulnerability:
        query = query.where(visible.c.vulnerabilities.contains([vulnerability]))
    if city:
        query = query.where(func.lower(Deployment.city) == city.lower())
    counts = _counts(query)
    ordered = query.order_by(Exposure.distance_km, Exposure.national_id)
    if cursor:
        distance, national_id = decode_keys(cursor, float, uuid.UUID)
        ordered = ordered.where(tuple_(Exposure.distance_km, Exposure.national_id) > tuple_(distance, national_id))
    if limit is not None:
        ordered = ordered.limit(limit + 1)
    rows = [_row(r) for r in db.session.execute(ordered)]
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    return {"run": run, "items": rows, "total": counts["total"], "counts": counts,
            "next_cursor": encode_cursor(rows[-1]["distance_km"], rows[-1]["national_id"]) if more else None}


def _row(result) -> dict:
    entry, family, given, vulnerabilities, phones, host, city = result
    point = to_shape(entry.location) if entry.location is not None else None
    return {"national_id": entry.national_id, "family_name": family, "given_names": given, "zone": entry.zone,
            "ring_km": entry.ring_km, "distance_km": entry.distance_km, "certainty": entry.certainty,
            "location": {"lat": point.y, "lon": point.x, "source": entry.location_source,
                         "precision_m": entry.location_precision_m} if point else None,
            "location_age_days": entry.location_age_days, "vulnerabilities": vulnerabilities or [],
            "phones": phones or [], "host_country": host, "city": city}


def visible_counts(crisis: Crisis, user) -> dict | None:
    """The latest run's counts as the caller may see them (an embassy officer: their jurisdiction only)."""
    run = latest_run(crisis, succeeded=True)
    if run is None:
        return None
    if user.role != "embassy":
        return run.counts
    return _counts(_rows_query(user, run.id)[1])


def _counts(rows_query) -> dict:
    """The counts (registry.crises.exposure.summarize) of the rows a query of ``_rows_query`` selects."""
    keys = (Exposure.zone, Exposure.ring_km, Exposure.certainty, Deployment.city)
    return exposure.summarize(db.session.execute(
        rows_query.with_only_columns(*keys, func.count()).group_by(*keys)).all())


def diff(crisis: Crisis, user, from_version: int, to_version: int) -> dict:
    """Rows added, removed and changed (zone or ring) between two versions' runs."""
    old = {r["national_id"]: r for r in exposure_rows(crisis, user, version=from_version, limit=None)["items"]}
    new = {r["national_id"]: r for r in exposure_rows(crisis, user, version=to_version, limit=None)["items"]}
    changed = [{**new[k], "old_zone": old[k]["zone"], "old_ring_km": old[k]["ring_km"]}
               for k in new.keys() & old.keys()
               if (old[k]["zone"], old[k]["ring_km"]) != (new[k]["zone"], new[k]["ring_km"])]
    key = lambda r: (r["distance_km"], str(r["national_id"]))  # noqa: E731
    return {"from": from_version, "to": to_version,
            "added": sorted((new[k] for k in new.keys() - old.keys()), key=key),
            "removed": sorted((old[k] for k in old.keys() - new.keys()), key=key),
            "changed": sorted(changed, key=key)}


def mark_run_failed(job_id: uuid.UUID) -> None:
    db.session.execute(update(ExposureRun).where(ExposureRun.job_id == job_id).values(status="failed"))
