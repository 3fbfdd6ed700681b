"""The answer of ``/api/v1/codes/{list}`` (documented for the OpenAPI document; the lists are served pre-built)."""
from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class CodeItem(Schema):
    class Meta:
        unknown = INCLUDE  # each list adds its own fields (alpha3, aliases, region, level, …)

    code = fields.String(required=True, metadata={"description": "the code (ISO 3166-1 alpha-2, ISCO-08, ISO 639-3, …)"})
    name = fields.String(required=True, metadata={"description": "its English name or title"})


class CodeListOut(Schema):
    list = fields.String(required=True)
    items = fields.List(fields.Nested(CodeItem), required=True)
    source = fields.String(required=True, metadata={"description": "where the list comes from"})
    version = fields.String(required=True, metadata={"description": "the version of that source"})
    groups = fields.List(fields.Dict(), metadata={"description": "regions only: the UN M49 groups themselves"})
