"""Request and response schemas of assembly points, rosters and welfare (SPEC §4.3)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry import fields as f
from registry.crises.models import CERTAINTIES, ZONES
from registry.crises.schemas import ContactIn, ContactOut, WelfareUpdate  # noqa: F401  (one schema for both paths)
from registry.pagination import page_schema
from registry.schemas import DiffCounts, PageQuery, RequiredPurposeQuery, StrictSchema
from registry.rosters.exports import FORMATS as EXPORT_FORMATS
from registry.rosters.exports import PAPERS
from registry.rosters.models import WELFARE_STATUSES


# ---------------------------------------------------------------------- rosters

class RosterCreate(StrictSchema):
    zones = fields.List(fields.String(validate=validate.OneOf(ZONES)), validate=validate.Length(min=1))
    max_ring_km = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=20_000))
    certainties = fields.List(fields.String(validate=validate.OneOf(CERTAINTIES)), validate=validate.Length(min=1))
    assembly_point_ids = fields.List(fields.UUID(), validate=validate.Length(min=1, max=5000))
    vehicle_capacity = fields.Integer(strict=True, validate=validate.Range(min=1, max=1000),
                                      metadata={"description": "seats per vehicle or batch; default 40"})
    max_distance_km = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=20_000),
                                   metadata={"description": "great-circle distance from every member of a "
                                                            "household to its point; default 100"})


class PointCount(Schema):
    assembly_point_id = fields.UUID()
    name = fields.String()
    kind = fields.String()
    country = fields.String()
    capacity = fields.Integer()
    assigned = fields.Integer()
    vehicles = fields.Integer()


class RosterCounts(Schema):
    assigned = fields.Integer()
    unassigned = fields.Integer()
    by_reason = fields.Dict(keys=fields.String(), values=fields.Integer())
    vehicles = fields.Integer()
    by_assembly_point = fields.List(fields.Nested(PointCount))


class RosterOut(Schema):
    id = fields.UUID()
    crisis_id = fields.UUID()
    number = fields.Integer()
    run_id = fields.UUID()
    version = fields.Integer()
    status = fields.String()
    job_id = fields.UUID(allow_none=True)
    params = fields.Dict()
    counts = fields.Nested(RosterCounts, allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class RosterAccepted(Schema):
    id = fields.UUID()
    status = fields.String()
    job_id = fields.UUID()
    number = fields.Integer()


RosterPage = page_schema(RosterOut, "RosterPage")


class WelfareEventOut(Schema):
    status = fields.String()
    source = fields.String(metadata={"description": "hotline, sms, email or self"})
    previous_status = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    contact = fields.Nested(ContactOut, allow_none=True)
    roster_id = fields.UUID(allow_none=True)
    by = fields.UUID(allow_none=True)
    at = fields.DateTime()


class WelfareOut(Schema):
    status = fields.String()
    note = fields.String(allow_none=True)
    contact_attempts = fields.Integer()
    last_contact_at = fields.DateTime(allow_none=True)
    last_contact_outcome = fields.String(allow_none=True)
    reached = fields.Boolean()
    updated_at = fields.DateTime(allow_none=True)


class EntryOut(Schema):
    national_id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    native_name = fields.String(allow_none=True)
    phones = fields.List(fields.String())
    household_id = fields.UUID()
    priority = fields.Integer()
    priority_label = fields.String()
    rank = fields.Integer()
    zone = fields.String()
    ring_km = fields.Float(allow_none=True)
    distance_km = fields.Float()
    certainty = fields.String()
    location = fields.Dict(allow_none=True)
    assembly_point_id = fields.UUID(allow_none=True)
    assembly_point = fields.String(allow_none=True)
    vehicle = fields.Integer(allow_none=True)
    seat = fields.Integer(allow_none=True)
    distance_to_point_km = fields.Float(allow_none=True)
    unassigned_reason = fields.String(allow_none=True)
    host_country = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    welfare = fields.Nested(WelfareOut)
    history = fields.List(fields.Nested(WelfareEventOut))


class EntryQuery(PageQuery):
    purpose = f.Purpose(required=True)
    welfare_status = fields.String(validate=validate.OneOf(WELFARE_STATUSES))
    reached = fields.Boolean(metadata={"description": "false: never reached in this crisis (the call list)"})
    assembly_point_id = fields.UUID()
    vehicle = fields.Integer(validate=validate.Range(min=1, max=2 ** 31 - 1))
    assigned = fields.Boolean()
    priority = fields.Integer(validate=validate.Range(min=1, max=4))


EntryPage = page_schema(EntryOut, "EntryPage")


class RosterDiffQuery(RequiredPurposeQuery):
    from_ = fields.UUID(data_key="from", metadata={"description": "an earlier roster of the crisis; default: "
                                                                  "the one before"})


class DiffRow(Schema):
    national_id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    assembly_point_id = fields.UUID(allow_none=True)
    assembly_point = fields.String(allow_none=True)
    vehicle = fields.Integer(allow_none=True)
    seat = fields.Integer(allow_none=True)
    priority = fields.Integer()
    unassigned_reason = fields.String(allow_none=True)
    zone = fields.String(allow_none=True)
    distance_km = fields.Float(allow_none=True)
    old_assembly_point_id = fields.UUID(allow_none=True)
    old_assembly_point = fields.String(allow_none=True)
    old_vehicle = fields.Integer(allow_none=True)
    old_unassigned_reason = fields.String(allow_none=True)


class RosterDiff(Schema):
    from_ = fields.UUID(data_key="from")
    to = fields.UUID()
    added = fields.List(fields.Nested(DiffRow))
    removed = fields.List(fields.Nested(DiffRow))
    changed = fields.List(fields.Nested(DiffRow))
    counts = fields.Nested(DiffCounts, metadata={"description": "every list's full size"})
    truncated = fields.Boolean(metadata={"description": "a list holds only its first 10,000 people, in roster "
                                                        "order; export the rosters for everything"})


class RosterListQuery(PageQuery):
    pass


class ExportQuery(RequiredPurposeQuery):
    format = fields.String(required=True, validate=validate.OneOf(EXPORT_FORMATS))
    paper = fields.String(load_default="a4", validate=validate.OneOf(PAPERS),
                          metadata={"description": "PDF page size"})
    assembly_point_id = fields.UUID(metadata={"description": "only the people placed at this point"})
