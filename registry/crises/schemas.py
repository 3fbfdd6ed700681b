"""Request and response schemas of the crisis and exposure API (SPEC §4.1)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry import fields as f
from registry.crises.models import CERTAINTIES, KINDS, SEVERITIES, STATUSES, ZONES
from registry.nationals.models import VULNERABILITIES
from registry.nationals.schemas import PageQuery, StrictSchema

FORMATS = ("json", "csv", "geojson")


class CrisisCreate(StrictSchema):
    name = f.Text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    severity = fields.String(validate=validate.OneOf(SEVERITIES),
                             metadata={"description": "required unless a CAP alert carries one"})
    # Checked by registry/crises/areas.py (geometry rules need more than a schema can say).
    area = fields.Dict(required=True, metadata={"description": "geojson | circle | countries | cap | feature "
                                                              "(SPEC §4.1); optional \"repair\": true"})
    zones_km = fields.List(fields.Float(), load_default=list)


class CrisisUpdate(StrictSchema):
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    status = fields.String(validate=validate.OneOf(STATUSES))
    area = fields.Dict()
    zones_km = fields.List(fields.Float())


class RunOut(Schema):
    id = fields.UUID()
    version = fields.Integer()
    status = fields.String()
    job_id = fields.UUID(allow_none=True)
    counts = fields.Dict(allow_none=True)


class CrisisOut(Schema):
    id = fields.UUID()
    name = fields.String()
    kind = fields.String()
    severity = fields.String()
    status = fields.String()
    version = fields.Integer()
    area = fields.Dict(metadata={"description": "the stored area, GeoJSON MultiPolygon"})
    area_source = fields.Dict(metadata={"description": "how the area was given, and any repair made"})
    zones_km = fields.List(fields.Float())
    latest_run = fields.Nested(RunOut, allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)


class CrisisPage(Schema):
    items = fields.List(fields.Nested(CrisisOut))
    total = fields.Integer()
    next_cursor = fields.String(allow_none=True)


class CrisisListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))


class ExposureQuery(StrictSchema):
    purpose = fields.String(required=True, validate=validate.Length(min=3, max=200))
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    zone = fields.String(validate=validate.OneOf(ZONES))
    ring_km = fields.Float()
    certainty = fields.String(validate=validate.OneOf(CERTAINTIES))
    vulnerability = fields.String(validate=validate.OneOf(VULNERABILITIES))
    city = f.Text(200)
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    cursor = fields.String(validate=validate.Length(max=500))


class DiffQuery(StrictSchema):
    purpose = fields.String(required=True, validate=validate.Length(min=3, max=200))
    from_ = fields.Integer(required=True, data_key="from", validate=validate.Range(min=1))
    to = fields.Integer(required=True, validate=validate.Range(min=1))


class ExposureLocation(Schema):
    lat = fields.Float()
    lon = fields.Float()
    source = fields.String()
    precision_m = fields.Float()


class ExposureRow(Schema):
    national_id = fields.UUID()
    family_name = fields.String()
    given_names = fields.String()
    zone = fields.String()
    ring_km = fields.Float(allow_none=True)
    distance_km = fields.Float()
    certainty = fields.String()
    location = fields.Nested(ExposureLocation, allow_none=True)
    location_age_days = fields.Integer(allow_none=True)
    vulnerabilities = fields.List(fields.String())
    phones = fields.List(fields.String())
    host_country = fields.String(allow_none=True)
    city = fields.String(allow_none=True)


class ExposurePage(Schema):
    run_id = fields.UUID()
    version = fields.Integer()
    items = fields.List(fields.Nested(ExposureRow))
    total = fields.Integer()
    counts = fields.Dict()
    next_cursor = fields.String(allow_none=True)


class DiffChanged(ExposureRow):
    old_zone = fields.String()
    old_ring_km = fields.Float(allow_none=True)


class ExposureDiff(Schema):
    from_ = fields.Integer(data_key="from")
    to = fields.Integer()
    added = fields.List(fields.Nested(ExposureRow))
    removed = fields.List(fields.Nested(ExposureRow))
    changed = fields.List(fields.Nested(DiffChanged))
