"""Assembly points: created and changed by coordinators and admins; their point must be in their country.

A file of points is read by a worker (``request_import`` queues it, ``run_import`` reads it with the bounded
reader of registry/imports/reader.py), never in the API process.
"""
from __future__ import annotations

import uuid

from geoalchemy2.shape import to_shape
from sqlalchemy import func, select

from flask import current_app
from marshmallow import ValidationError

from registry import geo
from registry.assembly_points.models import AssemblyPoint
from registry.assembly_points.schemas import AssemblyPointIn
from registry.audit import services as audit
from registry.auth.models import User
from registry.errors import InvalidLocation, Unprocessable
from registry.extensions import db, get_or_404
from registry.imports.reader import ReadLimits, open_rows
from registry.jobs import services as jobs
from registry.jobs import uploads
from registry.jobs.models import Job
from registry.pagination import Keyset, keyset_page

IMPORT_TASK = "assembly_points.import"


def _check_point(data: dict) -> None:
    location = data["location"]
    problem = geo.check_in_country(location["lon"], location["lat"], data["country"])
    if problem:
        raise InvalidLocation(problem.message, errors={"location": {problem.field: [problem.message]}})


def create_point(data: dict) -> AssemblyPoint:
    """:raises InvalidLocation: the point is not in ``country``."""
    _check_point(data)
    location = data.pop("location")
    point = AssemblyPoint(id=uuid.uuid4(), location=f"SRID=4326;{geo.point_wkt(location['lon'], location['lat'])}",
                          **data)
    db.session.add(point)
    db.session.flush()
    db.session.refresh(point)
    return point


def get_point(point_id: uuid.UUID) -> AssemblyPoint:
    return get_or_404(AssemblyPoint, point_id, "No such assembly point.")


def update_point(point_id: uuid.UUID, data: dict) -> AssemblyPoint:
    """A partial update; a new location or country is checked again. :raises NotFound, InvalidLocation:"""
    point = get_point(point_id)
    if "location" in data or "country" in data:
        current = to_shape(point.location)
        _check_point({"location": data.get("location", {"lat": current.y, "lon": current.x}),
                      "country": data.get("country", point.country)})
    location = data.pop("location", None)
    if location:
        point.location = f"SRID=4326;{geo.point_wkt(location['lon'], location['lat'])}"
    for key, value in data.items():
        setattr(point, key, value)
    point.updated_at = func.now()
    db.session.flush()
    db.session.refresh(point)
    return point


def list_points(*, country=None, kind=None, active=None, limit: int = 100, cursor: str | None = None) -> dict:
    query = select(AssemblyPoint)
    if country:
        query = query.where(AssemblyPoint.country == country)
    if kind:
        query = query.where(AssemblyPoint.kind == kind)
    if active is not None:
        query = query.where(AssemblyPoint.active.is_(active))
    return keyset_page(query, _BY_NAME, limit=limit, cursor=cursor, key=lambda p: (p.name, p.id))


_BY_NAME = Keyset((AssemblyPoint.name, AssemblyPoint.id), (str, uuid.UUID))


def countries_in_use() -> list[str]:
    """The countries that have an assembly point (a list's country filter offers these)."""
    return list(db.session.scalars(select(AssemblyPoint.country).distinct().order_by(AssemblyPoint.country)))


def point_out(point: AssemblyPoint) -> dict:
    shape = to_shape(point.location)
    return {"id": point.id, "name": point.name, "kind": point.kind, "capacity": point.capacity,
            "country": point.country, "active": point.active, "created_at": point.created_at,
            "updated_at": point.updated_at, "location": {"lat": shape.y, "lon": shape.x}}


POINT_COLUMNS = ("name", "kind", "lat", "lon", "capacity", "country", "active")
MAX_IMPORTED_POINTS = 10_000


def request_import(filename: str, data: bytes, user) -> Job:
    """Keep the file and queue its job (sent after the caller commits)."""
    job = jobs.enqueue("assembly_points_import", IMPORT_TASK, params={"filename": filename[:255]},
                       created_by=user.id)
    uploads.store(job.id, filename, data)
    return job


def run_import(job: Job) -> dict:
    """The worker's part: the points of the job's file; the job's result in the same commit."""
    result = import_points(uploads.read(job.id))
    uploads.discard(job.id)
    jobs.finish(job.id, result)
    audit.record("assembly_points.run_import", actor=db.session.get(User, job.created_by) if job.created_by else None,
                 object_type="assembly_point", object_ids=result["ids"], result_count=result["created"],
                 details={"rejected": result["rejected"]})
    return result


def import_points(data: bytes) -> dict:
    """Create assembly points from a CSV or XLSX (columns ``POINT_COLUMNS``, ``active`` optional).

    Each row is validated like ``POST /assembly-points``; good rows are stored even when others
    fail, and every bad row is reported with its field. :raises Unprocessable: unreadable file,
    unknown or missing columns, too many rows.
    """
    schema = AssemblyPointIn()
    header, rows, _ = open_rows(data, ReadLimits.from_config(current_app.config))
    unknown = sorted(set(header) - set(POINT_COLUMNS) - {""})
    missing = sorted(set(POINT_COLUMNS) - {"active"} - set(header))
    if unknown or missing:
        named = [c[:40] for c in unknown]  # a file of places: its header names no person
        errors = {**({c: ["Unknown column."] for c in named}), **({c: ["Missing column."] for c in missing})}
        said = ([f"unknown columns: {', '.join(named)}"] if named else []) + \
               ([f"missing columns: {', '.join(missing)}"] if missing else [])
        raise Unprocessable(f"The columns do not match the assembly point template ({'; '.join(said)}); it has "
                            f"{', '.join(POINT_COLUMNS)} (active optional).", errors=errors)
    created, errors = [], []
    for index, row in enumerate(rows):
        row_no = row.number
        if index >= MAX_IMPORTED_POINTS:
            raise Unprocessable(f"At most {MAX_IMPORTED_POINTS} assembly points per file.",
                                errors={"file": ["Too many rows."]})
        if row.problems:  # cells the reader could not use: a formula, an over-long or undecodable value
            errors.extend({"row": row_no, "field": field, "message": message} for field, message in row.problems)
            continue
        values = {name: cell.strip() for name, cell in zip(header, row.cells) if name}
        if not any(values.values()):
            continue
        body = {"name": values.get("name"), "kind": values.get("kind"), "country": values.get("country"),
                "location": {"lat": _number(values.get("lat")), "lon": _number(values.get("lon"))},
                "capacity": _number(values.get("capacity"), integer=True),
                "active": values.get("active", "").lower() not in ("false", "no", "0")}
        try:
            point_data = schema.load(body)
            problem = geo.check_in_country(point_data["location"]["lon"], point_data["location"]["lat"],
                                           point_data["country"])
            if problem:
                raise ValidationError({"location": [problem.message]})
        except ValidationError as exc:
            errors.extend({"row": row_no, "field": field, "message": "; ".join(_flatten(messages))}
                          for field, messages in exc.messages.items())
            continue
        created.append(create_point(point_data).id)
    return {"created": len(created), "rejected": len({e["row"] for e in errors}), "errors": errors,
            "ids": [str(i) for i in created]}


def _number(text: str | None, *, integer: bool = False):
    """The cell as a number when it is one, else the text (so the schema reports it)."""
    try:
        return int(text) if integer else float(text)
    except (TypeError, ValueError):
        return text


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):
        return [f"{key}: {m}" for key, value in messages.items() for m in _flatten(value)]
    return [str(m) for m in messages]
