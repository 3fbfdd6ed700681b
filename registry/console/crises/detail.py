"""``/console/crises/{id}``: a crisis with its exposed people (SPEC §9): the area and rings with the exposed on
a map and the list beside it, filters acting on both, counts by zone, certainty and city, the versions and
the diff between two, exports that ask for a purpose, and (coordinators, admins) building a roster.

The page is inside a crisis: its reads are recorded with the purpose "crisis response: <crisis name>"
without asking; a download asks for its own purpose. Everything comes from the services the API uses
(``registry.crises.listing`` with the caller's reach and the fields their role may see): an embassy officer
sees the crisis, and only their jurisdiction's people and counts, as ``GET /api/v1/crises/{id}/exposure``.
The list is paged and the map reads the current filter's points grouped on a grid by the server
(``map.json``), so a run of a million rows never reaches the page.
"""
from __future__ import annotations

import uuid

from flask import Response, g, jsonify, redirect, request, stream_with_context, url_for
from marshmallow import ValidationError

from registry.assembly_points import services as assembly_points
from registry.audit import services as audit
from registry.auth import visibility
from registry.auth.access import limited
from registry.auth.reach import Reach
from registry.console import bp
from registry.console.pages import may, reference_data, render, requires_page
from registry.crises import listing, schemas
from registry.crises import services as crises
from registry.crises.models import CERTAINTIES, WELFARE_STATUSES, ZONES, Crisis
from registry.errors import Forbidden, NotFound, Unprocessable
from registry.jobs import services as jobs
from registry.nationals.models import VULNERABILITIES
from registry.rosters import services as rosters
from registry.rosters.models import PRIORITIES
from registry.rosters.schemas import RosterCreate

PAGE_ROWS = 50
DIFF_ROWS = 100  # per list; the counts say how many there are in all
MAP_GROUPS = 3000  # at most this many points or groups on the map
MAP_CELLS = 80  # the grid: about this many cells across the area and its rings
FILTERS = ("zone", "certainty", "priority", "vulnerability", "welfare_status", "city")
EXPORT_FORMATS = {"csv": "CSV (a row per person)", "geojson": "GeoJSON (a point per person)"}
PRIORITY_LABELS = {1: "medical or disability", 2: "pregnant", 3: "minor or elderly", 4: "standard"}
CERTAINTY_LABELS = {"high": "high (a precise point)", "possible": "possible (near the edge)",
                    "country_only": "country only"}
ROSTER_FIELDS = ("vehicle_capacity", "max_distance_km")
_NEW_ROSTER = {"vehicle_capacity": str(rosters.DEFAULT_VEHICLE_CAPACITY),
               "max_distance_km": f"{rosters.DEFAULT_MAX_DISTANCE_KM:g}", "assembly_point_ids": []}
_NEW_EXPORT = {"purpose": "", "format": "csv"}


@bp.get("/crises/<uuid:crisis_id>")
@requires_page("crises:read")
def crisis(crisis_id: uuid.UUID):
    found = crises.get_crisis(crisis_id)
    filters, errors = read_filters(request.args)
    context = _page(found, filters, filter_errors=errors)
    return render("crisis.html", status=422 if errors else 200, **context)


@bp.get("/crises/<uuid:crisis_id>/map.json")
@requires_page("crises:read")
def crisis_map(crisis_id: uuid.UUID):
    """The current filter's exposed people for the map: grouped on a grid (counts and mean positions)."""
    found = crises.get_crisis(crisis_id)
    filters, errors = read_filters(request.args)
    if errors:
        raise Unprocessable("Check the filters.", errors=errors)
    run = crises.latest_run(found, succeeded=True)
    if run is None:
        return jsonify({"groups": [], "unlocated": 0, "truncated": False, "run": None})
    version = crises.version_of(found, run.version)
    result = listing.grouped(g.user, run.id, filters, cell_deg=_cell(version.bbox, version.zones_km), cap=MAP_GROUPS)
    audit.note(object_type="crisis", object_ids=[found.id, run.id],
               result_count=sum(group[2] for group in result["groups"]) + result["unlocated"],
               purpose=_purpose(found), details={"filters": sorted(filters), "map": True})
    return jsonify({**result, "run": str(run.id)})


@bp.get("/crises/<uuid:crisis_id>/area.json")
@requires_page("crises:read")
@reference_data
def crisis_area(crisis_id: uuid.UUID):
    """The area and rings of a version, simplified for a map (no personal data)."""
    found = crises.get_crisis(crisis_id)
    version = request.args.get("version", type=int)
    return jsonify(crises.display_shapes(found, version))


@bp.get("/crises/<uuid:crisis_id>/run.json")
@requires_page("crises:read")
@reference_data
def crisis_run(crisis_id: uuid.UUID):
    """The current version's latest exposure run: its status (and its job's progress when the caller may
    follow the job): what the page polls while a run is going. No personal data, nor counts."""
    found = crises.get_crisis(crisis_id)
    run = crises.latest_run(found)
    job = _run_job(run)
    return jsonify({"status": run.status if run else None, "version": run.version if run else None,
                    "progress": job.progress if job else None})


@bp.post("/crises/<uuid:crisis_id>/export")
@requires_page("exposure:read")
@limited("bulk")
def crisis_export(crisis_id: uuid.UUID):
    """The exposure list as ``GET /api/v1/crises/{id}/exposure?format=csv|geojson`` gives it: every row of
    the current filter the caller may see, streamed; its purpose asked and recorded."""
    found = crises.get_crisis(crisis_id)
    form = {name: request.form.get(name, "").strip() for name in ("purpose", "format")}
    filters, _ = read_filters(request.form)  # the page's own filters, checked when it was shown
    try:
        args = schemas.ExposureQuery().load({**{k: v for k, v in form.items() if v}, **filters})
    except ValidationError as invalid:
        messages = dict(invalid.messages)
        if "purpose" in messages and not form["purpose"]:
            messages["purpose"] = [("Say why you download these people's data (3-200 characters); it is "
                                    "recorded in the audit trail.")]
        return render("crisis.html", status=422, **_page(found, filters, export=form, export_errors=messages))
    run = crises.run_for(found)
    fmt, purpose = args["format"], args["purpose"]
    total = listing.counts(g.user, run.id, filters)["total"]
    audit.note(object_type="crisis", object_ids=[found.id, run.id], purpose=purpose, result_count=total,
               details={"filters": sorted(filters), "format": fmt, "version": run.version})
    if fmt == "geojson":
        return Response(stream_with_context(listing.stream_geojson(g.user, run.id, filters)),
                        mimetype="application/geo+json",
                        headers={"Content-Disposition": f'attachment; filename="exposure-{found.id}.geojson"'})
    if fmt != "csv":
        raise Unprocessable("Choose CSV or GeoJSON.", errors={"format": ["Choose CSV or GeoJSON."]})
    return Response(stream_with_context(listing.stream_csv(g.user, run.id, filters)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="exposure-{found.id}.csv"'})


@bp.post("/crises/<uuid:crisis_id>/rosters")
@requires_page("rosters:write")
def crisis_roster(crisis_id: uuid.UUID):
    """Build a roster of the crisis's latest run, as ``POST /api/v1/crises/{id}/rosters`` does; then its page."""
    found = crises.get_crisis(crisis_id)
    form = {name: request.form.get(name, "").strip() for name in ROSTER_FIELDS}
    form["assembly_point_ids"] = [v for v in request.form.getlist("assembly_point_ids") if v]
    filters, _ = read_filters(request.args)
    try:
        data = _roster_request(form)
        roster = rosters.request_roster(found.id, data, g.user)
    except Unprocessable as refused:
        errors = {("roster_" + k if k in (*ROSTER_FIELDS, "assembly_point_ids") else "roster"): v
                  for k, v in (refused.errors or {}).items()}
        return render("crisis.html", status=422, **_page(found, filters, roster_form=form, roster_errors=errors,
                                                         roster_detail=refused.detail))
    audit.note(object_type="roster", object_ids=[roster.id, found.id],
               details={"points": len(roster.params["assembly_point_ids"]), "number": roster.number})
    return redirect(url_for("console.roster", roster_id=roster.id), code=303)


def _roster_request(form: dict) -> dict:
    """The build form read by the API's own schema. :raises Unprocessable:"""
    body, errors = {}, {}
    for name, kind in (("vehicle_capacity", int), ("max_distance_km", float)):
        if form[name]:
            try:
                body[name] = kind(form[name])
            except ValueError:
                errors[name] = ["A whole number." if kind is int else "A number."]
    if form["assembly_point_ids"]:
        body["assembly_point_ids"] = form["assembly_point_ids"]
    if errors:
        raise Unprocessable("Check the roster's fields.", errors=errors)
    try:
        return RosterCreate().load(body)
    except ValidationError as invalid:
        raise Unprocessable("Check the roster's fields.", errors=dict(invalid.messages)) from None


def read_filters(source) -> tuple[dict, dict]:
    """The list's and map's filters from a query (or form): (the valid ones, errors by filter)."""
    filters, errors = {}, {}
    for name in FILTERS:
        value = (source.get(name) or "").strip()
        if not value:
            continue
        if name == "zone" and value not in ZONES:
            errors[name] = [f"One of: {', '.join(ZONES)}."]
        elif name == "certainty" and value not in CERTAINTIES:
            errors[name] = [f"One of: {', '.join(CERTAINTIES)}."]
        elif name == "vulnerability" and value not in VULNERABILITIES:
            errors[name] = [f"One of: {', '.join(VULNERABILITIES)}."]
        elif name == "welfare_status" and value not in WELFARE_STATUSES:
            errors[name] = ["One of the welfare statuses."]
        elif name == "priority" and value not in {str(n) for n in PRIORITIES}:
            errors[name] = ["A priority class, 1 to 4."]
        elif name == "city" and len(value) > 200:
            errors[name] = ["At most 200 characters."]
        else:
            filters[name] = int(value) if name == "priority" else value
    if "vulnerability" in filters and "vulnerabilities" in visibility.hidden_from(g.user.role):
        raise Forbidden("Your role may not filter by this field.")
    return filters, errors


def _purpose(crisis: Crisis) -> str:
    return f"crisis response: {crisis.name}"


def _cell(bbox, zones_km) -> float:
    """The map grid's cell in degrees: the area's extent and its outer ring over ``MAP_CELLS``."""
    west, south, east, north = bbox or (0.0, 0.0, 0.0, 0.0)
    width = (east - west) % 360 if east < west else east - west
    extent = max(width, north - south) + 2 * max(zones_km or [0.0]) / 111.0
    return max(extent / MAP_CELLS, 0.0005)


def _bounds(bbox, zones_km) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the area and its outer ring, for the map's first view."""
    if not bbox:
        return None
    west, south, east, north = bbox
    if east < west:
        east += 360
    pad = max(zones_km or [0.0]) / 111.0
    return [[max(-85.0, south - pad), west - pad], [min(85.0, north + pad), east + pad]]


def _run_job(run):
    """The run's job when the caller may follow it (whoever declared, admins)."""
    if run is None or run.job_id is None:
        return None
    try:
        return jobs.get_job(run.job_id, g.user)
    except NotFound:
        return None


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        return -1
    return number


def _page(crisis: Crisis, filters: dict, *, filter_errors=None, export=None, export_errors=None, roster_form=None,
          roster_errors=None, roster_detail=None) -> dict:
    """What the page shows, as the caller may see it; its reads noted with the crisis's purpose."""
    role = g.user.role
    version = crises.version_of(crisis)
    current = crises.latest_run(crisis)
    run = crises.latest_run(crisis, succeeded=True)
    context = {
        "crisis": crisis, "version": version, "current_run": current, "run": run, "run_job": _run_job(current),
        "everywhere": Reach.of(g.user).is_everywhere, "filters": filters, "filter_errors": filter_errors or {},
        "zones": ZONES, "certainties": CERTAINTY_LABELS, "priorities": PRIORITY_LABELS,
        "welfare_statuses": WELFARE_STATUSES,
        "vulnerabilities": VULNERABILITIES if "vulnerabilities" not in visibility.hidden_from(role) else (),
        "export": export or dict(_NEW_EXPORT), "export_errors": export_errors or {}, "formats": EXPORT_FORMATS,
        "may_export": may("exposure:read"), "may_build": may("rosters:write") and crisis.status == "active",
        "roster_form": roster_form or dict(_NEW_ROSTER), "roster_errors": roster_errors or {},
        "roster_detail": roster_detail, "page_rows": PAGE_ROWS, "diff_rows": DIFF_ROWS, "cursor": request.args.get("cursor"),
        "bounds": _bounds(version.bbox, version.zones_km), "list": None, "total_counts": None,
        "versions": [], "diff": None, "diff_error": None, "points": [], "rosters": [],
    }
    shown: list[uuid.UUID] = []
    if run is not None and run.version == crisis.version:
        context["total_counts"] = crises.visible_counts(crisis, g.user)
        if not filter_errors:
            page = listing.page(g.user, run.id, filters, limit=PAGE_ROWS, cursor=request.args.get("cursor") or None)
            shown.extend(row["national_id"] for row in page["items"])
            context["list"] = page
    versions = []
    for item in crises.list_versions(crisis):
        latest = crises.latest_run(crisis, item.version)
        versions.append((item, latest))
    context["versions"] = versions
    old, new = _int_arg("from"), _int_arg("to")
    if old is not None and new is not None:
        try:
            if old < 1 or new < 1:
                raise Unprocessable("Choose two versions.", errors={"from": ["A version."]})
            older, newer = crises.run_for(crisis, old), crises.run_for(crisis, new)
            changes = listing.diff(g.user, older.id, newer.id, cap=DIFF_ROWS)
            context["diff"] = {"from": old, "to": new, **changes}
            shown.extend(row["national_id"] for kind in ("added", "removed", "changed") for row in changes[kind])
        except (Unprocessable, NotFound) as refused:
            context["diff_error"] = refused.detail
    context["diff_from"], context["diff_to"] = old, new
    if context["may_build"]:
        context["points"] = assembly_points.list_points(active=True, limit=500)["items"]
    context["rosters"] = rosters.list_rosters(crisis.id, limit=20)["items"] if may("rosters:read") else []
    audit.note(object_type="crisis", object_ids=[crisis.id, *([run.id] if run else []), *dict.fromkeys(shown)],
               result_count=len(set(shown)), purpose=_purpose(crisis), details={"filters": sorted(filters)})
    return context
