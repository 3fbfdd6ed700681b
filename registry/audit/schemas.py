"""Query and answer of ``GET /api/v1/audit``."""
from __future__ import annotations

from datetime import timezone

from marshmallow import Schema, fields, validate

from registry.audit.services import OUTCOME_NAMES
from registry.pagination import page_schema
from registry.schemas import PageQuery


class AuditQuery(PageQuery):
    object_id = fields.UUID()
    actor = fields.UUID()
    action = fields.String(validate=validate.Length(min=1, max=80))
    since = fields.AwareDateTime(default_timezone=timezone.utc)
    until = fields.AwareDateTime(default_timezone=timezone.utc)
    object_type = fields.String(validate=validate.Length(min=1, max=40))
    outcome = fields.String(validate=validate.OneOf(OUTCOME_NAMES))
    purpose_contains = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "events whose recorded purpose contains this text (any case); ``purpose`` is this call's own"})


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
