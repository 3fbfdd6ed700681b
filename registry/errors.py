"""One error family, one problem+json shape (RFC 9457).

Every refusal the service makes is an ``ApiError`` (or is turned into one
here): ``type``, ``title``, ``status``, ``detail``, a stable ``code`` that
clients and tests match on, and for validation ``errors: {field: [messages]}``.
"""
from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, json
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    status = 500
    code = "internal-error"
    title = "Internal server error"

    def __init__(self, detail: str | None = None, *, errors: dict | None = None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.extra = extra
        self.headers: dict[str, str] = {}

    def to_dict(self) -> dict:
        body = {
            "type": f"urn:sagip:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    status, code, title = 400, "bad-request", "Bad request"


class MalformedJSON(BadRequest):
    code, title = "malformed-json", "Malformed JSON"


class Unauthorized(ApiError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail=None, **kw):
        super().__init__(detail, **kw)
        self.headers["WWW-Authenticate"] = 'Bearer realm="sagip"'


class Forbidden(ApiError):
    status, code, title = 403, "forbidden", "Not allowed for this role"


class NotFound(ApiError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, code, title = 409, "conflict", "Conflict"


class DuplicatePassport(Conflict):
    code, title = "duplicate-passport", "A national with this passport is already registered"


class PayloadTooLarge(ApiError):
    status, code, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ApiError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class ServiceUnavailable(ApiError):
    status, code, title = 503, "service-unavailable", "A service Sagip depends on is unavailable"

    def __init__(self, detail=None, **kw):
        super().__init__(detail, **kw)
        self.headers["Retry-After"] = "5"


class TooManyRequests(ApiError):
    status, code, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail=None, *, retry_after_s: int, **kw):
        super().__init__(detail, **kw)
        self.headers["Retry-After"] = str(max(1, retry_after_s))


class Unprocessable(ApiError):
    status, code, title = 422, "validation-error", "The request did not validate"


class IdempotencyMismatch(Unprocessable):
    code, title = "idempotency-key-reused", "Idempotency-Key reused with a different request"


# Unique constraints a concurrent request can trip between our check and our insert.
_CONSTRAINT_ERRORS = {
    "uq_nationals_nationality_passport_index": lambda: DuplicatePassport(
        "This passport number was just registered for this nationality.",
        errors={"passport_number": ["Already registered."]}),
    "pk_idempotency_keys": lambda: Conflict("A request with this Idempotency-Key is being processed; retry it."),
}


def from_integrity_error(exc: IntegrityError) -> ApiError:
    """The problem for a constraint violation; names the constraint, never the values."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    make = _CONSTRAINT_ERRORS.get(constraint)
    return make() if make else Conflict("The change conflicts with data stored meanwhile; retry it.")


def problem(error: ApiError) -> Response:
    response = Response(json.dumps(error.to_dict()), status=error.status, mimetype=PROBLEM_JSON)
    response.headers.update(error.headers)
    return response


def _from_http_exception(exc: HTTPException) -> ApiError:
    mapped = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 413: PayloadTooLarge,
              415: UnsupportedMediaType}.get(exc.code)
    if mapped is not None:
        return mapped(exc.description if exc.code != 404 else None)
    error = ApiError(exc.description)
    error.status, error.code, error.title = exc.code or 500, f"http-{exc.code}", exc.name
    return error


def _refused(error: ApiError) -> Response:
    """The problem answer of a refused API call, after recording the refusal in the audit trail.

    The call's own work is rolled back first; its event is then committed on its own.
    """
    from registry.api import is_audited
    if error.status < 500 and is_audited():
        from registry.audit import services as audit
        from registry.extensions import db
        try:
            db.session.rollback()
            audit.record_request(status=error.status)
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.error("could not audit a refused request: %s", type(exc).__name__)
    return problem(error)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return _refused(exc)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return _refused(Unprocessable("One or more fields are invalid.", errors=messages))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _refused(_from_http_exception(exc))

    @app.errorhandler(IntegrityError)
    def _integrity_error(exc: IntegrityError):
        return _refused(from_integrity_error(exc))

    @app.errorhandler(ProgrammingError)
    def _programming_error(exc: ProgrammingError):
        if getattr(exc.orig, "sqlstate", None) == "42501":
            # Row-level security or a missing privilege refused what the query layer let through:
            # the second layer held. A refusal for the client; a bug to look at for us.
            log.warning("the database refused a write or read: %s", type(exc.orig).__name__)
            return _refused(Forbidden("This is outside what your role may change."))
        return _unexpected(exc)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        # The database cannot be reached (down, restarting, connections exhausted): the
        # client may retry; nothing of its request was stored.
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return problem(ServiceUnavailable("The database is unavailable; retry shortly."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Type and frames only: exception messages (e.g. a database error's
        # DETAIL line) may quote personal data.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unhandled %s\n%s", type(exc).__name__, frames)
        return problem(ApiError("An unexpected error occurred; it has been logged."))


class InvalidLocation(Unprocessable):
    """A point that cannot be where the record says: at sea, (0, 0), in another country, swapped."""

    code, title = "invalid-location", "The location is not plausible"
