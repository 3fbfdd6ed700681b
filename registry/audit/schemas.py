"""Query and answer of ``GET /api/v1/audit``."""
from __future__ import annotations

from datetime import timezone

from marshmallow import Schema, fields, validate

from registry.pagination import page_schema
from registry.schemas import PageQuery


class AuditQuery(PageQuery):
    object_id = fields.UUID()
    actor = fields.UUID()
    action = fields.String(validate=validate.Length(min=1, max=80))
    since = fields.AwareDateTime(default_timezone=timezone.utc)
    until = fields.AwareDateTime(default_timezone=timezone.utc)


class AuditEventOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.UUID(allow_none=True)
    actor_role = fields.String(allow_none=True)
    action = fields.String()
    outcome = fields.String()
    object_type = fields.String(allow_none=True)
    object_ids = fields.List(fields.UUID())
    result_count = fields.Integer(allow_none=True)
    purpose = fields.String(allow_none=True)
    details = fields.Dict()
    chain_seq = fields.Integer(allow_none=True, metadata={"description": "position in the hash chain; null until "
                                                                         "sealed"})


AuditPage = page_schema(AuditEventOut, "AuditPage")
