"""Refusals as ``application/problem+json`` (RFC 9457), and other exceptions turned into refusals.

``as_api_error`` is the one place that decides what an exception means for
the client: ours (``registry.errors``) as they are; marshmallow, webargs and
werkzeug errors, database refusals and bad input that slipped past
validation as 4xx; an unreachable database as 503; anything else as None
(a bug: 500, logged by type and frames only).
"""
from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, json
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from werkzeug.exceptions import HTTPException

from registry.errors import (ApiError, BadRequest, Conflict, DuplicatePassport, Forbidden, NotFound,
                             PayloadTooLarge, ServiceUnavailable, Unauthorized, Unprocessable, UnsupportedMediaType)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Unique constraints a concurrent request can trip between our check and our insert.
_CONSTRAINT_ERRORS = {
    "uq_nationals_nationality_passport_index": lambda: DuplicatePassport(
        "This passport number was just registered for this nationality.",
        errors={"passport_number": ["Already registered."]}),
    "pk_idempotency_keys": lambda: Conflict("A request with this Idempotency-Key is being processed; retry it."),
}
_HTTP_ERRORS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 413: PayloadTooLarge,
                415: UnsupportedMediaType}


def from_integrity_error(exc: IntegrityError) -> ApiError:
    """The problem for a constraint violation; names the constraint, never the values."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    make = _CONSTRAINT_ERRORS.get(constraint)
    return make() if make else Conflict("The change conflicts with data stored meanwhile; retry it.")


def validation_messages(messages) -> dict:
    """marshmallow messages as ``{field: [messages]}`` (a list of messages belongs to the whole body)."""
    return messages if isinstance(messages, dict) else {"_schema": messages}


def as_api_error(exc: BaseException) -> ApiError | None:
    """What ``exc`` means for the client, or None when it is a bug of ours."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return Unprocessable("One or more fields are invalid.", errors=validation_messages(exc.messages))
    if isinstance(exc, HTTPException):
        return _from_http_exception(exc)
    if isinstance(exc, IntegrityError):
        return from_integrity_error(exc)
    if isinstance(exc, OperationalError):
        # The database cannot be reached (down, restarting, connections exhausted): nothing of the request
        # was stored, and the client may retry.
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return ServiceUnavailable("The database is unavailable; retry shortly.")
    if isinstance(exc, ProgrammingError) and getattr(exc.orig, "sqlstate", None) == "42501":
        # Row-level security or a missing privilege refused what the query layer let through: the second
        # layer held. A refusal for the client; a bug for us to look at.
        log.warning("the database refused a write or read: %s", type(exc.orig).__name__)
        return Forbidden("This is outside what your role may change.")
    if isinstance(exc, DataError):
        # A value the schemas let through but the database refuses (out of range, bad encoding): a gap in
        # validation to close, but the client's input all the same.
        log.warning("the database refused a value: %s (sqlstate %s)", type(exc.orig).__name__,
                    getattr(exc.orig, "sqlstate", None))
        return Unprocessable("A value is out of range or not valid text.")
    if isinstance(exc, RecursionError):
        return BadRequest("The request is nested too deeply.")
    return None


def _from_http_exception(exc: HTTPException) -> ApiError:
    data = getattr(exc, "data", None) or {}
    if exc.code == 422 and "messages" in data:  # webargs' abort, should a parser error reach here
        return Unprocessable("One or more fields are invalid.", errors=validation_messages(data["messages"]))
    mapped = _HTTP_ERRORS.get(exc.code)
    if mapped is not None:
        return mapped(exc.description if exc.code != 404 else None)
    error = ApiError(exc.description)
    error.status, error.code, error.title = exc.code or 500, f"http-{exc.code}", exc.name
    return error


def problem(error: ApiError) -> Response:
    response = Response(json.dumps(error.to_dict()), status=error.status, mimetype=PROBLEM_JSON)
    response.headers.update(error.headers)
    return response


def unexpected(exc: BaseException) -> Response:
    """The 500 answer of a bug; logged by type and frames only: exception messages (a database error's
    DETAIL line, a value in a ValueError) may quote personal data."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s\n%s", type(exc).__name__, frames)
    return problem(ApiError("An unexpected error occurred; it has been logged."))


def register_error_handlers(app: Flask) -> None:
    """Problems for what happens outside an API call (an unknown path, a method not allowed, the console);
    API calls answer their own problems at their boundary (``registry.boundary``)."""

    @app.errorhandler(Exception)
    def _any(exc: Exception):
        error = as_api_error(exc)
        return problem(error) if error is not None else unexpected(exc)
