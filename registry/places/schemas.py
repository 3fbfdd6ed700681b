"""Query and answers of ``/api/v1/geocode`` and ``/api/v1/countries/{code}``."""
from __future__ import annotations

from marshmallow import Schema, fields

from registry import fields as f
from registry.schemas import PurposeQuery


class GeocodeQuery(PurposeQuery):
    country = f.Country(required=True)
    q = f.Text(200, required=True)


class PlaceOut(Schema):
    geonameid = fields.Integer(allow_none=True)
    name = fields.String()
    admin1 = fields.String(allow_none=True)
    country = fields.String()
    lat = fields.Float()
    lon = fields.Float()
    population = fields.Integer()
    precision_m = fields.Float()
    source = fields.String(metadata={"description": "geocoded_city, or country_centroid when no place matched"})


class GeocodeOut(Schema):
    query = fields.String()
    country = fields.String()
    match = fields.Nested(PlaceOut, allow_none=True, metadata={"description": "the best place, or the country's "
                                                                             "reference point when none matched"})
    fuzzy = fields.Boolean(metadata={"description": "matched by similarity rather than by one of its names"})
    alternatives = fields.List(fields.Nested(PlaceOut))


class CountryFeature(Schema):
    type = fields.String()
    properties = fields.Dict()
    geometry = fields.Dict()
