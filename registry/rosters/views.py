"""Assembly points, rosters, their people's welfare and their exports (SPEC §4.3)."""
from __future__ import annotations

import uuid

from flask import Response, g

from registry import idempotency
from registry.audit import services as audit
from registry.auth import visibility
from registry.auth.access import limited, requires
from registry.errors import Unprocessable
from registry.jobs import views as jobs_views
from registry.jobs.schemas import JobAccepted
from registry.rosters import diff, entries, exports, schemas, services, welfare
from registry.web.openapi import ApiBlueprint, errors, file_responses
from registry.web.parsing import needs_purpose

# ---------------------------------------------------------------------- rosters

crisis_rosters_bp = ApiBlueprint("crisis_rosters", __name__, url_prefix="/crises",
                                 description="Rosters of a crisis (SPEC §4.3)")
rosters_bp = ApiBlueprint("rosters", __name__, url_prefix="/rosters",
                          description="Rosters, their people, welfare and exports (SPEC §4.3)")


@crisis_rosters_bp.post("/<uuid:crisis_id>/rosters")
@requires("rosters:write")
@crisis_rosters_bp.arguments(schemas.RosterCreate, example={"vehicle_capacity": 40, "max_distance_km": 100})
@crisis_rosters_bp.response(202, schemas.RosterAccepted, headers={"Location": {"schema": {"type": "string"}}})
@errors(404)
def create_roster(data, crisis_id: uuid.UUID):
    """Build a roster of the crisis's latest exposure run.

    Defaults: all zones and certainties of the latest run, the active assembly points in the countries the
    area and its rings touch, 40 seats per vehicle, 100 km at most. 202 with the roster and its job. Accepts
    ``Idempotency-Key``: a retried request answers with the roster it already started.
    """
    earlier = idempotency.earlier_answer(g.user.id)
    if earlier:
        roster = services.get_roster(uuid.UUID(earlier[1]["id"]))
        audit.note(object_type="roster", object_ids=[roster.id, crisis_id], details={"idempotent_replay": True})
        return _roster_accepted(roster)
    roster = services.request_roster(crisis_id, data, g.user)
    audit.note(object_type="roster", object_ids=[roster.id, crisis_id],
               details={"points": len(roster.params["assembly_point_ids"]), "number": roster.number})
    idempotency.remember_answer(g.user.id, 202, {"id": str(roster.id)})
    return _roster_accepted(roster)


def _roster_accepted(roster):
    return roster, 202, {"Location": f"/api/v1/rosters/{roster.id}"}


@crisis_rosters_bp.get("/<uuid:crisis_id>/rosters")
@requires("rosters:read")
@crisis_rosters_bp.arguments(schemas.RosterListQuery, location="query")
@crisis_rosters_bp.response(200, schemas.RosterPage)
@errors(404)
def list_rosters(args, crisis_id: uuid.UUID):
    """The crisis's rosters, newest first."""
    page = services.list_rosters(crisis_id, limit=args["limit"], cursor=args["cursor"])
    audit.note(object_type="roster", object_ids=[crisis_id, *(r.id for r in page["items"])])
    page["items"] = [services.roster_out(r, g.user) for r in page["items"]]
    return page


@rosters_bp.get("/<uuid:roster_id>")
@requires("rosters:read")
@rosters_bp.response(200, schemas.RosterOut)
@errors(404)
def get_roster(roster_id: uuid.UUID):
    """A roster's status and counts.

    Counts per assembly point (every point the roster considered); an embassy officer's counts cover their
    jurisdiction's people only.
    """
    audit.note(object_type="roster", object_ids=[roster_id])
    return services.roster_out(services.get_roster(roster_id), g.user)


def _entry_out(row: dict, role: str) -> dict:
    location = {"lat": row["lat"], "lon": row["lon"]} if row["lat"] is not None else None
    welfare_out = {"status": row["welfare_status"], "note": row["welfare_note"],
                   "contact_attempts": row["contact_attempts"], "last_contact_at": row["last_contact_at"],
                   "last_contact_outcome": row["last_contact_outcome"], "reached": row["reached"],
                   "updated_at": row["welfare_updated_at"]}
    return visibility.strip(role, {**row, "location": location, "welfare": welfare_out})


@rosters_bp.get("/<uuid:roster_id>/entries")
@requires("rosters:read")
@limited("bulk")
@needs_purpose("Roster entry lists")
@rosters_bp.arguments(schemas.EntryQuery, location="query")
@rosters_bp.response(200, schemas.EntryPage)
@errors(404)
def list_entries(args, roster_id: uuid.UUID):
    """The roster's people in priority order (a call list).

    Filters ``welfare_status``, ``reached`` (false: never reached in this crisis), ``assembly_point_id``,
    ``vehicle``, ``assigned``, ``priority``. ``purpose`` is required. An embassy officer gets their
    jurisdiction's people.
    """
    audit.note(object_type="roster", object_ids=[roster_id])
    args.pop("purpose")
    page = entries.list_entries(services.get_roster(roster_id), g.user, **args)
    audit.note(object_ids=[roster_id, *(r["national_id"] for r in page["items"])], result_count=page["total"],
               details={"filters": sorted(k for k in args if k not in ("limit", "cursor"))})
    page["items"] = [_entry_out(r, g.user.role) for r in page["items"]]
    return page


@rosters_bp.get("/<uuid:roster_id>/entries/<uuid:national_id>")
@requires("rosters:read")
@rosters_bp.response(200, schemas.EntryOut)
@errors(404)
def get_entry(roster_id: uuid.UUID, national_id: uuid.UUID):
    """One person of the roster, with their welfare history in the crisis."""
    audit.note(object_type="roster_entry", object_ids=[roster_id, national_id])
    roster = services.get_roster(roster_id)
    row = entries.get_entry(roster, national_id, g.user)
    return {**_entry_out(row, g.user.role), "history": welfare.history(roster.crisis_id, national_id)}


@rosters_bp.patch("/<uuid:roster_id>/entries/<uuid:national_id>")
@requires("welfare:write")
@rosters_bp.arguments(schemas.WelfareUpdate, example={
    "welfare_status": "safe", "note": "Staying with a cousin in Sharjah",
    "contact": {"channel": "phone", "outcome": "reached"}})
@rosters_bp.response(200, schemas.EntryOut)
@errors(404)
def update_entry(data, roster_id: uuid.UUID, national_id: uuid.UUID):
    """Set a person's welfare status in the crisis, log a contact attempt.

    ``{"welfare_status", "note", "contact": {"channel", "outcome"}}``, any of them. The status belongs to
    the national in the crisis: a rebuilt roster keeps it. Embassy officers: their jurisdiction only.
    """
    audit.note(object_type="roster_entry", object_ids=[roster_id, national_id])
    roster = services.get_roster(roster_id)
    row = welfare.update(roster, national_id, data, g.user)
    audit.note(details={"fields": sorted(data), "welfare_status": row["welfare_status"],
                        "contact_outcome": data["contact"]["outcome"] if data.get("contact") else None})
    return {**_entry_out(row, g.user.role), "history": welfare.history(roster.crisis_id, national_id)}


@rosters_bp.get("/<uuid:roster_id>/diff")
@requires("rosters:read")
@limited("bulk")
@needs_purpose("Roster diffs")
@rosters_bp.arguments(schemas.RosterDiffQuery, location="query")
@rosters_bp.response(200, schemas.RosterDiff)
@errors(404)
def roster_diff(args, roster_id: uuid.UUID):
    """What changed from an earlier roster of the crisis.

    People ``added``, ``removed``, and ``changed`` (another point, vehicle or reason) since roster ``from``
    (by default the one built before). ``purpose`` is required.
    """
    audit.note(object_type="roster", object_ids=[roster_id])
    roster = services.get_roster(roster_id)
    other = services.get_roster(args["from_"]) if args.get("from_") else services.previous_roster(roster)
    if other is None:
        raise Unprocessable("This is the crisis's first roster; there is nothing to compare it with.",
                            errors={"from": ["No earlier roster."]})
    result = diff.diff(roster, other, g.user)
    audit.note(object_ids=[roster_id, other.id], result_count=sum(result["counts"].values()))
    return {**result, "from_": result["from"]}


@rosters_bp.get("/<uuid:roster_id>/export")
@requires("rosters:read")
@limited("bulk")
@needs_purpose("Roster exports")
@rosters_bp.arguments(schemas.ExportQuery, location="query")
@file_responses(*(media_type.split(";")[0] for media_type, _ in exports.FORMATS.values()))
@rosters_bp.alt_response(202, schema=JobAccepted, description="a large export: a job builds the file", success=True)
@errors(404)
def export_roster(args, roster_id: uuid.UUID):
    """Export the roster (csv, xlsx, pdf, geojson, kml, hxl, pfif).

    Every national of the roster, placed or not (``unassigned_reason``), with the columns of the caller's
    role; an embassy officer gets their jurisdiction's people; ``assembly_point_id`` narrows it to one point's
    manifests (what its staff print). Up to REGISTRY_EXPORT_INLINE_ROWS rows the file is the answer (200);
    larger exports answer 202 with a job whose ``result.download_url`` serves the file until it expires.
    ``purpose`` is required.
    """
    audit.note(object_type="roster", object_ids=[roster_id])
    made = exports.export(services.get_roster(roster_id), args, g.user)
    if made.job is not None:
        audit.note(object_ids=[roster_id, made.job.id], result_count=made.rows, details=made.details)
        return jobs_views.accepted(made.job)
    audit.note(object_ids=[roster_id], result_count=made.rows, details=made.details)
    return Response(made.content, content_type=made.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})
