"""Marshmallow fields built on the shared rules of ``registry.validation``."""
from __future__ import annotations

from marshmallow import ValidationError, fields

from registry import validation


class Parsed(fields.Field):
    """A field whose input is normalised by a ``validation.parse_*`` function."""

    parser = staticmethod(lambda value: value)
    openapi = {"type": "string"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Not a string.")
        try:
            return self.parser(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class Country(Parsed):
    parser = staticmethod(validation.parse_country)
    openapi = {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2"}


class Phone(Parsed):
    parser = staticmethod(validation.parse_phone)
    openapi = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$", "description": "E.164"}


class Passport(Parsed):
    parser = staticmethod(validation.parse_passport)
    openapi = {"type": "string", "pattern": "^[A-Z0-9]{5,20}$"}


class Isco(Parsed):
    parser = staticmethod(validation.parse_isco)
    openapi = {"type": "string", "pattern": "^[0-9]{1,4}$", "description": "ISCO-08 code"}


class Language(Parsed):
    parser = staticmethod(validation.parse_language)
    openapi = {"type": "string", "description": "ISO 639-1 or 639-3 code"}


class Email(Parsed):
    parser = staticmethod(validation.parse_email)
    openapi = {"type": "string", "format": "email"}


class Text(Parsed):
    """Stripped text without control characters; blank becomes null."""

    def __init__(self, max_length: int = validation.MAX_NAME, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.openapi = {"type": "string", "maxLength": max_length}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Not a string.")
        try:
            text = validation.parse_text(value, self.max_length, required=self.required)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return text


class _Coordinate(fields.Float):
    parser = staticmethod(lambda value: value)

    def _validated(self, value):
        number = super()._validated(value)
        try:
            return self.parser(number)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Latitude(_Coordinate):
    parser = staticmethod(validation.parse_latitude)


class Longitude(_Coordinate):
    parser = staticmethod(validation.parse_longitude)


def field2property_hook(field) -> dict:
    """apispec attribute function: describe ``Parsed`` fields in the OpenAPI document."""
    return dict(field.openapi) if isinstance(field, Parsed) else {}


class Purpose(Text):
    """Why data is read or changed (SPEC §4): 3-200 characters, recorded in the audit trail."""

    def __init__(self, **kwargs):
        super().__init__(200, **kwargs)
        self.openapi = {"type": "string", "minLength": 3, "maxLength": 200,
                        "description": "why the data is read or changed; recorded in the audit trail"}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is not None and len(text) < 3:
            raise ValidationError("At least 3 characters.")
        return text
