"""Exposure lists: a run's rows as the caller may see them, paged (JSON), streamed (CSV, GeoJSON), counted and
diffed between versions.

One statement builder (``_rows``) serves every form: the caller's reach
(``visible_clause``) and the fields their role may see
(``registry.auth.visibility``) are applied there and nowhere else. Streamed
answers read a server-side cursor on a connection of their own (the
request's transaction, with its audit event, has committed by then), bound
to the caller's database scope: a million rows never sit in the API's
memory. The diff is one statement, each list capped in distance order with
its full count.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import redis
from sqlalchemy import and_, case, func, literal, select

from registry.auth import scope, visibility
from registry.auth.reach import Reach
from registry.crises import exposure, welfare
from registry.crises.models import Exposure, ExposureCount, ExposureRun, WelfareStatus
from registry.extensions import db, redis_client
from registry.nationals.models import Deployment, National
from registry.nationals.services import visible_clause
from registry.pagination import Keyset, finite, keyset_page

log = logging.getLogger(__name__)

CSV_COLUMNS = ("national_id", "family_name", "given_names", "zone", "ring_km", "distance_km", "certainty", "lat",
               "lon", "location_source", "location_precision_m", "location_age_days", "priority", "priority_label",
               "vulnerabilities", "phones", "host_country", "city", "welfare_status")
PRIORITY_LABELS = {1: "medical_or_disability", 2: "pregnant", 3: "minor_or_elderly", 4: "standard"}
DIFF_CAP = 10_000
# How long a list's counts are kept for its next pages (``_paging_counts``), shared by the callers of one
# reach (``shared_counts``), and how long a caller waits for another's count of the same list.
COUNTS_KEPT_S = 300
COUNTS_FRESH_S = 60
COUNT_WAIT_S = 30
COUNT_POLL_S = 0.1
# The filters the run's kept counts answer (``ExposureCount``'s buckets); vulnerability and welfare status are
# counted live.
_KEPT_FILTERS = frozenset({"zone", "ring_km", "certainty", "priority", "city"})
STREAM_BATCH_ROWS = 5000
_FREE_TEXT = frozenset({"family_name", "given_names", "city"})
_BY_DISTANCE = Keyset((Exposure.distance_km, Exposure.national_id), (finite, uuid.UUID))
_ROW_COLUMNS = (Exposure.national_id, National.family_name, National.given_names, Exposure.zone, Exposure.ring_km,
                Exposure.distance_km, Exposure.certainty, func.ST_Y(Exposure.location).label("lat"),
                func.ST_X(Exposure.location).label("lon"), Exposure.location_source, Exposure.location_precision_m,
                Exposure.location_age_days, Exposure.priority, National.vulnerabilities, National.phones,
                Deployment.host_country, Deployment.city,
                func.coalesce(WelfareStatus.status, "unknown").label("welfare_status"))


def _with_welfare(query, run_id):
    """``query`` joined to the latest welfare status, in the run's crisis, of each row's national."""
    crisis_id = select(ExposureRun.crisis_id).where(ExposureRun.id == run_id).scalar_subquery()
    return query.outerjoin(WelfareStatus, and_(WelfareStatus.national_id == Exposure.national_id,
                                               WelfareStatus.crisis_id == crisis_id))


def _rows(user, run_id: uuid.UUID, filters: dict, columns=_ROW_COLUMNS):
    """The run's rows ``user`` may see, filtered (zone, ring_km, certainty, vulnerability, priority, city, welfare
    status: ``unknown`` is the status of those with no news yet), each with the national's latest welfare status
    in the crisis."""
    query = (select(*columns).select_from(Exposure)
             .join(National, and_(National.id == Exposure.national_id, visible_clause(user)))
             .outerjoin(Deployment, and_(Deployment.national_id == Exposure.national_id, Deployment.is_current)))
    if columns is _ROW_COLUMNS or filters.get("welfare_status"):
        query = _with_welfare(query, run_id)
    query = query.where(Exposure.run_id == run_id)
    if filters.get("zone"):
        query = query.where(Exposure.zone == filters["zone"])
    if filters.get("ring_km") is not None:
        query = query.where(Exposure.ring_km == filters["ring_km"])
    if filters.get("certainty"):
        query = query.where(Exposure.certainty == filters["certainty"])
    if filters.get("vulnerability"):
        query = query.where(National.vulnerabilities.contains([filters["vulnerability"]]))
    if filters.get("priority") is not None:
        query = query.where(Exposure.priority == filters["priority"])
    if filters.get("city"):
        query = query.where(func.lower(Deployment.city) == filters["city"].lower())
    if filters.get("welfare_status"):
        query = query.where(func.coalesce(WelfareStatus.status, "unknown") == filters["welfare_status"])
    return query


def check_filters(user, filters: dict) -> None:
    """:raises Forbidden: a filter on a field the caller's role may not see."""
    visibility.check_filters(user.role, {"vulnerability": "vulnerabilities"} if filters.get("vulnerability") else {})


def row_of(values, role: str) -> dict:
    """An exposure row (SPEC §4.1) from a result row, with the fields ``role`` may see."""
    row = dict(values._mapping) if hasattr(values, "_mapping") else dict(values)
    lat, lon = row.pop("lat"), row.pop("lon")
    source, precision = row.pop("location_source"), row.pop("location_precision_m")
    row["location"] = {"lat": lat, "lon": lon, "source": source, "precision_m": precision} \
        if lat is not None else None
    row["priority_label"] = PRIORITY_LABELS.get(row.get("priority"))
    row["vulnerabilities"] = row.get("vulnerabilities") or []
    row["phones"] = row.get("phones") or []
    return visibility.strip(role, row)


def counts(user, run_id: uuid.UUID, filters: dict) -> dict:
    """The counts (``exposure.summarize``) of the rows the caller may see: the run's kept counts summed over the
    caller's reach (``_kept_counts``) when they answer the filters, else counted live."""
    if _kept(run_id, filters):
        return _kept_counts(user, run_id, filters)
    return _live_counts(user, run_id, filters)


def _kept(run_id: uuid.UUID, filters: dict) -> bool:
    """Whether the run keeps its counts whole (``ExposureCount``) and ``filters`` are among their buckets."""
    used = {name for name, value in filters.items() if value is not None and value != ""}
    return used <= _KEPT_FILTERS and db.session.get(ExposureRun, run_id).counts_kept


def _kept_counts(user, run_id: uuid.UUID, filters: dict) -> dict:
    """The run's counts (as of the run, as its rows are) of the jurisdictions in the caller's reach: a few rows
    summed, where counting a 1.7M-row run live took 6 s at 10M, a minute under load (migration 0031)."""
    keys = (ExposureCount.zone, ExposureCount.ring_km, ExposureCount.certainty, ExposureCount.city)
    query = (select(*keys, func.sum(ExposureCount.n)).where(
        ExposureCount.run_id == run_id, Reach.of(user).clause(ExposureCount.jurisdiction_country)).group_by(*keys))
    for name in ("zone", "ring_km", "certainty", "priority"):
        if filters.get(name) is not None and filters.get(name) != "":
            query = query.where(getattr(ExposureCount, name) == filters[name])
    if filters.get("city"):
        query = query.where(func.lower(ExposureCount.city) == filters["city"].lower())
    return exposure.summarize(db.session.execute(query).all())


def _live_counts(user, run_id: uuid.UUID, filters: dict) -> dict:
    keys = (Exposure.zone, Exposure.ring_km, Exposure.certainty, Deployment.city)
    return exposure.summarize(db.session.execute(
        _rows(user, run_id, filters, columns=(*keys, func.count())).group_by(*keys)).all())


def _filters_hash(filters: dict) -> str:
    shown = json.dumps(sorted((k, str(v)) for k, v in filters.items() if v is not None))
    return hashlib.sha256(shown.encode()).hexdigest()[:32]


def _counts_key(user, run_id: uuid.UUID, filters: dict) -> str:
    return f"sagip:exposure-counts:{run_id}:{user.id}:{_filters_hash(filters)}"


def _paging_counts(user, run_id: uuid.UUID, filters: dict, cursor: str | None) -> dict:
    """The counts a page carries, with ``counted_at``: for the first page (no cursor) the list's counts as
    ``shared_counts`` has them, kept in Redis for ``COUNTS_KEPT_S`` under the caller, so the next pages of the
    same list (same caller, run and filters) carry the first page's counts; counted again when they are gone or
    Redis is down. The keys hold counts only, no personal data."""
    key = _counts_key(user, run_id, filters)
    if cursor:
        try:
            kept = redis_client().get(key)
        except redis.RedisError:
            kept = None
        if kept is not None:
            return json.loads(kept)
    found = shared_counts(user, run_id, filters)
    try:
        redis_client().set(key, json.dumps(found), ex=COUNTS_KEPT_S)
    except redis.RedisError as exc:
        log.warning("exposure counts not kept, Redis unavailable: %s", type(exc).__name__)
    return found


def shared_counts(user, run_id: uuid.UUID, filters: dict) -> dict:
    """``counts`` with ``counted_at`` (ISO 8601): the run's kept counts, counted when it finished, where they
    answer the filters (``_kept``). Otherwise (a vulnerability or welfare status filter, a run whose counts an
    erasure took away) counted live and shared by every caller of the same reach for up to ``COUNTS_FRESH_S``:
    at ten million nationals a first page counting its 1.7M-row list each time held the database under a few
    coordinators (``bench/load.py``). A list is counted again once they are that old, and at once after a
    welfare status of the crisis changed (the shared keys hold the crisis's welfare generation,
    ``welfare.generation``); what else they could miss in that minute (a moved deployment) is what
    ``counted_at`` tells. One caller counts a given list at a time; the others wait for its counts up to
    ``COUNT_WAIT_S``, then count themselves. Without Redis, every call counts."""
    run = db.session.get(ExposureRun, run_id)
    if _kept(run_id, filters):
        return {**_kept_counts(user, run_id, filters), "counted_at": run.finished_at.isoformat()}
    client = redis_client()
    counting = False
    try:
        key = (f"sagip:exposure-counts-shared:{run_id}:{_reach_key(user)}:{_filters_hash(filters)}:"
               f"{welfare.generation(run.crisis_id)}")
        kept = client.get(key)
        if kept is None:
            counting = bool(client.set(f"{key}:counting", 1, nx=True, ex=COUNT_WAIT_S))
            kept = None if counting else _wait_for(client, key)
    except redis.RedisError as exc:
        log.warning("exposure counts not shared, Redis unavailable: %s", type(exc).__name__)
        return _counted(user, run_id, filters)
    if kept is not None:
        return json.loads(kept)
    try:
        found = _counted(user, run_id, filters)
        client.set(key, json.dumps(found), ex=COUNTS_FRESH_S)
    except redis.RedisError as exc:
        log.warning("exposure counts not shared, Redis unavailable: %s", type(exc).__name__)
    finally:
        if counting:  # the callers waiting for these counts find them, or count themselves at once
            try:
                client.delete(f"{key}:counting")
            except redis.RedisError:
                pass
    return found


def _reach_key(user) -> str:
    reach = Reach.of(user)
    return "*" if reach.is_everywhere else ",".join(reach.countries) or "-"


def _wait_for(client, key: str) -> bytes | None:
    """The counts another caller is counting under ``key``, once there; None after ``COUNT_WAIT_S``."""
    deadline = time.monotonic() + COUNT_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(COUNT_POLL_S)
        kept = client.get(key)
        if kept is not None:
            return kept
        if not client.exists(f"{key}:counting"):  # its counter gave up (an error): count here
            return None
    return None


def _counted(user, run_id: uuid.UUID, filters: dict) -> dict:
    return {**_live_counts(user, run_id, filters), "counted_at": datetime.now(timezone.utc).isoformat()}


def page(user, run_id: uuid.UUID, filters: dict, *, limit: int, cursor: str | None) -> dict:
    """One page of rows by distance, with the counts of every row that matches and when they were counted (as
    of the list's first page, ``_paging_counts``)."""
    found = dict(_paging_counts(user, run_id, filters, cursor))
    counted_at = found.pop("counted_at", None)
    counted_at = datetime.fromisoformat(counted_at) if counted_at else None
    result = keyset_page(_rows(user, run_id, filters), _BY_DISTANCE, limit=limit, cursor=cursor,
                         key=lambda row: (row["distance_km"], row["national_id"]), total=found["total"],
                         rows=lambda statement: [row_of(r, user.role) for r in db.session.execute(statement)])
    result["counts"], result["counted_at"] = found, counted_at
    return result


def grouped(user, run_id: uuid.UUID, filters: dict, *, cell_deg: float, cap: int = 5000) -> dict:
    """The located rows as groups on a grid of ``cell_deg`` degrees, per zone (a map's points: counts and mean
    positions, never a whole large run), the largest first, at most ``cap``; with how many have no location."""
    cell = func.ST_SnapToGrid(Exposure.location, cell_deg)
    keys = (Exposure.zone, func.ST_X(cell), func.ST_Y(cell))
    statement = (_rows(user, run_id, filters, columns=(
        Exposure.zone, func.count().label("n"), func.avg(func.ST_Y(Exposure.location)).label("lat"),
        func.avg(func.ST_X(Exposure.location)).label("lon")))
        .where(Exposure.location.is_not(None)).group_by(*keys).order_by(func.count().desc()).limit(cap + 1))
    groups = [[round(r.lat, 5), round(r.lon, 5), r.n, r.zone] for r in db.session.execute(statement)]
    unlocated = db.session.scalar(_rows(user, run_id, filters, columns=(func.count(),))
                                  .where(Exposure.location.is_(None)))
    return {"groups": groups[:cap], "truncated": len(groups) > cap, "unlocated": unlocated or 0,
            "cell_deg": cell_deg}


def _stream(user, run_id: uuid.UUID, filters: dict) -> Iterator[list]:
    """The rows as result batches, from a server-side cursor on a connection of its own, bound to the
    caller's database scope."""
    statement = _rows(user, run_id, filters).order_by(*_BY_DISTANCE.order_by())
    with db.engine.connect() as connection:
        connection.execute(*scope.statement_for(Reach.of(user)))
        result = connection.execution_options(yield_per=STREAM_BATCH_ROWS).execute(statement)
        for batch in result.partitions():
            yield batch
        connection.rollback()


# The CSV columns as SQL over the rows' statement (``r``): PostgreSQL writes the CSV itself (COPY), the
# fastest path there is. Free text that could start a spreadsheet formula becomes text ('=...).
_CSV_SQL = {
    "national_id": "r.national_id::text",
    "priority_label": "CASE r.priority " + " ".join(f"WHEN {k} THEN '{v}'" for k, v in PRIORITY_LABELS.items())
                      + " END",
    "vulnerabilities": "array_to_string(r.vulnerabilities, ';')", "phones": "array_to_string(r.phones, ';')",
    **{name: f"(CASE WHEN left(r.{name}, 1) IN ('=', '+', '-', '@') THEN '''' || r.{name} ELSE r.{name} END)"
       for name in _FREE_TEXT},
}


def stream_csv(user, run_id: uuid.UUID, filters: dict) -> Iterator[bytes]:
    """CSV (UTF-8, a header row) of the rows by distance, written by PostgreSQL (COPY ... TO STDOUT) from
    the same statement as every other form, on a connection of its own bound to the caller's scope; the
    values go as parameters, bound by psycopg."""
    columns = visibility.visible(user.role, CSV_COLUMNS)
    rows = _rows(user, run_id, filters).compile(dialect=db.engine.dialect,
                                                compile_kwargs={"render_postcompile": True})
    statement = (f"COPY (SELECT {', '.join(_CSV_SQL.get(name, f'r.{name}') for name in columns)} "
                 f"FROM ({rows}) AS r ORDER BY r.distance_km, r.national_id) TO STDOUT (FORMAT csv)")
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(columns)
    yield header.getvalue().encode()
    with db.engine.connect() as connection:
        connection.execute(*scope.statement_for(Reach.of(user)))
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(statement, rows.params) as copy:
            for block in copy:
                yield bytes(block)
        connection.rollback()


def stream_geojson(user, run_id: uuid.UUID, filters: dict) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection, a feature per row ([lon, lat]; null geometry when unknown), streamed."""
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for batch in _stream(user, run_id, filters):
        chunk = []
        for values in batch:
            row = row_of(values, user.role)
            location = row.pop("location")
            properties = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in row.items()}
            if location:
                properties.update(location_source=location["source"], location_precision_m=location["precision_m"])
            feature = {"type": "Feature", "properties": properties,
                       "geometry": {"type": "Point", "coordinates": [location["lon"], location["lat"]]}
                       if location else None}
            chunk.append(("" if first else ",") + json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
            first = False
        yield "".join(chunk).encode()
    yield b"]}"


def diff(user, old_run: uuid.UUID, new_run: uuid.UUID, *, cap: int = DIFF_CAP) -> dict:
    """Rows ``added``, ``removed`` and ``changed`` (zone or ring) from one run to another, in one statement:
    each list the caller may see, by distance, capped at ``cap`` rows, with its full count."""
    new = select(Exposure.national_id, Exposure.zone, Exposure.ring_km, Exposure.distance_km) \
        .where(Exposure.run_id == new_run).subquery("new")
    old = select(Exposure.national_id, Exposure.zone, Exposure.ring_km, Exposure.distance_km) \
        .where(Exposure.run_id == old_run).subquery("old")
    kind = case((old.c.national_id.is_(None), literal("added")), (new.c.national_id.is_(None), literal("removed")),
                else_=literal("changed"))
    national_id = func.coalesce(new.c.national_id, old.c.national_id)
    distance = func.coalesce(new.c.distance_km, old.c.distance_km)
    pairs = (select(national_id.label("national_id"), kind.label("kind"), old.c.zone.label("old_zone"),
                    old.c.ring_km.label("old_ring_km"),
                    func.row_number().over(partition_by=kind, order_by=(distance, national_id)).label("place"),
                    func.count().over(partition_by=kind).label("total"))
             .select_from(new.join(old, old.c.national_id == new.c.national_id, full=True))
             .join(National, and_(National.id == national_id, visible_clause(user)))
             .where((old.c.national_id.is_(None)) | (new.c.national_id.is_(None))
                    | old.c.zone.is_distinct_from(new.c.zone) | old.c.ring_km.is_distinct_from(new.c.ring_km))
             .subquery("pairs"))
    row_run = case((pairs.c.kind == "removed", literal(old_run)), else_=literal(new_run))
    statement = (select(pairs.c.kind, pairs.c.total, pairs.c.old_zone, pairs.c.old_ring_km, *_ROW_COLUMNS)
                 .select_from(pairs)
                 .join(Exposure, and_(Exposure.national_id == pairs.c.national_id, Exposure.run_id == row_run))
                 .join(National, National.id == pairs.c.national_id)
                 .outerjoin(Deployment, and_(Deployment.national_id == pairs.c.national_id, Deployment.is_current))
                 .outerjoin(WelfareStatus, and_(WelfareStatus.national_id == pairs.c.national_id,
                                                WelfareStatus.crisis_id == select(ExposureRun.crisis_id)
                                                .where(ExposureRun.id == new_run).scalar_subquery()))
                 .where(pairs.c.place <= cap)
                 .order_by(pairs.c.kind, pairs.c.place))
    result = {"added": [], "removed": [], "changed": [], "counts": {"added": 0, "removed": 0, "changed": 0}}
    for values in db.session.execute(statement):
        mapping = dict(values._mapping)
        which, total = mapping.pop("kind"), mapping.pop("total")
        extra = {"old_zone": mapping.pop("old_zone"), "old_ring_km": mapping.pop("old_ring_km")}
        row = row_of(mapping, user.role)
        result[which].append({**row, **extra} if which == "changed" else row)
        result["counts"][which] = total
    result["truncated"] = any(result["counts"][k] > len(result[k]) for k in ("added", "removed", "changed"))
    return result
