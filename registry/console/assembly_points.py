"""``/console/assembly-points``: the points on a map and in a table, filtered by country and activity; adding
and changing one; importing a file of them (SPEC §9).

The forms are read by the API's own schemas and saved by its service, so a point is checked the same way
(in its country, not at sea, latitude and longitude not swapped) and each problem is shown beside its
field. A file goes to the same worker job as ``POST /api/v1/assembly-points/import``; the page follows the
job by polling and then shows what was created and every rejected row with its reason.
"""
from __future__ import annotations

import uuid

from flask import g, redirect, request, url_for
from geoalchemy2.shape import to_shape
from marshmallow import ValidationError

from registry.assembly_points import services
from registry.assembly_points.models import KINDS, AssemblyPoint
from registry.assembly_points.schemas import AssemblyPointIn, AssemblyPointQuery, AssemblyPointUpdate
from registry.audit import services as audit
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import NotFound, Unprocessable
from registry.jobs import services as jobs

PAGE_ROWS = 100
TEXT_FIELDS = ("name", "kind", "country", "lat", "lon", "capacity")
PERMISSION = "crises:write"  # the API's: assembly points are managed by coordinators and admins
_NEW_POINT = {"name": "", "kind": "shelter", "country": "", "lat": "", "lon": "", "capacity": "", "active": True}


@bp.get("/assembly-points")
@requires_page(PERMISSION)
def assembly_points():
    filters = {name: request.args.get(name, "").strip() for name in ("country", "active")}
    context = _context(filters=filters, form=_NEW_POINT)
    refuse_with("assembly_points.html", **context, listing=None, failed="filters")
    listing = _listing(filters)
    audit.note(object_type="assembly_point", object_ids=[p["id"] for p in listing["items"]],
               result_count=listing["total"])
    return render("assembly_points.html", **context, listing=listing)


@bp.post("/assembly-points")
@requires_page(PERMISSION)
def create_assembly_point():
    form = _submitted()
    context = _context(filters={"country": "", "active": ""}, form=form)
    refuse_with("assembly_points.html", **context, listing=_listing({}), failed="point")
    point = _saving(lambda: services.create_point(_load(AssemblyPointIn(), form)))
    audit.note(object_type="assembly_point", object_ids=[point.id])
    return redirect(url_for("console.assembly_points", saved=point.id, _anchor="points"), code=303)


@bp.get("/assembly-points/<uuid:point_id>")
@requires_page(PERMISSION)
def assembly_point(point_id: uuid.UUID):
    point = services.get_point(point_id)
    audit.note(object_type="assembly_point", object_ids=[point.id])
    return render("assembly_points_edit.html", point=services.point_out(point), form=_form_of(point), kinds=KINDS)


@bp.post("/assembly-points/<uuid:point_id>")
@requires_page(PERMISSION)
def update_assembly_point(point_id: uuid.UUID):
    point = services.get_point(point_id)
    form = _submitted()
    refuse_with("assembly_points_edit.html", point=services.point_out(point), form=form, kinds=KINDS)
    data = _load(AssemblyPointUpdate(), form)
    changed = _changes(point, data)
    if changed:
        _saving(lambda: services.update_point(point_id, changed))
    audit.note(object_type="assembly_point", object_ids=[point_id], details={"fields": sorted(changed)})
    return redirect(url_for("console.assembly_points", saved=point_id, unchanged=None if changed else 1,
                            _anchor="points"), code=303)


@bp.post("/assembly-points/import")
@requires_page(PERMISSION)
def import_assembly_points():
    refuse_with("assembly_points.html", **_context(filters={"country": "", "active": ""}, form=_NEW_POINT),
                listing=_listing({}), failed="import")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Unprocessable("Choose a file to import.", errors={"file": ["Choose a CSV or XLSX file."]})
    job = services.request_import(upload.filename, upload.read(), g.user)
    audit.note(object_type="job", object_ids=[job.id])
    return redirect(url_for("console.assembly_points", import_job=job.id, _anchor="import"), code=303)


def _context(**context) -> dict:
    return {**context, "kinds": KINDS, "countries": services.countries_in_use(), "import_job": _import_job(),
            "saved": request.args.get("saved"), "unchanged": request.args.get("unchanged")}


def _listing(filters: dict) -> dict:
    """A page of points by name, filtered as the API filters them. :raises Unprocessable: a bad filter."""
    query = {name: value for name, value in filters.items() if value}
    if request.args.get("cursor"):
        query["cursor"] = request.args["cursor"]
    try:
        args = AssemblyPointQuery().load({**query, "limit": PAGE_ROWS})
    except ValidationError as invalid:
        raise Unprocessable("Check the filters.", errors=invalid.messages) from None
    args.pop("purpose", None)
    page = services.list_points(**args)
    page["items"] = [services.point_out(p) for p in page["items"]]
    return page


def _import_job():
    """The caller's import job named by ``?import_job=`` (the page follows it), if any."""
    value = request.args.get("import_job")
    if not value:
        return None
    try:
        job = jobs.get_job(uuid.UUID(value), g.user)
    except ValueError:
        raise NotFound("No such job.") from None
    if job.kind != "assembly_points_import":
        raise NotFound("No such job.")
    return job


def _submitted() -> dict:
    """The point form as typed (shown again when refused); ``active`` is a checkbox."""
    form = {name: request.form.get(name, "").strip() for name in TEXT_FIELDS}
    form["active"] = request.form.get("active") is not None
    return form


def _form_of(point: AssemblyPoint) -> dict:
    shape = to_shape(point.location)
    return {"name": point.name, "kind": point.kind, "country": point.country, "lat": _decimal(shape.y),
            "lon": _decimal(shape.x), "capacity": str(point.capacity), "active": point.active}


def _decimal(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _load(schema, form: dict) -> dict:
    """The form as the API's JSON body, loaded by the API's schema. :raises Unprocessable: beside each field."""
    body = {name: form[name] for name in ("name", "kind", "country") if form[name]}
    location = {axis: _number(form[axis]) for axis in ("lat", "lon") if form[axis]}
    body["location"] = location
    if form["capacity"]:
        body["capacity"] = _number(form["capacity"], integer=True)
    body["active"] = form["active"]
    try:
        return schema.load(body)
    except ValidationError as invalid:
        raise Unprocessable("Some fields need another look.", errors=_beside_fields(invalid.messages)) from None


def _saving(save):
    """``save()``, its refusal's errors put beside the form's fields (a location's beside the latitude)."""
    try:
        return save()
    except Unprocessable as refused:
        refused.errors = _beside_fields(refused.errors or {})
        raise


def _beside_fields(messages: dict) -> dict[str, list[str]]:
    """``{"location": {"lat": [...]}}`` as ``{"lat": [...]}``: one list of messages per field of the form."""
    flat: dict[str, list[str]] = {}
    for name, value in messages.items():
        if name == "location" and isinstance(value, dict):
            for axis, texts in value.items():
                flat.setdefault(axis if axis in ("lat", "lon") else "lat", []).extend(_texts(texts))
        else:
            flat.setdefault("lat" if name == "location" else name, []).extend(_texts(value))
    return flat


def _texts(value) -> list[str]:
    if isinstance(value, dict):
        return [text for inner in value.values() for text in _texts(inner)]
    return [str(text) for text in value] if isinstance(value, list) else [str(value)]


def _number(text: str, *, integer: bool = False):
    """The text as a number when it is one, else the text (so the schema says what is wrong)."""
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text


def _changes(point: AssemblyPoint, data: dict) -> dict:
    """The fields of ``data`` that differ from the point (a moved point: its whole location)."""
    shape = to_shape(point.location)
    changed = {name: value for name, value in data.items()
               if name != "location" and getattr(point, name) != value}
    location = data.get("location")
    if location and (location["lat"], location["lon"]) != (shape.y, shape.x):
        changed["location"] = location
    return changed
