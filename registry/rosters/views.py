"""Assembly points, rosters, their people's welfare and their exports (SPEC §4.3)."""
from __future__ import annotations

import io
import uuid

from flask import Blueprint, Response, current_app, g, request

from registry import idempotency
from registry.api import documented, dump, load_json, load_query, require_purpose
from registry.audit import services as audit
from registry.auth.access import limited, requires
from registry.errors import Unprocessable
from registry.jobs import views as jobs_views
from registry.rosters import building, exports, schemas, services, welfare

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


# ---------------------------------------------------------------------- rosters

crisis_rosters_bp = Blueprint("crisis_rosters", __name__, url_prefix="/crises")
rosters_bp = Blueprint("rosters", __name__, url_prefix="/rosters")
_ROSTER_IN = schemas.RosterCreate()
_ROSTER_OUT = schemas.RosterOut()
_ROSTER_ACCEPTED = schemas.RosterAccepted()
_ROSTER_PAGE = schemas.RosterPage()
_ENTRY_QUERY = schemas.EntryQuery()
_ENTRY_OUT = schemas.EntryOut()
_ENTRY_PAGE = schemas.EntryPage()
_WELFARE_IN = schemas.WelfareUpdate()
_DIFF_QUERY = schemas.RosterDiffQuery()
_DIFF_OUT = schemas.RosterDiff()
_EXPORT_QUERY = schemas.ExportQuery()
_ROSTER_LIST_QUERY = schemas.RosterListQuery()


@crisis_rosters_bp.post("/<uuid:crisis_id>/rosters")
@requires("rosters:write")
@documented(summary="Build a roster of the crisis's latest exposure run", body=schemas.RosterCreate,
            response=schemas.RosterAccepted, status=202, errors=(400, 404, 415, 422))
def create_roster(crisis_id: uuid.UUID):
    """Defaults: all zones and certainties of the latest run, the active assembly points in the countries
    the area and its rings touch, 40 seats per vehicle, 100 km at most. 202 with the roster and its job.
    Accepts ``Idempotency-Key``: a retried request answers with the roster it already started."""
    earlier = idempotency.earlier_answer(g.user.id)
    if earlier:
        roster = building.get_roster(uuid.UUID(earlier[1]["id"]))
        audit.note(object_type="roster", object_ids=[roster.id, crisis_id], details={"idempotent_replay": True})
        return _roster_accepted(roster)
    roster = building.request_roster(crisis_id, load_json(_ROSTER_IN), g.user)
    audit.note(object_type="roster", object_ids=[roster.id, crisis_id],
               details={"points": len(roster.params["assembly_point_ids"]), "number": roster.number})
    idempotency.remember_answer(g.user.id, 202, {"id": str(roster.id)})
    return _roster_accepted(roster)


def _roster_accepted(roster) -> Response:
    return dump(_ROSTER_ACCEPTED, roster, status=202, headers={"Location": f"/api/v1/rosters/{roster.id}"})


@crisis_rosters_bp.get("/<uuid:crisis_id>/rosters")
@requires("rosters:read")
@documented(summary="The crisis's rosters, newest first", query=schemas.RosterListQuery, response=schemas.RosterPage,
            errors=(404,))
def list_rosters(crisis_id: uuid.UUID):
    args = load_query(_ROSTER_LIST_QUERY)
    page = building.list_rosters(crisis_id, limit=args["limit"], cursor=args["cursor"])
    audit.note(object_type="roster", object_ids=[crisis_id, *(r.id for r in page["items"])],
               purpose=args.get("purpose"))
    page["items"] = [building.roster_out(r, g.user) for r in page["items"]]
    return dump(_ROSTER_PAGE, page)


@rosters_bp.get("/<uuid:roster_id>")
@requires("rosters:read")
@documented(summary="A roster's status and counts", response=schemas.RosterOut, errors=(404,))
def get_roster(roster_id: uuid.UUID):
    """Counts per assembly point (every point the roster considered); an embassy officer's counts cover
    their jurisdiction's people only."""
    audit.note(object_type="roster", object_ids=[roster_id])
    return dump(_ROSTER_OUT, building.roster_out(building.get_roster(roster_id), g.user))


def _entry_out(row: dict) -> dict:
    location = {"lat": row["lat"], "lon": row["lon"]} if row["lat"] is not None else None
    welfare = {"status": row["welfare_status"], "note": row["welfare_note"],
               "contact_attempts": row["contact_attempts"], "last_contact_at": row["last_contact_at"],
               "last_contact_outcome": row["last_contact_outcome"], "reached": row["reached"],
               "updated_at": row["welfare_updated_at"]}
    return {**row, "location": location, "welfare": welfare}


@rosters_bp.get("/<uuid:roster_id>/entries")
@requires("rosters:read")
@limited("bulk")
@documented(summary="The roster's people in priority order (a call list)", query=schemas.EntryQuery,
            response=schemas.EntryPage, errors=(400, 404, 422, 429))
def list_entries(roster_id: uuid.UUID):
    """Filters ``welfare_status``, ``reached`` (false: never reached in this crisis), ``assembly_point_id``,
    ``vehicle``, ``assigned``, ``priority``. An embassy officer gets their jurisdiction's people."""
    audit.note(object_type="roster", object_ids=[roster_id])
    args = load_query(_ENTRY_QUERY)
    purpose = args.pop("purpose", None)
    page = building.list_entries(building.get_roster(roster_id), g.user, **args)
    audit.note(object_ids=[roster_id, *(r["national_id"] for r in page["items"])], result_count=page["total"],
               purpose=purpose, details={"filters": sorted(k for k in args if k not in ("limit", "cursor"))})
    page["items"] = [_entry_out(r) for r in page["items"]]
    return dump(_ENTRY_PAGE, page)


@rosters_bp.get("/<uuid:roster_id>/entries/<uuid:national_id>")
@requires("rosters:read")
@documented(summary="One person of the roster, with their welfare history in the crisis",
            response=schemas.EntryOut, errors=(404, 422))
def get_entry(roster_id: uuid.UUID, national_id: uuid.UUID):
    audit.note(object_type="roster_entry", object_ids=[roster_id, national_id])
    roster = building.get_roster(roster_id)
    row = building.get_entry(roster, national_id, g.user)
    return dump(_ENTRY_OUT, {**_entry_out(row), "history": welfare.history(roster.crisis_id, national_id)})


@rosters_bp.patch("/<uuid:roster_id>/entries/<uuid:national_id>")
@requires("welfare:write")
@documented(summary="Set a person's welfare status in the crisis, log a contact attempt",
            body=schemas.WelfareUpdate, response=schemas.EntryOut, errors=(400, 404, 415, 422))
def update_entry(roster_id: uuid.UUID, national_id: uuid.UUID):
    """``{"welfare_status", "note", "contact": {"channel", "outcome"}}``, any of them. The status belongs to
    the national in the crisis: a rebuilt roster keeps it. Embassy officers: their jurisdiction only."""
    audit.note(object_type="roster_entry", object_ids=[roster_id, national_id])
    data = load_json(_WELFARE_IN)
    roster = building.get_roster(roster_id)
    row = welfare.update(roster, national_id, data, g.user)
    audit.note(details={"fields": sorted(data), "welfare_status": row["welfare_status"],
                        "contact_outcome": data["contact"]["outcome"] if data.get("contact") else None})
    return dump(_ENTRY_OUT, {**_entry_out(row), "history": welfare.history(roster.crisis_id, national_id)})


@rosters_bp.get("/<uuid:roster_id>/diff")
@requires("rosters:read")
@limited("bulk")
@documented(summary="What changed from an earlier roster of the crisis", query=schemas.RosterDiffQuery,
            response=schemas.RosterDiff, errors=(400, 404, 422, 429))
def roster_diff(roster_id: uuid.UUID):
    """People ``added``, ``removed``, and ``changed`` (another point, vehicle or reason) since roster
    ``from`` (by default the one built before). ``purpose`` is required."""
    audit.note(object_type="roster", object_ids=[roster_id])
    require_purpose("Roster diffs")
    args = load_query(_DIFF_QUERY)
    roster = building.get_roster(roster_id)
    other = building.get_roster(args["from_"]) if args.get("from_") else building.previous_roster(roster)
    if other is None:
        raise Unprocessable("This is the crisis's first roster; there is nothing to compare it with.",
                            errors={"from": ["No earlier roster."]})
    result = building.diff(roster, other, g.user)
    audit.note(object_ids=[roster_id, other.id], purpose=args["purpose"], result_count=sum(result["counts"].values()))
    return dump(_DIFF_OUT, {**result, "from_": result["from"]})


@rosters_bp.get("/<uuid:roster_id>/export")
@requires("rosters:read")
@limited("bulk")
@documented(summary="Export the roster (csv, xlsx, pdf, geojson, kml, hxl, pfif)", query=schemas.ExportQuery,
            status=200, errors=(400, 404, 422, 429))
def export_roster(roster_id: uuid.UUID):
    """Every national of the roster, placed or not (``unassigned_reason``), with the columns of the
    caller's role; an embassy officer gets their jurisdiction's people; ``assembly_point_id`` narrows it
    to one point's manifests (what its staff print). Up to
    REGISTRY_EXPORT_INLINE_ROWS rows the file is the answer (200); larger exports answer 202 with a job
    whose ``result.download_url`` serves the file until it expires. ``purpose`` is required."""
    audit.note(object_type="roster", object_ids=[roster_id])
    require_purpose("Roster exports")
    args = load_query(_EXPORT_QUERY)
    roster = building.get_roster(roster_id)
    building.require_built(roster)
    jurisdiction = sorted(g.user.jurisdiction) if g.user.role == "embassy" else None
    point = args.get("assembly_point_id")
    rows = exports.count_rows(roster, jurisdiction, point=point)
    exports.check_size(args["format"], rows)
    details = {"format": args["format"], "columns": list(exports.columns_for(g.user.role)),
               "assembly_point_id": str(point) if point else None}
    if rows > current_app.config["REGISTRY_EXPORT_INLINE_ROWS"]:
        job = exports.request_file(roster, args, g.user, jurisdiction, rows)
        audit.note(object_ids=[roster_id, job.id], result_count=rows, purpose=args["purpose"],
                   details={**details, "delivery": "job"})
        return jobs_views.accepted(job)
    out = io.BytesIO()
    rows = exports.write(out, roster, args["format"], g.user.role, jurisdiction, paper=args["paper"], point=point,
                         rows_expected=rows)
    audit.note(object_ids=[roster_id], result_count=rows, purpose=args["purpose"],
               details={**details, "delivery": "inline"})
    media_type, _ = exports.FORMATS[args["format"]]
    return Response(out.getvalue(), content_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{exports.filename(roster, args["format"])}"'})
