"""Request and response schemas of the nationals API (SPEC §4.2)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from registry import fields as f
from registry import validation
from registry.nationals.models import (LEGAL_STATUSES, LOCATION_SOURCES, NATIONAL_STATUSES, SETTABLE_STATUSES,
                                      SEXES, SOURCES, VULNERABILITIES)
from registry.pagination import page_schema
from registry.schemas import MAX_LIMIT, PageQuery, PurposeQuery, StrictSchema

def _not_in_future(value: datetime) -> None:
    if value > datetime.now(timezone.utc) + timedelta(minutes=5):
        raise ValidationError("Must not be in the future.")


class LocationIn(StrictSchema):
    lat = f.Latitude(required=True)
    lon = f.Longitude(required=True)
    precision_m = fields.Float(validate=validate.Range(min=0, max=5_000_000, min_inclusive=False))
    source = fields.String(validate=validate.OneOf(LOCATION_SOURCES))
    reported_at = fields.AwareDateTime(default_timezone=timezone.utc, validate=_not_in_future)


class LocationOut(Schema):
    lat = fields.Float()
    lon = fields.Float()
    source = fields.String(allow_none=True)
    precision_m = fields.Float(allow_none=True)
    reported_at = fields.DateTime(allow_none=True)


class DeploymentIn(StrictSchema):
    host_country = f.Country(required=True)
    city = f.Text(200, allow_none=True)
    address = f.Text(500, allow_none=True)
    employer = f.Text(200, allow_none=True)
    occupation_isco = f.Isco(allow_none=True)
    sector = f.Text(100, allow_none=True)
    contract_start = fields.Date(allow_none=True)
    contract_end = fields.Date(allow_none=True)
    legal_status = fields.String(validate=validate.OneOf(LEGAL_STATUSES))
    recruitment_agency = f.Text(200, allow_none=True)

    @validates_schema
    def _contract(self, data, **kwargs):
        try:
            validation.check_contract(data.get("contract_start"), data.get("contract_end"))
        except ValueError as exc:
            raise ValidationError(str(exc), "contract_end") from None


class DeploymentOut(Schema):
    host_country = fields.String()
    city = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    employer = fields.String(allow_none=True)
    occupation_isco = fields.String(allow_none=True)
    sector = fields.String(allow_none=True)
    contract_start = fields.Date(allow_none=True)
    contract_end = fields.Date(allow_none=True)
    legal_status = fields.String(allow_none=True, metadata={"description": "not shown to coordinators"})
    recruitment_agency = fields.String(allow_none=True, metadata={"description": "not shown to coordinators"})


class NextOfKinIn(StrictSchema):
    name = f.Text(200, allow_none=True)
    relation = f.Text(50, allow_none=True)
    phone = f.Phone(allow_none=True)


class NextOfKinOut(Schema):
    name = fields.String(allow_none=True)
    relation = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class ConsentIn(StrictSchema):
    given = fields.Boolean(required=True)
    recorded_at = fields.AwareDateTime(default_timezone=timezone.utc, validate=_not_in_future)
    method = f.Text(100, allow_none=True)


class ConsentOut(Schema):
    given = fields.Boolean(allow_none=True)
    recorded_at = fields.String(allow_none=True)
    method = fields.String(allow_none=True)


class NationalFields(StrictSchema):
    """The writable fields of a national; creation requires some of them."""

    family_name = f.Text(200, required=True)
    given_names = f.Text(200, required=True)
    native_name = f.Text(200, allow_none=True)
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    date_of_birth = fields.Date(required=True)
    nationality = f.Country(required=True)
    passport_number = f.Passport(allow_none=True)
    national_id_number = f.Text(40, allow_none=True)
    phones = fields.List(f.Phone(), validate=validate.Length(max=validation.MAX_PHONES))
    email = f.Email(allow_none=True)
    languages = fields.List(f.Language(), validate=validate.Length(max=20))
    vulnerabilities = fields.List(fields.String(validate=validate.OneOf(VULNERABILITIES)),
                                  validate=validate.Length(max=len(VULNERABILITIES)))
    household_id = fields.UUID(allow_none=True)
    next_of_kin = fields.Nested(NextOfKinIn, allow_none=True)
    consent = fields.Nested(ConsentIn, allow_none=True)
    source = fields.String(validate=validate.OneOf(SOURCES))

    @validates("date_of_birth")
    def _born(self, value, **kwargs):
        try:
            validation.parse_birth_date(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


# The SPEC §4.2 example: in the document, and what clients (and the contract test) try first.
NATIONAL_EXAMPLE = {
    "family_name": "Dela Cruz", "given_names": "Maria Luisa", "sex": "F", "date_of_birth": "1990-04-12",
    "nationality": "PH", "passport_number": "P1234567A", "phones": ["+971501234567"],
    "email": "maria@example.org", "vulnerabilities": ["pregnant"],
    "next_of_kin": {"name": "Jose Dela Cruz", "relation": "spouse", "phone": "+639171234567"},
    "deployment": {"host_country": "AE", "city": "Dubai", "address": "Al Barsha 1",
                   "employer": "Emirates Hospitality LLC", "occupation_isco": "5131",
                   "contract_start": "2025-01-15", "contract_end": "2027-01-14", "legal_status": "documented"},
    "location": {"lat": 25.1124, "lon": 55.198},
}


class NationalCreate(NationalFields):
    deployment = fields.Nested(DeploymentIn, required=True)
    location = fields.Nested(LocationIn, allow_none=True)


class NationalUpdate(NationalFields):
    """PATCH: any subset; ``deployment`` fields update the current deployment."""

    status = fields.String(validate=validate.OneOf(SETTABLE_STATUSES))
    deployment = fields.Nested(DeploymentIn(partial=True))


class NationalOut(Schema):
    """A national as the caller's role may see it (registry/auth/visibility.py: coordinators get neither
    dates of birth, vulnerabilities, national ID numbers, consent records, legal status nor agencies)."""

    id = fields.UUID()
    family_name = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    native_name = fields.String(allow_none=True)
    sex = fields.String(allow_none=True)
    date_of_birth = fields.Date(allow_none=True)
    nationality = fields.String()
    passport_number = fields.String(allow_none=True)
    national_id_number = fields.String(allow_none=True)
    phones = fields.List(fields.String())
    email = fields.String(allow_none=True)
    languages = fields.List(fields.String())
    vulnerabilities = fields.List(fields.String())
    household_id = fields.UUID()
    next_of_kin = fields.Nested(NextOfKinOut, allow_none=True)
    consent = fields.Nested(ConsentOut, allow_none=True)
    status = fields.String()
    source = fields.String()
    deployment = fields.Nested(DeploymentOut, allow_none=True)
    location = fields.Nested(LocationOut, allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime(allow_none=True)


class PossibleDuplicate(Schema):
    id = fields.UUID()
    reasons = fields.List(fields.String())


class GeocodingOut(Schema):
    query = fields.String(allow_none=True)
    matched = fields.Dict(allow_none=True, metadata={"description": "the gazetteer place used, or null when the "
                                                                    "country's reference point was used"})
    fuzzy = fields.Boolean()
    alternatives = fields.List(fields.Dict(), metadata={"description": "other places of that name"})


class NationalCreated(NationalOut):
    possible_duplicates = fields.List(fields.Nested(PossibleDuplicate))
    geocoding = fields.Nested(GeocodingOut, allow_none=True,
                              metadata={"description": "how the host city was located, when no point was given"})


class NationalListQuery(PageQuery):
    host_country = f.Country()
    city = f.Text(200)
    status = fields.String(validate=validate.OneOf(NATIONAL_STATUSES))
    vulnerability = fields.String(validate=validate.OneOf(VULNERABILITIES))


class SearchQuery(PurposeQuery):
    """``purpose`` is a query parameter on every method (SPEC §4); required with ``passport_number``."""


class SearchIn(StrictSchema):
    q = f.Text(200, allow_none=True)
    passport_number = f.Passport(allow_none=True)
    host_country = f.Country(allow_none=True)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    purpose = f.Purpose(metadata={"description": "accepted here too; the query parameter is the rule"})

    @validates_schema
    def _something_to_find(self, data, **kwargs):
        if not data.get("q") and not data.get("passport_number"):
            raise ValidationError("Give 'q' (a name) or 'passport_number'.", "q")


NationalPage = page_schema(NationalOut, "NationalPage")


class NationalSearchPage(NationalPage):
    total_exact = fields.Boolean(required=True, metadata={
        "description": "false when ``total`` counts only the names close to the query (word similarity 0.9 "
                       "or more): they filled the page, and the looser matches, all ranked after them, were not "
                       "counted; a lower bound of the matches then"})
