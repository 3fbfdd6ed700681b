"""``/api/v1/geocode`` and ``/api/v1/countries/{code}``: the reference geography for forms and maps."""
from __future__ import annotations

from flask import Blueprint, Response, json

from registry.api import documented, dump, load_query
from registry.audit import services as audit
from registry.auth.access import requires
from registry.errors import Unprocessable
from registry.places import schemas, services

bp = Blueprint("places", __name__)
_GEOCODE_QUERY = schemas.GeocodeQuery()
_GEOCODE_OUT = schemas.GeocodeOut()


@bp.get("/geocode")
@requires("geodata:read")
@documented(summary="Geocode a city in a country (offline gazetteer)", query=schemas.GeocodeQuery,
            response=schemas.GeocodeOut, errors=(422,))
def geocode():
    """``q`` is a city, optionally ``"City, Region"``; accents, case, transliteration and common variants
    are tolerated. The most populous match wins unless the region says otherwise; the others are listed."""
    args = load_query(_GEOCODE_QUERY)
    if not args.get("q"):
        raise Unprocessable("Give the place to find.", errors={"q": ["Must not be blank."]})
    audit.note(object_type="place", purpose=args.get("purpose"), details={"country": args["country"]})
    return dump(_GEOCODE_OUT, services.geocode(args["country"], args["q"]))


@bp.get("/countries/<string:code>")
@requires("geodata:read")
@documented(summary="A country's boundary as GeoJSON (simplified, for display)", response=schemas.CountryFeature,
            errors=(404,))
def country(code: str):
    audit.note(object_type="country", details={"country": code[:3]})
    body = json.dumps(services.country_feature(code))
    return Response(body, mimetype="application/geo+json")
