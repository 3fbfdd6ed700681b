"""Query and answer of ``GET /api/v1/audit``."""
from __future__ import annotations

from datetime import timezone

from marshmallow import Schema, fields, validate

from registry.nationals.schemas import PageQuery


class AuditQuery(PageQuery):
    object_id = fields.UUID()
    actor = fields.UUID()
    action = fields.String(validate=validate.Length(min=1, max=80))
    since = fields.AwareDateTime(default_timezone=timezone.utc)
    until = fields.AwareDateTime(default_timezone=timezone.utc)


class AuditEventOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.UUID()
    actor_role = fields.String()
    action = fields.String()
    outcome = fields.String()
    object_type = fields.String()
    object_ids = fields.List(fields.UUID())
    result_count = fields.Integer()
    purpose = fields.String()
    details = fields.Dict()
    chain_seq = fields.Integer(metadata={"description": "position in the hash chain; null until sealed"})


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEventOut))
    total = fields.Integer()
    next_cursor = fields.String(allow_none=True)
