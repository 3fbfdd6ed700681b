"""Schema pieces every feature shares: strict input, the purpose, and a page's query."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from registry import fields as f

MAX_LIMIT = 1000


class StrictSchema(Schema):
    """Input: an unknown field is refused (422), never ignored (no silent mass assignment)."""

    class Meta:
        unknown = RAISE


class PurposeQuery(StrictSchema):
    """A query string that may say why (SPEC §4: optional where not required, recorded when given)."""

    purpose = f.Purpose()


class RequiredPurposeQuery(StrictSchema):
    purpose = f.Purpose(required=True)


class PageQuery(PurposeQuery):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class DiffCounts(Schema):
    """The full size of each list of a diff (the lists themselves may be capped)."""

    added = fields.Integer()
    removed = fields.Integer()
    changed = fields.Integer()
