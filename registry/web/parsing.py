"""Reading requests: the JSON body, the query string, the purpose; bad input as 400/415/422, never a 500.

``PARSER`` is the webargs parser behind every ``@blp.arguments``: the body is
read by ``json_body`` (JSON only, bounded nesting, no NUL or lone surrogates,
finite numbers), unknown fields are refused in every location, and a
validation error becomes our ``Unprocessable`` with ``{field: [messages]}``.
"""
from __future__ import annotations

import json
import math
import re
from functools import wraps

from flask import request
from webargs.flaskparser import FlaskParser

from registry.errors import BadRequest, MalformedJSON, Unprocessable, UnsupportedMediaType

MAX_JSON_DEPTH = 64
MAX_QUERY_VALUE_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_QUERY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number out of range")
    return value


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def json_body():
    """The request body as JSON. :raises UnsupportedMediaType, MalformedJSON:"""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")
    data = request.get_data(cache=True)
    try:
        body = json.loads(data, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:
        raise MalformedJSON("The body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        # json's message names a position, never the text around it.
        raise MalformedJSON(f"The body is not valid JSON: {exc}.") from None
    _check_json(body)
    return body


def _check_json(body) -> None:
    """Bounded nesting; strings PostgreSQL can store (no NUL, no lone surrogate). :raises MalformedJSON:"""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value)
            continue
        if not isinstance(value, (list, dict)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise MalformedJSON(f"The body is nested more than {MAX_JSON_DEPTH} levels deep.")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                if isinstance(item, (list, dict, str)):
                    stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in value if isinstance(item, (list, dict, str)))


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise MalformedJSON("The body holds a NUL character (\\u0000), which no field accepts.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJSON("The body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text.") from None


def check_query() -> None:
    """Every query parameter is short text without control characters. :raises BadRequest:"""
    for key, value in request.args.items(multi=True):
        if _QUERY_CONTROL.search(key) or _QUERY_CONTROL.search(value) or len(value) > MAX_QUERY_VALUE_CHARS:
            name = key if key.isprintable() and len(key) <= 40 else "query"
            raise BadRequest(f"The query parameter '{name}' holds control characters or is too long.",
                             errors={name: ["Control characters, or longer than "
                                            f"{MAX_QUERY_VALUE_CHARS} characters."]})


def request_purpose() -> str | None:
    """The ``purpose`` query parameter, stripped (3-200 characters), or None. :raises BadRequest:"""
    purpose = request.args.get("purpose")
    if purpose is None:
        return None
    purpose = purpose.strip()
    if not 3 <= len(purpose) <= 200 or _CONTROL.search(purpose):
        raise BadRequest("The purpose must be 3-200 characters of text.", errors={"purpose": ["3-200 characters."]})
    return purpose


def require_purpose(what: str) -> str:
    """:raises BadRequest: the call needs ``?purpose=`` (SPEC §4: recorded in the audit trail)."""
    purpose = request_purpose()
    if purpose is None:
        raise BadRequest(f"{what} need a purpose (recorded in the audit trail).",
                         errors={"purpose": ["Required (3-200 characters)."]})
    return purpose


def needs_purpose(what: str):
    """A view that needs ``?purpose=``: 400 without it, before anything else is read (SPEC §4)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            require_purpose(what)
            return view(*args, **kwargs)

        return wrapper

    return decorate


class Parser(FlaskParser):
    """webargs, reading the body with ``json_body`` and refusing unknown fields everywhere."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None,
                                   "files": None, "form": None}

    def load_json(self, req, schema):
        body = json_body()
        if not isinstance(body, dict):
            raise MalformedJSON("The body must be a JSON object.")
        return body

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.messages
        # webargs files messages under their location ({"json": {...}}): the client knows where it sent what.
        if isinstance(messages, dict) and len(messages) == 1:
            (location, inner), = messages.items()
            if location in ("json", "query", "querystring", "files", "form"):
                messages = inner
        raise Unprocessable("One or more fields are invalid.",
                            errors=messages if isinstance(messages, dict) else {"_schema": messages})


PARSER = Parser()
