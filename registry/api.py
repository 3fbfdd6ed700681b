"""The ``/api/v1`` blueprint and the helpers every feature's views share.

Views are thin: ``load_json``/``load_query`` parse with a schema (422 with
field errors), a service does the work, ``dump`` answers. ``@documented``
records the schemas for the generated OpenAPI document.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, request
from marshmallow import Schema

from registry.auth.access import authenticate
from registry.errors import BadRequest, MalformedJSON, UnsupportedMediaType

PUBLIC_ENDPOINTS = {"api.openapi.openapi_document", "api.openapi.docs_page"}


def api_blueprint(features: list[Blueprint]) -> Blueprint:
    """``/api/v1`` with the features' blueprints inside; every call authenticates but the public ones."""
    api = Blueprint("api", __name__, url_prefix="/api/v1")
    api.before_request(_authenticate)
    for feature in features:
        api.register_blueprint(feature)
    return api


def _authenticate():
    if request.endpoint not in PUBLIC_ENDPOINTS:
        authenticate()


def is_audited() -> bool:
    """Every call of an API endpoint is audited, but those of the public ones."""
    endpoint = request.endpoint or ""
    return endpoint.startswith("api.") and endpoint not in PUBLIC_ENDPOINTS


def raw_json():
    """The request body as JSON. :raises UnsupportedMediaType, MalformedJSON:"""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")
    data = request.get_data(cache=True)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"The body is not valid JSON: {exc}.") from None


def load_json(schema: Schema):
    body = raw_json()
    if not isinstance(body, dict):
        raise MalformedJSON("The body must be a JSON object.")
    return schema.load(body)


def load_query(schema: Schema) -> dict:
    args = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = values if len(values) > 1 else values[0]
    return schema.load(args)


def dump(schema: Schema, obj, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(schema.dump(obj), ensure_ascii=False, default=str)
    return Response(body, status=status, mimetype="application/json", headers=headers)


def documented(*, summary: str, body: type[Schema] | None = None, query: type[Schema] | None = None,
               response: type[Schema] | None = None, status: int = 200, errors: tuple[int, ...] = ()):
    """Attach what the OpenAPI builder needs to a view function."""

    def decorate(view):
        view.openapi = {"summary": summary, "body": body, "query": query, "response": response,
                        "status": status, "errors": errors, "description": (view.__doc__ or "").strip()}
        return view

    return decorate


def require_purpose(what: str) -> None:
    """:raises BadRequest: the call needs ``?purpose=`` (SPEC §4: recorded in the audit trail)."""
    if not request.args.get("purpose"):
        raise BadRequest(f"{what} need a purpose (recorded in the audit trail).",
                         errors={"purpose": ["Required (3-200 characters)."]})
