"""``/api/v1/assembly-points``: where evacuees gather (SPEC §4.3)."""
from __future__ import annotations

import uuid

from flask import Blueprint, request

from registry.api import documented, dump, load_json, load_query
from registry.audit import services as audit
from registry.auth.access import requires
from registry.errors import Unprocessable
from registry.rosters import schemas, services

bp = Blueprint("assembly_points", __name__, url_prefix="/assembly-points")
_IN = schemas.AssemblyPointIn()
_UPDATE_IN = schemas.AssemblyPointUpdate(partial=True)
_OUT = schemas.AssemblyPointOut()
_QUERY = schemas.AssemblyPointQuery()
_PAGE_OUT = schemas.AssemblyPointPage()


@bp.post("")
@requires("crises:write")
@documented(summary="Create an assembly point", body=schemas.AssemblyPointIn, response=schemas.AssemblyPointOut,
            status=201, errors=(400, 415, 422))
def create_point():
    """The point must be in ``country`` (the same checks as a national's point)."""
    point = services.create_point(load_json(_IN))
    audit.note(object_type="assembly_point", object_ids=[point.id])
    return dump(_OUT, services.point_out(point), status=201,
                headers={"Location": f"/api/v1/assembly-points/{point.id}"})


@bp.post("/import")
@requires("crises:write")
@documented(summary="Create assembly points from a CSV or XLSX", response=schemas.PointImportResult,
            errors=(413, 422))
def import_points():
    """Multipart field ``file``; columns ``name, kind, lat, lon, capacity, country`` and optional
    ``active``. Good rows are stored even when others fail; bad rows are listed with their field."""
    upload = request.files.get("file")
    if upload is None:
        raise Unprocessable("Upload the file as multipart/form-data, field 'file'.", errors={"file": ["Missing."]})
    result = services.import_points(upload.read(), _IN)
    audit.note(object_type="assembly_point", object_ids=result["ids"], result_count=result["created"])
    return dump(schemas.PointImportResult(), result)


@bp.get("")
@requires("crises:read")
@documented(summary="List assembly points", query=schemas.AssemblyPointQuery, response=schemas.AssemblyPointPage)
def list_points():
    args = load_query(_QUERY)
    purpose = args.pop("purpose", None)
    page = services.list_points(**args)
    audit.note(object_type="assembly_point", result_count=page["total"], purpose=purpose)
    page["items"] = [services.point_out(p) for p in page["items"]]
    return dump(_PAGE_OUT, page)


@bp.get("/<uuid:point_id>")
@requires("crises:read")
@documented(summary="Read an assembly point", response=schemas.AssemblyPointOut, errors=(404,))
def get_point(point_id: uuid.UUID):
    audit.note(object_type="assembly_point", object_ids=[point_id])
    return dump(_OUT, services.point_out(services.get_point(point_id)))


@bp.patch("/<uuid:point_id>")
@requires("crises:write")
@documented(summary="Change an assembly point", body=schemas.AssemblyPointUpdate,
            response=schemas.AssemblyPointOut, errors=(400, 404, 422))
def update_point(point_id: uuid.UUID):
    """Any subset of the fields; set ``active`` false to stop using a point."""
    audit.note(object_type="assembly_point", object_ids=[point_id])
    data = load_json(_UPDATE_IN)
    audit.note(details={"fields": sorted(data)})
    return dump(_OUT, services.point_out(services.update_point(point_id, data)))
