"""The statistics calls' queries and answers (SPEC §11)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry import fields as f
from registry.schemas import PurposeQuery, StrictSchema
from registry.statistics.tables import FLOW_KINDS

FORMATS = ("json", "csv", "hxl", "sdmx-csv")


class StocksQuery(PurposeQuery):
    by = fields.String(load_default="", validate=validate.Length(max=200),
                       metadata={"description": "up to three dimensions, comma-separated: host_country, region (UN M49 "
                                                "sub-region), sex, age_band, occupation, occupation_submajor, sector, legal_status, "
                                                "status"})
    at = fields.Date(metadata={"description": "the day (UTC) whose end is counted; default today"})
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class FlowsQuery(PurposeQuery):
    kind = fields.String(required=True, validate=validate.OneOf(FLOW_KINDS))
    by = fields.String(load_default="month", validate=validate.Length(max=200),
                       metadata={"description": "month, then up to two more dimensions (as stocks; not status)"})
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class ProfileRequest(StrictSchema):
    """``POST /statistics/profile``: the year (from 1990 to this one) and the file's format."""

    year = fields.Integer(required=True, strict=True, metadata={"example": 2025})
    format = fields.String(required=True, validate=validate.OneOf(("xlsx", "pdf")))
    purpose = f.Purpose()


class Suppression(Schema):
    threshold = fields.Integer()
    method = fields.String()
    suppressed_cells = fields.Integer()


class StatisticsOut(Schema):
    """Cells (one per combination of categories; a missing value is "unknown") and totals (cells that leave
    dimensions out, as null); a suppressed count is null."""

    dimensions = fields.List(fields.String())
    cells = fields.List(fields.Dict())
    totals = fields.List(fields.Dict())
    suppression = fields.Nested(Suppression)
    at = fields.String()
    kind = fields.String()
    from_ = fields.String(data_key="from")
    to = fields.String()
