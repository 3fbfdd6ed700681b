"""``/api/v1/crises``: declare, read, change crises; their exposure lists (JSON, CSV, GeoJSON) and diffs."""
from __future__ import annotations

import uuid
from functools import wraps

from flask import Response, g, request, stream_with_context

from registry.audit import services as audit
from registry.auth.access import limited, requires
from registry.crises import areas, listing, schemas, services, welfare
from registry.web.openapi import ApiBlueprint, errors, file_responses
from registry.web.parsing import needs_purpose

bp = ApiBlueprint("crises", __name__, url_prefix="/crises", description="Crises and exposure (SPEC §4.1)")


def area_cost_checked(view):
    """Refuse an area that would be too costly to build, from the raw body, before anything is parsed."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        areas.check_raw_cost(request.get_data(cache=True))
        return view(*args, **kwargs)

    return wrapper


@bp.post("")
@requires("crises:write")
@area_cost_checked
@bp.arguments(schemas.CrisisCreate, example={
    "name": "M7.1 Hualien", "kind": "earthquake", "severity": "high", "zones_km": [25, 100],
    "area": {"type": "circle", "center": {"lat": 23.97, "lon": 121.6}, "radius_km": 50}})
@bp.response(202, schemas.CrisisOut, headers={"Location": {"schema": {"type": "string"}}})
def declare_crisis(data):
    """Declare a crisis.

    Answers 202 with the crisis and its first exposure run (``latest_run.job_id``). Areas up to 200,000
    vertices, generated ones (circles) included; invalid geometry is a 422 naming the reason and where.
    """
    crisis = services.declare(data, g.user)
    audit.note(object_type="crisis", object_ids=[crisis.id])
    return services.crisis_out(crisis, g.user), 202, {"Location": f"/api/v1/crises/{crisis.id}"}


@bp.get("")
@requires("crises:read")
@bp.arguments(schemas.CrisisListQuery, location="query")
@bp.response(200, schemas.CrisisPage)
def list_crises(args):
    """List crises, newest first.

    Summaries: bounding box and vertex count, rings, version, the latest run and its counts (an embassy
    officer's: their jurisdiction's); the area itself only on the single crisis.
    """
    args.pop("purpose", None)
    page = services.list_crises(**args)
    audit.note(object_type="crisis", object_ids=[c.id for c in page["items"]], result_count=page["total"])
    page["items"] = [services.summary(c, g.user) for c in page["items"]]
    return page


@bp.get("/<uuid:crisis_id>")
@requires("crises:read")
@bp.response(200, schemas.CrisisOut)
@errors(404)
def get_crisis(crisis_id: uuid.UUID):
    """Read a crisis, with its area."""
    audit.note(object_type="crisis", object_ids=[crisis_id])
    return services.crisis_out(services.get_crisis(crisis_id), g.user)


@bp.patch("/<uuid:crisis_id>")
@requires("crises:write")
@area_cost_checked
@bp.arguments(schemas.CrisisUpdate, example={"severity": "extreme", "zones_km": [25, 100, 200]})
@bp.response(200, schemas.CrisisOut)
@errors(404)
def update_crisis(data, crisis_id: uuid.UUID):
    """Change a crisis.

    A new ``area`` or ``zones_km`` makes a new version and a new exposure run; ``status`` closed closes it.
    """
    audit.note(object_type="crisis", object_ids=[crisis_id], details={"fields": sorted(data)})
    return services.crisis_out(services.update_crisis(crisis_id, data, g.user), g.user)


@bp.get("/<uuid:crisis_id>/exposure")
@requires("exposure:read")
@limited("bulk")
@needs_purpose("Exposure lists")
@bp.arguments(schemas.ExposureQuery, location="query")
@bp.response(200, schemas.ExposurePage)
@file_responses("text/csv", "application/geo+json", description="format=csv or geojson: every row, streamed")
@errors(404)
def exposure(args, crisis_id: uuid.UUID):
    """The latest run's exposure rows (JSON, CSV or GeoJSON).

    Filters ``zone``, ``ring_km``, ``certainty``, ``vulnerability``, ``city``; ``format`` json (paged), csv or
    geojson (every row, streamed). ``purpose`` is required. An embassy officer gets their jurisdiction's
    rows; coordinators get the priority class, not the vulnerabilities behind it.
    """
    audit.note(object_type="crisis", object_ids=[crisis_id])
    crisis = services.get_crisis(crisis_id)
    fmt, limit, cursor = args.pop("format"), args.pop("limit"), args.pop("cursor", None)
    args.pop("purpose")
    listing.check_filters(g.user, args)
    run = services.run_for(crisis)
    details = {"filters": sorted(args), "format": fmt, "version": run.version}
    if fmt in ("csv", "geojson"):
        # The trail names the run and the filters; its rows follow from them and the caller's reach.
        audit.note(object_ids=[crisis_id, run.id], result_count=listing.counts(g.user, run.id, args)["total"],
                   details=details)
        if fmt == "csv":
            return Response(stream_with_context(listing.stream_csv(g.user, run.id, args)), mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="exposure-{crisis_id}.csv"'})
        return Response(stream_with_context(listing.stream_geojson(g.user, run.id, args)),
                        mimetype="application/geo+json")
    page = listing.page(g.user, run.id, args, limit=limit, cursor=cursor)
    audit.note(object_ids=[crisis_id, run.id], result_count=page["total"], details=details)
    return {"run_id": run.id, "version": run.version, **page}


@bp.get("/<uuid:crisis_id>/exposure/diff")
@requires("exposure:read")
@limited("bulk")
@needs_purpose("Exposure diffs")
@bp.arguments(schemas.DiffQuery, location="query")
@bp.response(200, schemas.ExposureDiff)
@errors(404)
def exposure_diff(args, crisis_id: uuid.UUID):
    """What changed between two versions' exposure.

    ``from`` and ``to`` are versions; rows ``added``, ``removed`` and ``changed`` (zone or ring), each list
    by distance and capped at 10,000 rows with its full size in ``counts``. ``purpose`` is required.
    """
    audit.note(object_type="crisis", object_ids=[crisis_id])
    crisis = services.get_crisis(crisis_id)
    old, new = services.run_for(crisis, args["from_"]), services.run_for(crisis, args["to"])
    result = listing.diff(g.user, old.id, new.id)
    audit.note(object_ids=[crisis_id, old.id, new.id], result_count=sum(result["counts"].values()),
               details={"from": args["from_"], "to": args["to"]})
    return {"from_": args["from_"], "to": args["to"], **result}


@bp.get("/<uuid:crisis_id>/welfare/<uuid:national_id>")
@requires("exposure:read")
@needs_purpose("Welfare reads")
@bp.arguments(schemas.WelfareQuery, location="query")
@bp.response(200, schemas.CrisisWelfareOut)
@errors(404)
def get_welfare(args, crisis_id: uuid.UUID, national_id: uuid.UUID):
    """A national's welfare in the crisis, with roster or without (SPEC §10).

    ``welfare_status`` (``unknown`` with an empty history before any news) and its ``history``, oldest first:
    every status and contact attempt with its ``source`` (``hotline``, ``sms``, ``email``, ``self``). 404 when
    the national was not exposed in the crisis or is outside the caller's reach. ``purpose`` is required.
    """
    audit.note(object_type="welfare", object_ids=[crisis_id, national_id])
    services.get_crisis(crisis_id)
    return welfare.welfare_of(crisis_id, national_id, g.user)


@bp.patch("/<uuid:crisis_id>/welfare/<uuid:national_id>")
@requires("welfare:write")
@bp.arguments(schemas.WelfareUpdate, example={
    "welfare_status": "safe", "note": "Staying with a cousin in Sharjah",
    "contact": {"channel": "phone", "outcome": "reached"}})
@bp.response(200, schemas.CrisisWelfareOut)
@errors(404)
def update_welfare(data, crisis_id: uuid.UUID, national_id: uuid.UUID):
    """Record a national's welfare status in the crisis and a contact attempt, without a roster.

    ``{"welfare_status", "note", "contact": {"channel", "outcome"}}``, any of them (422 with none), as on a
    roster entry; recorded with the source ``hotline``. It ends the hotline's claim on the person. Embassy
    officers: their jurisdiction only (404 outside it, or when the national was not exposed in the crisis).
    """
    audit.note(object_type="welfare", object_ids=[crisis_id, national_id])
    services.get_crisis(crisis_id)
    answer = welfare.update(crisis_id, national_id, data, g.user, source="hotline")
    audit.note(details={"fields": sorted(data), "welfare_status": answer["welfare_status"],
                        "contact_outcome": data["contact"]["outcome"] if data.get("contact") else None})
    return answer
