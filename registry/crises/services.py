"""Declaring, changing and reading crises; their exposure runs and lists.

Declaring (or changing the area or rings of) a crisis writes a new version
and a queued exposure run with its job in the request's transaction; the
job is dispatched after commit through the outbox, so a broker outage or a
killed worker delays the run but never loses it. Exposure rows are read
through ``visible_nationals``: an embassy officer sees only their
jurisdiction's rows, and counts computed from them.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

import shapely
from geoalchemy2 import Geography
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import cast, delete, event, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from registry.auth.reach import Reach
from registry.crises import areas, exposure, listing
from registry.crises.models import CallClaim, Crisis, CrisisVersion, Exposure, ExposureCount, ExposureRun
from registry.errors import NotFound, Unprocessable
from registry.extensions import db, get_or_404
from registry.jobs import services as jobs
from registry.nationals.models import Country, National
from registry.nationals.services import on_erasure
from registry.pagination import Keyset, keyset_page, timestamp

log = logging.getLogger(__name__)

EXPOSURE_TASK = "crises.run_exposure"
# Set by a run that succeeded, for its session's commit (``_analyze_after_commit``).
_ANALYZE_KEY = "sagip_analyze_exposures"


def _countries_geometry(codes: list[str]):
    found = db.session.execute(select(Country.alpha2, func.ST_AsBinary(Country.geom))
                               .where(Country.alpha2.in_(codes))).all()
    unknown = sorted(set(codes) - {code for code, _ in found})
    if unknown:
        raise areas.InvalidArea(f"Unknown country codes: {', '.join(unknown)}.", "area.codes")
    return shapely.union_all([shapely.from_wkb(bytes(wkb)) for _, wkb in found])


def _new_version(crisis: Crisis, area, source: dict, zones_km: list[float]) -> ExposureRun:
    db.session.add(CrisisVersion(crisis_id=crisis.id, version=crisis.version, geom=from_shape(area, srid=4326),
                                 zones_km=zones_km, source=source, bbox=list(areas.bbox(area)),
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
    return get_or_404(Crisis, crisis_id, "No such crisis.")


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
    if "self_registration" in data:
        crisis.self_registration = data["self_registration"]
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


def list_versions(crisis: Crisis) -> list[CrisisVersion]:
    """Every version of the crisis's area and rings, newest first."""
    return list(db.session.scalars(select(CrisisVersion).where(CrisisVersion.crisis_id == crisis.id)
                                   .order_by(CrisisVersion.version.desc())))


def display_shapes(crisis: Crisis, version: int | None = None, *, detail: float = 1 / 1500) -> dict:
    """The area and its rings as GeoJSON for a map: simplified to about ``detail`` of the area's extent (a
    detailed area is hundreds of thousands of vertices), each ring the area grown by its distance."""
    found = version_of(crisis, version)
    west, south, east, north = found.bbox or (0, 0, 0, 0)
    extent = max(abs(east - west), abs(north - south), 0.001)
    shape = func.ST_SimplifyPreserveTopology(CrisisVersion.geom, extent * detail)
    area = db.session.scalar(select(func.ST_AsGeoJSON(shape, 5)).where(
        CrisisVersion.crisis_id == crisis.id, CrisisVersion.version == found.version))
    rings = []
    for km in found.zones_km:
        grown = func.ST_Buffer(cast(shape, Geography), km * 1000.0, "quad_segs=16")
        geometry = db.session.scalar(select(func.ST_AsGeoJSON(grown, 4)).where(
            CrisisVersion.crisis_id == crisis.id, CrisisVersion.version == found.version))
        rings.append({"km": km, "geometry": json.loads(geometry)})
    return {"version": found.version, "area": json.loads(area), "rings": rings, "bbox": list(found.bbox or ())}


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

    Each crisis is locked while it is looked at (``SKIP LOCKED``: one being changed or refreshed elsewhere is
    left to that transaction), so two refreshes at once, or a refresh beside a change of the area, never start
    two runs for the same change.
    """
    started = []
    for crisis in db.session.scalars(select(Crisis).where(Crisis.status == "active")
                                     .with_for_update(skip_locked=True)):
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


# Runs whose rows no list serves any more: a newer run of the same crisis version succeeded (lists, call
# lists and version diffs read a version's newest succeeded run) at least ``grace`` seconds ago (a request
# that picked the old run just before has finished with it), and nothing was built on it (roster entries
# read their run's rows; a campaign's audience names its run).
_SUPERSEDED = text("""
SELECT r.id FROM exposure_runs r
WHERE r.status = 'succeeded'
  AND EXISTS (SELECT 1 FROM exposure_runs n WHERE n.crisis_id = r.crisis_id AND n.version = r.version
              AND n.status = 'succeeded' AND n.created_at > r.created_at
              AND n.finished_at < now() - make_interval(secs => :grace))
  AND NOT EXISTS (SELECT 1 FROM rosters ro WHERE ro.run_id = r.id)
  AND NOT EXISTS (SELECT 1 FROM campaigns ca WHERE ca.run_id = r.id)
  AND EXISTS (SELECT 1 FROM exposures e WHERE e.run_id = r.id)
""")
_PRUNE = text("DELETE FROM exposures WHERE run_id = :run AND national_id IN "
              "(SELECT national_id FROM exposures WHERE run_id = :run LIMIT :batch)")
PRUNE_GRACE_S = 900
PRUNE_BATCH = 50_000


def prune_superseded(grace_s: float = PRUNE_GRACE_S, batch: int = PRUNE_BATCH) -> int:
    """Delete the exposure rows of superseded runs (``_SUPERSEDED``), a batch a transaction; how many.

    An active crisis is run again whenever a national changes (``refresh_active``): at ten million nationals
    something always has, and each run of a large area adds its whole list (a million rows is about 300 MB).
    The runs themselves stay, with their counts; only their rows go."""
    deleted = 0
    for run_id in db.session.scalars(_SUPERSEDED, {"grace": grace_s}).all():
        while True:
            count = db.session.execute(_PRUNE, {"run": run_id, "batch": batch}).rowcount
            db.session.commit()
            deleted += count
            if count < batch:
                break
        db.session.execute(delete(ExposureCount).where(ExposureCount.run_id == run_id))
        db.session.commit()
    return deleted


_NEWEST_FIRST = Keyset((Crisis.created_at, Crisis.id), (timestamp, uuid.UUID), descending=True)


def list_crises(*, status: str | None = None, limit: int = 100, cursor: str | None = None) -> dict:
    query = select(Crisis)
    if status:
        query = query.where(Crisis.status == status)
    return keyset_page(query, _NEWEST_FIRST, limit=limit, cursor=cursor, key=lambda c: (c.created_at.isoformat(), c.id))


# ---------------------------------------------------------------------- running

def run_exposure(job) -> dict:
    """The task's work: compute the run's rows, mark it succeeded with its counts (caller commits)."""
    run = db.session.get(ExposureRun, uuid.UUID(job.params["run_id"]))
    if run is None:
        raise NotFound("The exposure run is gone (its crisis was deleted).")
    version = db.session.get(CrisisVersion, (run.crisis_id, run.version))
    run.status = "running"
    source = version.source or {}
    circle = source if source.get("type") == "circle" and "center" in source and "radius_km" in source else None
    counts = exposure.compute(run.id, run.crisis_id, run.version, list(version.zones_km), circle)
    run.status, run.counts, run.finished_at = "succeeded", counts, datetime.now(timezone.utc)
    run.counts_kept = True
    db.session.info[_ANALYZE_KEY] = True  # once committed (``_analyze_after_commit``)
    jobs.finish(job.id, {"run_id": str(run.id), "counts": counts})
    return counts


# ---------------------------------------------------------------------- reading

def run_for(crisis: Crisis, version: int | None = None) -> ExposureRun:
    """The newest succeeded run of a version (the current one by default). :raises Unprocessable: none yet."""
    run = latest_run(crisis, version, succeeded=True)
    if run is None:
        newest = latest_run(crisis, version)
        state = newest.status if newest else "missing"
        raise Unprocessable(f"The exposure run of version {version or crisis.version} is {state}; "
                            "retry when it has succeeded.", errors={"run": [state]})
    return run


def visible_counts(crisis: Crisis, user) -> dict | None:
    """The latest run's counts as the caller may see them (an embassy officer: their jurisdiction only)."""
    run = latest_run(crisis, succeeded=True)
    if run is None:
        return None
    if Reach.of(user).is_everywhere:
        return run.counts
    found = dict(listing.shared_counts(user, run.id, {}))
    found.pop("counted_at")
    return found


def summary(crisis: Crisis, user, version: CrisisVersion | None = None) -> dict:
    """A crisis without its area: bounding box, vertex count, rings, the latest run and its counts."""
    version = version or version_of(crisis)
    run = latest_run(crisis)
    return {
        "id": crisis.id, "name": crisis.name, "kind": crisis.kind, "severity": crisis.severity,
        "status": crisis.status, "version": crisis.version, "bbox": list(version.bbox or ()),
        "vertices": version.vertices, "area_source": version.source, "zones_km": list(version.zones_km),
        "latest_run": {"id": run.id, "version": run.version, "status": run.status, "job_id": run.job_id,
                       "counts": visible_counts(crisis, user)} if run else None,
        "created_at": crisis.created_at, "updated_at": crisis.updated_at, "closed_at": crisis.closed_at,
        "self_registration": crisis.self_registration,
    }


def crisis_out(crisis: Crisis, user) -> dict:
    """The crisis with its full area (GeoJSON)."""
    version = version_of(crisis)
    return {**summary(crisis, user, version), "area": areas.as_geojson(to_shape(version.geom))}


@on_erasure
def _forget_exposures(national_id: uuid.UUID) -> None:
    """An erased national leaves every exposure list (the rows hold a location) and the hotline's claims; the
    runs that listed them lose their kept counts (which counted them), and their lists count live until the
    next run."""
    listed = select(Exposure.run_id).where(Exposure.national_id == national_id)
    db.session.execute(update(ExposureRun).where(ExposureRun.id.in_(listed)).values(counts_kept=False))
    db.session.execute(delete(ExposureCount).where(ExposureCount.run_id.in_(listed)))
    db.session.execute(delete(Exposure).where(Exposure.national_id == national_id))
    db.session.execute(delete(CallClaim).where(CallClaim.national_id == national_id))


@event.listens_for(Session, "after_commit")
def _analyze_after_commit(session: Session) -> None:
    if session.info.pop(_ANALYZE_KEY, False):
        analyze_exposures()


@event.listens_for(Session, "after_rollback")
def _no_analysis_after_rollback(session: Session) -> None:
    session.info.pop(_ANALYZE_KEY, None)


def analyze_exposures() -> None:
    """Refresh the planner's statistics of ``exposures`` and ``exposure_counts`` (migration 0032), in a
    transaction of its own, once a run committed (only then: a delivery that found its job run elsewhere does
    nothing): a new run's id is unknown to them until then, and its list's pages were planned for a few rows
    (the whole run sorted per page, up to 95 s at 10M). A failure is logged, never raised: the run has
    succeeded."""
    try:
        with db.engine.begin() as conn:
            conn.execute(text("SELECT analyze_exposures()"))
    except SQLAlchemyError as exc:
        log.warning("exposure statistics not refreshed: %s", type(exc).__name__)


def mark_run_failed(job_id: uuid.UUID) -> None:
    db.session.execute(update(ExposureRun).where(ExposureRun.job_id == job_id).values(status="failed"))
