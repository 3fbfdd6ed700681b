"""``/api/v1/geocode`` and ``/api/v1/countries/{code}``: the reference geography for forms and maps."""
from __future__ import annotations

from flask import Response, json

from registry.audit import services as audit
from registry.auth.access import requires
from registry.errors import Unprocessable
from registry.places import schemas, services
from registry.web.openapi import ApiBlueprint, errors

bp = ApiBlueprint("places", __name__, description="Reference geography (SPEC §6)")


@bp.get("/geocode")
@requires("geodata:read")
@bp.arguments(schemas.GeocodeQuery, location="query")
@bp.response(200, schemas.GeocodeOut)
def geocode(args):
    """Geocode a city in a country (offline gazetteer).

    ``q`` is a city, optionally ``"City, Region"``; accents, case, transliteration and common variants are
    tolerated. The most populous match wins unless the region says otherwise; the others are listed.
    """
    if not args.get("q"):
        raise Unprocessable("Give the place to find.", errors={"q": ["Must not be blank."]})
    audit.note(object_type="place", details={"country": args["country"]})
    return services.geocode(args["country"], args["q"])


@bp.get("/countries/<string(length=2):code>")
@requires("geodata:read")
@bp.response(200, schemas.CountryFeature, content_type="application/geo+json")
@errors(404)
def country(code: str):
    """A country's boundary as GeoJSON (simplified, for display)."""
    audit.note(object_type="country", details={"country": code})
    return Response(json.dumps(services.country_feature(code)), mimetype="application/geo+json")
