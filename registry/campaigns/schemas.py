"""Request and response schemas of message campaigns (SPEC §10)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from registry.campaigns.models import CHANNELS, CAMPAIGN_STATUSES, RECIPIENT_STATES
from registry.crises.models import CERTAINTIES, WELFARE_STATUSES, ZONES
from registry.nationals.models import VULNERABILITIES
from registry.pagination import page_schema
from registry.schemas import PageQuery, StrictSchema

LANGUAGE = validate.Regexp(r"^[a-z]{2,3}$", error="A language code (ISO 639: en, fil, ar).")


class Template(fields.Field):
    """One text (English), or ``{language: text}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and value:
            problems = {}
            for language, text in value.items():
                if not isinstance(language, str) or LANGUAGE.regex.match(language) is None:
                    problems[str(language)[:10]] = ["A language code (ISO 639: en, fil, ar)."]
                elif not isinstance(text, str):
                    problems[language] = ["Not a string."]
            if len(value) > 20:
                problems["_schema"] = ["At most 20 languages."]
            if problems:
                raise ValidationError(problems)
            return dict(value)
        raise ValidationError("A text, or an object of texts by language ({\"en\": \"…\", \"fil\": \"…\"}).")

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class Audience(StrictSchema):
    zones = fields.List(fields.String(validate=validate.OneOf(ZONES)), load_default=list)
    certainty = fields.List(fields.String(validate=validate.OneOf(CERTAINTIES)), load_default=list)
    welfare_status = fields.List(fields.String(validate=validate.OneOf(WELFARE_STATUSES)), load_default=list)
    vulnerability = fields.List(fields.String(validate=validate.OneOf(VULNERABILITIES)), load_default=list)


class CampaignCreate(StrictSchema):
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True,
                           validate=validate.Length(min=1, max=2))
    template = Template(required=True, metadata={
        "description": "placeholders {given_name}, {crisis_name}, {checkin_link}, {hotline}; a text or "
                       "{language: text}", "oneOf": [{"type": "string"}, {"type": "object",
                                                                            "additionalProperties":
                                                                                {"type": "string"}}]})
    subject = fields.String(validate=validate.Length(min=1, max=200),
                            metadata={"description": "email subject; default: the crisis name"})
    audience = fields.Nested(Audience, load_default=dict)
    dry_run = fields.Boolean(load_default=False)


class ChannelCounts(Schema):
    total = fields.Integer()
    reasons = fields.Dict(keys=fields.String(), values=fields.Integer())
    for _state in RECIPIENT_STATES:
        locals()[_state] = fields.Integer()
    del _state


class CampaignCounts(ChannelCounts):
    in_flight = fields.Integer(metadata={"description": "sending + submitting"})
    replied = fields.Integer(metadata={"description": "nationals who replied by SMS or email since it started"})
    possible_duplicates = fields.Integer(metadata={"description": "re-sent after a worker died between the "
                                                                  "gateway's acceptance and its record"})
    by_channel = fields.Dict(keys=fields.String(), values=fields.Nested(ChannelCounts))


class CampaignOut(Schema):
    id = fields.UUID()
    crisis_id = fields.UUID()
    status = fields.String(metadata={"enum": list(CAMPAIGN_STATUSES)})
    channels = fields.List(fields.String())
    templates = fields.Dict(keys=fields.String(), values=fields.String())
    subject = fields.String(allow_none=True)
    audience = fields.Dict()
    job_id = fields.UUID(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    counts = fields.Nested(CampaignCounts)


CampaignPage = page_schema(CampaignOut, "CampaignPage")


class CampaignAccepted(Schema):
    id = fields.UUID()
    job_id = fields.UUID()
    status = fields.String()


class DryRunChannel(Schema):
    available = fields.Boolean(metadata={"description": "false: the channel is off (its setting is empty)"})
    recipients = fields.Integer()
    skipped = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "no_phone, opted_out, no_email"})
    parts = fields.Integer(metadata={"description": "SMS parts in all"})
    messages_by_encoding = fields.Dict(keys=fields.String(), values=fields.Integer())
    parts_by_encoding = fields.Dict(keys=fields.String(), values=fields.Integer())


class DryRunOut(Schema):
    dry_run = fields.Boolean()
    recipients = fields.Integer(metadata={"description": "nationals in the audience"})
    channels = fields.Dict(keys=fields.String(), values=fields.Nested(DryRunChannel))


class RecipientChannel(Schema):
    state = fields.String()
    reason = fields.String(allow_none=True)
    attempts = fields.Integer()
    language = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    failed_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    possible_duplicate = fields.Boolean()
    phone_position = fields.Integer(metadata={"description": "1: the national's first phone"})
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    parts = fields.Integer(allow_none=True)
    encoding = fields.String(allow_none=True)


class RecipientOut(Schema):
    national_id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    sms = fields.Nested(RecipientChannel)
    email = fields.Nested(RecipientChannel)


RecipientPage = page_schema(RecipientOut, "RecipientPage")


class RecipientQuery(PageQuery):
    state = fields.String(validate=validate.OneOf(RECIPIENT_STATES),
                          metadata={"description": "nationals with a channel in this state"})


class CampaignListQuery(PageQuery):
    pass


class DlrQuery(Schema):
    type = fields.Integer(required=True, validate=validate.Range(min=0, max=1024))
