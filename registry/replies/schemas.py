"""Request and response schemas of the SMS inbox (SPEC §10)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.crises.models import WELFARE_STATUSES
from registry.pagination import page_schema
from registry.replies.keywords import STATUSES
from registry.replies.models import OUTCOMES, REVIEW_REASONS
from registry.schemas import PageQuery, StrictSchema


class InboxQuery(PageQuery):
    crisis_id = fields.UUID(metadata={"description": "replies matched to (or assigned in) this crisis"})
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    handled = fields.Boolean(metadata={"description": "false: what a person still has to read"})


class InboxUpdate(StrictSchema):
    """Mark handled, and/or assign the reply to a person exposed in an active crisis."""

    handled = fields.Boolean()
    national_id = fields.UUID()
    crisis_id = fields.UUID()
    welfare_status = fields.String(validate=validate.OneOf(STATUSES),
                                   metadata={"description": "recorded for the person assigned (default: the "
                                                            "reply's keyword)"})


class InboxPerson(Schema):
    id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)


class InboxItem(Schema):
    """A reply as received and what was done with it."""

    id = fields.UUID()
    received_at = fields.DateTime()
    phone = fields.String(metadata={"description": "the sender, E.164 when it is a phone number"})
    text = fields.String()
    keyword = fields.String(allow_none=True)
    welfare_status = fields.String(allow_none=True, validate=validate.OneOf(WELFARE_STATUSES))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES), metadata={
        "description": "applied (a status recorded for the one person), needs_review (a person must read it), "
                       "unknown_number, opted_out (STOP), opted_in (START)"})
    review_reason = fields.String(allow_none=True, validate=validate.OneOf(REVIEW_REASONS), metadata={
        "description": "why it needs a person: shared_number, several_crises, not_exposed, free_text, note"})
    crisis_id = fields.UUID(allow_none=True, metadata={"description": "the crisis it was recorded in"})
    national_id = fields.UUID(allow_none=True, metadata={"description": "the person it was recorded for"})
    crisis_ids = fields.List(fields.UUID(), metadata={"description": "active crises the number's people were "
                                                                    "exposed in"})
    people = fields.List(fields.Nested(InboxPerson), metadata={
        "description": "the people the number matched, those the caller may see"})
    handled = fields.Boolean()
    handled_at = fields.DateTime(allow_none=True)
    handled_by = fields.UUID(allow_none=True)


InboxPage = page_schema(InboxItem, "InboxPage")
