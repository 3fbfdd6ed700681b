"""Request and response schemas of the crisis and exposure API (SPEC §4.1)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry import fields as f
from registry.crises.models import (CERTAINTIES, CONTACT_CHANNELS, CONTACT_OUTCOMES, KINDS, SEVERITIES, STATUSES,
                                    WELFARE_SOURCES, WELFARE_STATUSES, ZONES)
from registry.nationals.models import VULNERABILITIES

# The priority classes an exposure run gives (registry/crises/exposure.py PRIORITY_SQL).
PRIORITY_CLASSES = (1, 2, 3, 4)
from registry.pagination import page_schema
from registry.schemas import DiffCounts, PageQuery, RequiredPurposeQuery, StrictSchema

MAX_VERSION = 2 ** 31 - 1  # versions are integers in the database

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
    self_registration = fields.Boolean(metadata={"description": "whether unregistered nationals may register "
                                                                "themselves at /checkin/register/{id} while the "
                                                                "crisis is active (SPEC §10)"})


class RunOut(Schema):
    id = fields.UUID()
    version = fields.Integer()
    status = fields.String()
    job_id = fields.UUID(allow_none=True)
    counts = fields.Dict(allow_none=True, metadata={"description": "inside, ring, total, by_ring, by_certainty, "
                                                                   "by_city; null until the run has succeeded"})


class CrisisSummary(Schema):
    """A crisis without its area: what lists need (a detailed area is hundreds of thousands of vertices)."""

    id = fields.UUID()
    name = fields.String()
    kind = fields.String()
    severity = fields.String()
    status = fields.String()
    version = fields.Integer()
    bbox = fields.List(fields.Float(), metadata={"description": "[west, south, east, north] of the area (RFC "
                                                                "7946; west > east when it crosses ±180°)"})
    vertices = fields.Integer(metadata={"description": "vertices of the stored area"})
    area_source = fields.Dict(metadata={"description": "how the area was given, and any repair made"})
    zones_km = fields.List(fields.Float())
    latest_run = fields.Nested(RunOut, allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    self_registration = fields.Boolean()


class CrisisOut(CrisisSummary):
    area = fields.Dict(metadata={"description": "the stored area, GeoJSON MultiPolygon"})


CrisisPage = page_schema(CrisisSummary, "CrisisPage")


class CrisisListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))


class ExposureQuery(RequiredPurposeQuery):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    zone = fields.String(validate=validate.OneOf(ZONES))
    ring_km = fields.Float(validate=validate.Range(min=0, max=100_000))
    certainty = fields.String(validate=validate.OneOf(CERTAINTIES))
    vulnerability = fields.String(validate=validate.OneOf(VULNERABILITIES))
    priority = fields.Integer(validate=validate.OneOf(PRIORITY_CLASSES),
                              metadata={"description": "1 medical or disability, 2 pregnant, 3 minor or elderly, "
                                                       "4 standard"})
    welfare_status = fields.String(validate=validate.OneOf(WELFARE_STATUSES),
                                   metadata={"description": "the latest welfare status in this crisis (from the "
                                                            "hotline, SMS replies, check-ins); unknown: no news"})
    city = f.Text(200)
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    cursor = fields.String(validate=validate.Length(max=500))


class DiffQuery(RequiredPurposeQuery):
    from_ = fields.Integer(required=True, data_key="from", validate=validate.Range(min=1, max=MAX_VERSION))
    to = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_VERSION))


class ExposureLocation(Schema):
    lat = fields.Float()
    lon = fields.Float()
    source = fields.String()
    precision_m = fields.Float()


class ExposureRow(Schema):
    """A national in a run's zones (SPEC §4.1), with the fields the caller's role may see."""

    national_id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    zone = fields.String()
    ring_km = fields.Float(allow_none=True)
    distance_km = fields.Float()
    certainty = fields.String()
    location = fields.Nested(ExposureLocation, allow_none=True)
    location_age_days = fields.Integer(allow_none=True)
    priority = fields.Integer(allow_none=True, metadata={"description": "roster priority class: 1 medical or "
                                                                        "disability … 4 none"})
    priority_label = fields.String(allow_none=True)
    vulnerabilities = fields.List(fields.String(), metadata={"description": "not shown to coordinators"})
    phones = fields.List(fields.String())
    host_country = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    welfare_status = fields.String(validate=validate.OneOf(WELFARE_STATUSES), metadata={
        "description": "the national's latest welfare status in this crisis (unknown before any news)"})


class ExposurePage(page_schema(ExposureRow, "ExposureRowPage")):
    run_id = fields.UUID()
    version = fields.Integer()
    counts = fields.Dict(metadata={"description": "inside, ring, total, by_ring, by_certainty, by_city of every "
                                                  "row that matches, as of ``counted_at``"})
    counted_at = fields.DateTime(allow_none=True, metadata={
        "description": "when the counts (and total) were counted: the list's first page; callers of the same "
                       "reach share a list's counts for up to a minute, and a welfare change in the crisis "
                       "counts it again"})


class DiffChanged(ExposureRow):
    old_zone = fields.String()
    old_ring_km = fields.Float(allow_none=True)


class ExposureDiff(Schema):
    from_ = fields.Integer(data_key="from")
    to = fields.Integer()
    added = fields.List(fields.Nested(ExposureRow))
    removed = fields.List(fields.Nested(ExposureRow))
    changed = fields.List(fields.Nested(DiffChanged))
    counts = fields.Nested(DiffCounts, metadata={"description": "every list's full size"})
    truncated = fields.Boolean(metadata={"description": "a list holds only its first 10,000 rows (by distance); "
                                                        "export the lists for everything"})


# ---------------------------------------------------------------------- welfare (SPEC §4, §10)

class ContactIn(StrictSchema):
    channel = fields.String(required=True, validate=validate.OneOf(CONTACT_CHANNELS))
    outcome = fields.String(required=True, validate=validate.OneOf(CONTACT_OUTCOMES))


class WelfareUpdate(StrictSchema):
    """A status, a note, a contact attempt: any of them, at least one."""

    welfare_status = fields.String(validate=validate.OneOf(WELFARE_STATUSES))
    note = f.Text(2000, allow_none=True)
    contact = fields.Nested(ContactIn)


class WelfareQuery(RequiredPurposeQuery):
    pass


class ContactOut(Schema):
    channel = fields.String()
    outcome = fields.String()


class WelfareHistoryItem(Schema):
    welfare_status = fields.String(validate=validate.OneOf(WELFARE_STATUSES))
    previous_status = fields.String(allow_none=True)
    source = fields.String(validate=validate.OneOf(WELFARE_SOURCES),
                           metadata={"description": "hotline (an officer), sms, email or self (a check-in)"})
    at = fields.DateTime()
    note = fields.String(allow_none=True)
    contact = fields.Nested(ContactOut, allow_none=True)
    roster_id = fields.UUID(allow_none=True, metadata={"description": "the roster it was recorded through, if any"})
    by = fields.UUID(allow_none=True, metadata={"description": "the user who recorded it"})


class CrisisWelfareOut(Schema):
    """A national's welfare in a crisis, with its history (SPEC §10 "Welfare without a roster")."""

    national_id = fields.UUID()
    crisis_id = fields.UUID()
    welfare_status = fields.String(validate=validate.OneOf(WELFARE_STATUSES),
                                   metadata={"description": "unknown before any news"})
    note = fields.String(allow_none=True)
    contact_attempts = fields.Integer()
    last_contact_at = fields.DateTime(allow_none=True)
    last_contact_outcome = fields.String(allow_none=True)
    reached = fields.Boolean(metadata={"description": "reached at least once in this crisis"})
    history = fields.List(fields.Nested(WelfareHistoryItem), metadata={"description": "oldest first"})
