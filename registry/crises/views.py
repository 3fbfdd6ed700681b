"""``/api/v1/crises``: declare, read, change crises; their exposure lists (JSON, CSV, GeoJSON) and diffs."""
from __future__ import annotations

import csv
import io
import uuid

from flask import Blueprint, Response, g, json, request
from geoalchemy2.shape import to_shape

from registry.api import documented, dump, load_json, load_query, require_purpose
from registry.audit import services as audit
from registry.auth.access import limited, requires
from registry.crises import areas, schemas, services

bp = Blueprint("crises", __name__, url_prefix="/crises")
_CREATE_IN = schemas.CrisisCreate()
_UPDATE_IN = schemas.CrisisUpdate()
_CRISIS_OUT = schemas.CrisisOut()
_PAGE_OUT = schemas.CrisisPage()
_LIST_QUERY = schemas.CrisisListQuery()
_EXPOSURE_QUERY = schemas.ExposureQuery()
_EXPOSURE_OUT = schemas.ExposurePage()
_DIFF_QUERY = schemas.DiffQuery()
_DIFF_OUT = schemas.ExposureDiff()
CSV_COLUMNS = ("national_id", "family_name", "given_names", "zone", "ring_km", "distance_km", "certainty", "lat",
               "lon", "location_source", "location_precision_m", "location_age_days", "vulnerabilities", "phones",
               "host_country", "city")


def crisis_out(crisis) -> dict:
    version = services.version_of(crisis)
    run = services.latest_run(crisis)
    counts = services.visible_counts(crisis, g.user)
    return {
        "id": crisis.id, "name": crisis.name, "kind": crisis.kind, "severity": crisis.severity,
        "status": crisis.status, "version": crisis.version, "area": areas.as_geojson(to_shape(version.geom)),
        "area_source": version.source, "zones_km": list(version.zones_km),
        "latest_run": {"id": run.id, "version": run.version, "status": run.status, "job_id": run.job_id,
                       "counts": counts} if run else None,
        "created_at": crisis.created_at, "updated_at": crisis.updated_at, "closed_at": crisis.closed_at,
    }


def _area_body():
    """The body, after a cheap vertex estimate on its raw bytes (before any parsing). :raises InvalidArea:"""
    estimate = areas.rough_vertex_count(request.get_data(cache=True))
    if estimate > 2 * areas.MAX_AREA_VERTICES:
        raise areas.InvalidArea(f"The area has about {estimate} vertices; at most {areas.MAX_AREA_VERTICES} "
                                "are accepted.")


@bp.post("")
@requires("crises:write")
@documented(summary="Declare a crisis", body=schemas.CrisisCreate, response=schemas.CrisisOut, status=202,
            errors=(400, 413, 415, 422))
def declare_crisis():
    """Answers 202 with the crisis and its first exposure run (``latest_run.job_id``). Areas up to
    200,000 vertices; invalid geometry is a 422 naming the reason and where."""
    _area_body()
    crisis = services.declare(load_json(_CREATE_IN), g.user)
    audit.note(object_type="crisis", object_ids=[crisis.id])
    return dump(_CRISIS_OUT, crisis_out(crisis), status=202,
                headers={"Location": f"/api/v1/crises/{crisis.id}"})


@bp.get("")
@requires("crises:read")
@documented(summary="List crises", query=schemas.CrisisListQuery, response=schemas.CrisisPage)
def list_crises():
    args = load_query(_LIST_QUERY)
    purpose = args.pop("purpose", None)
    page = services.list_crises(**args)
    audit.note(object_type="crisis", object_ids=[c.id for c in page["items"]], result_count=page["total"],
               purpose=purpose)
    page["items"] = [crisis_out(c) for c in page["items"]]
    return dump(_PAGE_OUT, page)


@bp.get("/<uuid:crisis_id>")
@requires("crises:read")
@documented(summary="Read a crisis", response=schemas.CrisisOut, errors=(404,))
def get_crisis(crisis_id: uuid.UUID):
    audit.note(object_type="crisis", object_ids=[crisis_id])
    return dump(_CRISIS_OUT, crisis_out(services.get_crisis(crisis_id)))


@bp.patch("/<uuid:crisis_id>")
@requires("crises:write")
@documented(summary="Change a crisis", body=schemas.CrisisUpdate, response=schemas.CrisisOut, status=200,
            errors=(400, 404, 413, 422))
def update_crisis(crisis_id: uuid.UUID):
    """A new ``area`` or ``zones_km`` makes a new version and a new exposure run; ``status`` closed
    closes it."""
    audit.note(object_type="crisis", object_ids=[crisis_id])
    _area_body()
    data = load_json(_UPDATE_IN)
    audit.note(details={"fields": sorted(data)})
    return dump(_CRISIS_OUT, crisis_out(services.update_crisis(crisis_id, data, g.user)))


@bp.get("/<uuid:crisis_id>/exposure")
@requires("exposure:read")
@limited("bulk")
@documented(summary="The latest run's exposure rows (JSON, CSV or GeoJSON)", query=schemas.ExposureQuery,
            response=schemas.ExposurePage, errors=(400, 404, 422, 429))
def exposure(crisis_id: uuid.UUID):
    """Filters ``zone``, ``ring_km``, ``certainty``, ``vulnerability``, ``city``; ``format`` json (paged),
    csv or geojson (every row). ``purpose`` is required. An embassy officer gets their jurisdiction's rows."""
    audit.note(object_type="crisis", object_ids=[crisis_id])
    require_purpose("Exposure lists")
    args = load_query(_EXPOSURE_QUERY)
    crisis = services.get_crisis(crisis_id)
    fmt, purpose, limit, cursor = args.pop("format"), args.pop("purpose"), args.pop("limit"), args.pop("cursor", None)
    page = services.exposure_rows(crisis, g.user, limit=limit if fmt == "json" else None, cursor=cursor, **args)
    # The trail names the run and the filters; its rows follow from them and the caller's jurisdiction.
    audit.note(object_ids=[crisis_id, page["run"].id], result_count=page["total"], purpose=purpose,
               details={"filters": sorted(args), "format": fmt, "version": page["run"].version})
    if fmt == "csv":
        return Response(_csv(page["items"]), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="exposure-{crisis_id}.csv"'})
    if fmt == "geojson":
        return Response(json.dumps(_geojson(page["items"])), mimetype="application/geo+json")
    body = {"run_id": page["run"].id, "version": page["run"].version, "items": page["items"],
            "total": page["total"], "counts": page["counts"], "next_cursor": page["next_cursor"]}
    return dump(_EXPOSURE_OUT, body)


@bp.get("/<uuid:crisis_id>/exposure/diff")
@requires("exposure:read")
@limited("bulk")
@documented(summary="What changed between two versions' exposure", query=schemas.DiffQuery,
            response=schemas.ExposureDiff, errors=(400, 404, 422, 429))
def exposure_diff(crisis_id: uuid.UUID):
    """``from`` and ``to`` are versions; rows ``added``, ``removed`` and ``changed`` (zone or ring)."""
    audit.note(object_type="crisis", object_ids=[crisis_id])
    require_purpose("Exposure lists")
    args = load_query(_DIFF_QUERY)
    crisis = services.get_crisis(crisis_id)
    result = services.diff(crisis, g.user, args["from_"], args["to"])
    audit.note(purpose=args["purpose"], details={"from": args["from_"], "to": args["to"]},
               result_count=len(result["added"]) + len(result["removed"]) + len(result["changed"]))
    return dump(_DIFF_OUT, {**result, "from_": result["from"]})


_FREE_TEXT = frozenset({"family_name", "given_names", "city"})


def _flat(row: dict) -> dict:
    location = row["location"] or {}
    return {**row, "lat": location.get("lat"), "lon": location.get("lon"),
            "location_source": location.get("source"), "location_precision_m": location.get("precision_m"),
            "vulnerabilities": ";".join(row["vulnerabilities"]), "phones": ";".join(row["phones"])}


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        flat = _flat(row)
        # Free text starting with = + - @ would run as a formula in a spreadsheet: make it text.
        writer.writerow({k: f"'{v}" if k in _FREE_TEXT and isinstance(v, str) and v[:1] in "=+-@" else v
                         for k, v in flat.items()})
    return out.getvalue()


def _geojson(rows: list[dict]) -> dict:
    features = []
    for row in rows:
        location = row["location"]
        properties = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in row.items() if k != "location"}
        if location:
            properties.update(location_source=location["source"], location_precision_m=location["precision_m"])
        features.append({"type": "Feature", "properties": properties,
                         "geometry": {"type": "Point", "coordinates": [location["lon"], location["lat"]]}
                         if location else None})
    return {"type": "FeatureCollection", "features": features}
