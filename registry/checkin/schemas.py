"""Schemas of the verification queue's API (SPEC §10)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.checkin.verification import ACTIONS
from registry.nationals.schemas import LocationOut
from registry.pagination import page_schema
from registry.schemas import PageQuery, StrictSchema


class QueuedPerson(Schema):
    id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    sex = fields.String(allow_none=True)
    date_of_birth = fields.Date(allow_none=True)
    phones = fields.List(fields.String())
    passport_number = fields.String(allow_none=True)
    national_id_number = fields.String(allow_none=True)
    status = fields.String()
    source = fields.String()
    jurisdiction_country = fields.String()
    location = fields.Nested(LocationOut, allow_none=True)
    created_at = fields.DateTime()


class Duplicate(QueuedPerson):
    reasons = fields.List(fields.String(), metadata={
        "description": "same_names_and_birth_date, same_phone, same_passport_number, same_national_id_number"})


class QueueCrisis(Schema):
    id = fields.UUID()
    name = fields.String(allow_none=True)


class QueueEntry(Schema):
    national = fields.Nested(QueuedPerson)
    crisis = fields.Nested(QueueCrisis, allow_none=True,
                           metadata={"description": "the crisis whose self-registration page was used"})
    passport_already_registered = fields.Boolean(metadata={
        "description": "the passport number given is already another record's: merge or reject, or verify "
                       "once that record no longer holds it"})
    duplicates = fields.List(fields.Nested(Duplicate))


QueuePage = page_schema(QueueEntry, "VerificationQueuePage")


class QueueQuery(PageQuery):
    pass


class Decision(StrictSchema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    into = fields.UUID(metadata={"description": "merge: the record the self-registration is merged into"})


class DecisionOut(Schema):
    id = fields.UUID()
    action = fields.String()
    status = fields.String(metadata={"description": "abroad (verified) or erased (merged, rejected)"})
    merged_into = fields.UUID(allow_none=True)


class IssuedLink(Schema):
    crisis_id = fields.UUID()
    national_id = fields.UUID()
    url = fields.String(metadata={"description": "the person's new check-in link (absolute): send it to them"})
    expires_at = fields.DateTime()
    generation = fields.Integer(metadata={"description": "how many times the link was issued again"})
