"""``/api/v1/assembly-points``: create, read, list, change assembly points; import them from a file."""
from __future__ import annotations

import uuid

from flask import g

from registry.assembly_points import schemas, services
from registry.audit import services as audit
from registry.auth.access import requires
from registry.imports.schemas import UploadIn
from registry.jobs.schemas import JobAccepted
from registry.jobs.views import accepted
from registry.web.openapi import ApiBlueprint, errors

bp = ApiBlueprint("assembly_points", __name__, url_prefix="/assembly-points",
                  description="Assembly points (SPEC §4.3)")


@bp.post("")
@requires("crises:write")
@bp.arguments(schemas.AssemblyPointIn, example={
    "name": "Embassy of the Philippines, Abu Dhabi", "kind": "embassy", "location": {"lat": 24.4539, "lon": 54.3773},
    "capacity": 400, "country": "AE", "active": True})
@bp.response(201, schemas.AssemblyPointOut, headers={"Location": {"schema": {"type": "string"}}})
def create_point(data):
    """Create an assembly point.

    The point must be in ``country`` (the same checks as a national's point).
    """
    point = services.create_point(data)
    audit.note(object_type="assembly_point", object_ids=[point.id])
    return services.point_out(point), 201, {"Location": f"/api/v1/assembly-points/{point.id}"}


@bp.post("/import")
@requires("crises:write")
@bp.arguments(UploadIn, location="files")
@bp.response(202, JobAccepted, headers={"Location": {"schema": {"type": "string"}}})
def import_points(files):
    """Create assembly points from a CSV or XLSX.

    Multipart field ``file``; columns ``name, kind, lat, lon, capacity, country`` and optional ``active``.
    Answers 202 with ``job_id``: a worker reads the file; the job's result lists ``created``, ``rejected``,
    per-row ``errors`` and the new points' ``ids``. Good rows are stored even when others fail.
    """
    upload = files["file"]
    job = services.request_import(upload.filename or "points", upload.read(), g.user)
    audit.note(object_type="job", object_ids=[job.id])
    return accepted(job)


@bp.get("")
@requires("crises:read")
@bp.arguments(schemas.AssemblyPointQuery, location="query")
@bp.response(200, schemas.AssemblyPointPage)
def list_points(args):
    """List assembly points, by name."""
    args.pop("purpose", None)
    page = services.list_points(**args)
    audit.note(object_type="assembly_point", result_count=page["total"])
    page["items"] = [services.point_out(p) for p in page["items"]]
    return page


@bp.get("/<uuid:point_id>")
@requires("crises:read")
@bp.response(200, schemas.AssemblyPointOut)
@errors(404)
def get_point(point_id: uuid.UUID):
    """Read an assembly point."""
    audit.note(object_type="assembly_point", object_ids=[point_id])
    return services.point_out(services.get_point(point_id))


@bp.patch("/<uuid:point_id>")
@requires("crises:write")
@bp.arguments(schemas.AssemblyPointUpdate(partial=True))
@bp.response(200, schemas.AssemblyPointOut)
@errors(404)
def update_point(data, point_id: uuid.UUID):
    """Change an assembly point.

    Any subset of the fields; set ``active`` false to stop using a point.
    """
    audit.note(object_type="assembly_point", object_ids=[point_id], details={"fields": sorted(data)})
    return services.point_out(services.update_point(point_id, data))
