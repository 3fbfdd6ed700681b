"""``/console/crises/new``: declare a crisis by drawing a circle or a polygon on the map (or typing its centre
and radius, or its vertices), or from a pasted or uploaded GeoJSON, CAP 1.2, USGS or GDACS document.

The form becomes the body ``POST /api/v1/crises`` takes, read by the API's own schema (``CrisisCreate``),
its raw size checked by the same cost rule (``areas.check_raw_cost``) and declared by the same service:
every problem (bad geometry, too many vertices, an unknown format) comes back as a 422 beside its field.
"""
from __future__ import annotations

import json
import math
import re

from flask import g, redirect, request, url_for
from marshmallow import ValidationError

from registry.audit import services as audit
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.crises import areas, schemas
from registry.crises import services as crises
from registry.crises.models import KINDS, SEVERITIES
from registry.errors import Unprocessable

AREA_TYPES = {"circle": "A circle", "polygon": "A polygon", "document": "A GeoJSON, CAP, USGS or GDACS document"}
FORMATS = {"geojson": "GeoJSON (Polygon, MultiPolygon, Feature or FeatureCollection)",
           "cap": "CAP 1.2 alert (XML)", "usgs": "USGS event (GeoJSON point feature)",
           "gdacs": "GDACS event (GeoJSON features)"}
TEXT_FIELDS = ("name", "kind", "severity", "zones_km", "area_type", "center_lat", "center_lon", "radius_km",
               "vertices", "area_format", "area_text", "point_radius_km")
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_EMPTY = {"name": "", "kind": "flood", "severity": "", "zones_km": "25, 100", "area_type": "circle",
          "center_lat": "", "center_lon": "", "radius_km": "", "vertices": "", "area_format": "geojson",
          "area_text": "", "point_radius_km": "", "repair": False}


def _context(form: dict) -> dict:
    return {"form": form, "kinds": KINDS, "severities": SEVERITIES, "area_types": AREA_TYPES, "formats": FORMATS,
            "max_vertices": areas.MAX_AREA_VERTICES, "max_radius": areas.MAX_RADIUS_KM}


@bp.get("/crises/new")
@requires_page("crises:write")
def crisis_new():
    return render("crisis_new.html", **_context(dict(_EMPTY)))


@bp.post("/crises/new")
@requires_page("crises:write")
def crisis_create():
    form = {name: request.form.get(name, "").strip() for name in TEXT_FIELDS}
    form["repair"] = request.form.get("repair") == "on"
    refuse_with("crisis_new.html", **_context(form))
    errors: dict[str, list[str]] = {}
    try:
        body = declaration(form, request.files.get("area_file"))
    except Unprocessable as unreadable:  # every field's problem at once: the schema's too
        errors, body = dict(unreadable.errors), {"name": form["name"], "kind": form["kind"], "area": {}}
        if form["severity"]:
            body["severity"] = form["severity"]
    try:
        data = schemas.CrisisCreate().load(body)
    except ValidationError as invalid:
        errors = {**_form_errors(invalid.messages, form), **errors}
    if errors:
        raise Unprocessable("Check the fields marked below.", errors=errors)
    try:
        crisis = crises.declare(data, g.user)
    except Unprocessable as refused:
        raise Unprocessable(refused.detail, errors=_form_errors(refused.errors or {}, form)) from None
    audit.note(object_type="crisis", object_ids=[crisis.id], details={"area": body["area"]["type"]})
    return redirect(url_for("console.crisis", crisis_id=crisis.id), code=303)


def declaration(form: dict, upload=None) -> dict:
    """The API's declaration body from the form. :raises Unprocessable: a field that cannot be read."""
    errors: dict[str, list[str]] = {}
    body = {"name": form["name"], "kind": form["kind"], "area": None}
    if form["severity"]:
        body["severity"] = form["severity"]
    try:
        body["zones_km"] = _numbers(form["zones_km"])
    except ValueError:
        errors["zones_km"] = ["Write the ring distances in km as numbers, e.g. 25, 100."]
    kind = form["area_type"]
    try:
        if kind == "circle":
            body["area"] = _circle(form, errors)
        elif kind == "polygon":
            body["area"] = _polygon(form, errors)
        elif kind == "document":
            body["area"] = _document(form, upload, errors)
        else:
            errors["area_type"] = ["Choose how the area is given."]
    except areas.InvalidArea as invalid:  # the raw cost check
        errors.update(_form_errors(invalid.errors or {}, form))
    if body["area"] is not None and form["repair"]:
        body["area"]["repair"] = True
    if errors:
        raise Unprocessable("Check the fields marked below.", errors=errors)
    return body


def _number(form: dict, name: str, errors: dict, what: str) -> float | None:
    text = form[name]
    if not text:
        errors[name] = [f"Give {what}."]
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors[name] = [f"{what[0].upper()}{what[1:]} is a number."]
        return None
    return value


def _numbers(text: str) -> list[float]:
    values = [float(part) for part in re.split(r"[\s,;]+", text) if part]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(text)
    return values


def _circle(form: dict, errors: dict) -> dict | None:
    lat = _number(form, "center_lat", errors, "the centre's latitude")
    lon = _number(form, "center_lon", errors, "the centre's longitude")
    radius = _number(form, "radius_km", errors, "the radius in km")
    if None in (lat, lon, radius):
        return None
    return {"type": "circle", "center": {"lat": lat, "lon": lon}, "radius_km": radius}


def _polygon(form: dict, errors: dict) -> dict | None:
    """'lat, lon' a line (what drawing on the map writes) as a GeoJSON Polygon, closed if it was not."""
    lines = [line.strip() for line in form["vertices"].splitlines() if line.strip()]
    if len(lines) > areas.MAX_AREA_VERTICES:
        errors["vertices"] = [(f"The polygon has {len(lines)} vertices; at most {areas.MAX_AREA_VERTICES} are "
                               "accepted.")]
        return None
    ring = []
    for number, line in enumerate(lines, start=1):
        parts = [p for p in re.split(r"[\s,;]+", line) if p]
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            errors["vertices"] = [f"Line {number}: write 'latitude, longitude' (e.g. 25.2, 55.27)."]
            return None
        ring.append([lon, lat])
    if len(ring) < 3:
        errors["vertices"] = [("A polygon needs at least 3 vertices: click them on the map, or write one "
                               "'latitude, longitude' a line.")]
        return None
    if ring[0] != ring[-1]:
        ring.append(list(ring[0]))
    return {"type": "geojson", "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _document(form: dict, upload, errors: dict) -> dict | None:
    text = form["area_text"]
    if upload is not None and upload.filename:
        raw = upload.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            errors["area_file"] = [f"The file is larger than {MAX_DOCUMENT_BYTES // 1024 // 1024} MB."]
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors["area_file"] = ["The file is not UTF-8 text."]
            return None
        form["area_text"] = text if len(text) <= 100_000 else ""  # shown again, unless it is huge
    if not text.strip():
        errors["area_text"] = ["Paste the document here or choose its file."]
        return None
    fmt = form["area_format"]
    if fmt not in FORMATS:
        errors["area_format"] = [f"Unknown format; one of: {', '.join(FORMATS)}."]
        return None
    areas.check_raw_cost(text.encode())
    if fmt == "cap":
        return {"type": "cap", "xml": text}
    try:
        document = json.loads(text)
    except ValueError as exc:
        errors["area_text"] = [f"Not JSON: {exc}."]
        return None
    kind = document.get("type") if isinstance(document, dict) else None
    if fmt == "geojson" and kind in ("Polygon", "MultiPolygon"):
        return {"type": "geojson", "geometry": document}
    if kind not in ("Feature", "FeatureCollection"):
        expected = ("a Polygon, MultiPolygon, Feature or FeatureCollection" if fmt == "geojson"
                    else "a GeoJSON Feature or FeatureCollection")
        errors["area_text"] = [f"Not {expected}."]
        return None
    area = {"type": "feature", "feature": document}
    if form["point_radius_km"]:
        radius = _number(form, "point_radius_km", errors, "the radius around a point in km")
        if radius is None:
            return None
        area["radius_km"] = radius
    elif fmt == "usgs":
        errors["point_radius_km"] = ["A USGS event is a point: give the radius around it in km."]
        return None
    return area


def _form_errors(messages: dict, form: dict) -> dict:
    """The service's or schema's error keys (``area.center.lat``) as the form's fields (``center_lat``)."""
    kind = form.get("area_type")
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        text = value if isinstance(value, list) else [json.dumps(value) if not isinstance(value, str) else value]
        text = [m if isinstance(m, str) else json.dumps(m) for m in text]
        out.setdefault(_field_of(str(key), kind), []).extend(text)
    return out


def _field_of(key: str, kind: str | None) -> str:
    if key in ("name", "kind", "severity", "zones_km"):
        return key
    if not key.startswith("area"):
        return "area_type"
    if kind == "circle":
        return {"area.center.lat": "center_lat", "area.center.lon": "center_lon"}.get(key, "radius_km")
    if kind == "polygon":
        return "vertices"
    if key == "area.radius_km" or key.endswith(".radius_km"):
        return "point_radius_km"
    return "area_text"
