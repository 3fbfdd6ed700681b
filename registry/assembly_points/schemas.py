"""Request and response schemas of assembly points (SPEC §4.3)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry import fields as f
from registry.assembly_points.models import KINDS
from registry.nationals.schemas import LocationOut
from registry.pagination import page_schema
from registry.schemas import PageQuery, StrictSchema


class PointIn(StrictSchema):
    lat = f.Latitude(required=True)
    lon = f.Longitude(required=True)


class AssemblyPointIn(StrictSchema):
    name = f.Text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    location = fields.Nested(PointIn, required=True)
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=1_000_000))
    country = f.Country(required=True)
    active = fields.Boolean(load_default=True)


class AssemblyPointUpdate(AssemblyPointIn):
    pass


class AssemblyPointOut(Schema):
    id = fields.UUID()
    name = fields.String()
    kind = fields.String()
    location = fields.Nested(LocationOut)
    capacity = fields.Integer()
    country = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AssemblyPointQuery(PageQuery):
    country = f.Country()
    kind = fields.String(validate=validate.OneOf(KINDS))
    active = fields.Boolean()


AssemblyPointPage = page_schema(AssemblyPointOut, "AssemblyPointPage")
