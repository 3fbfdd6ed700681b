"""One error family: every refusal the service makes, as data (RFC 9457 problem fields).

A leaf: it imports nothing of the service. ``registry.web.problems`` renders
these as ``application/problem+json`` and turns other exceptions into them.
Each error has ``type``, ``title``, ``status``, ``detail``, a stable ``code``
that clients and tests match on, and for validation ``errors: {field: [messages]}``.
"""
from __future__ import annotations


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


class Gone(ApiError):
    status, code, title = 410, "gone", "No longer available"


class InvalidLocation(Unprocessable):
    """A point that cannot be where the record says: at sea, (0, 0), in another country, swapped."""

    code, title = "invalid-location", "The location is not plausible"
