"""Who may call what: the permission table of SPEC §4, authentication, and the role check.

Every API view declares one permission with ``@requires``, which checks the
caller's role and nothing else; the OpenAPI document (``x-permission``) and
the authorisation tests read it from the view function, so an endpoint
without a rule is visible as such. Where a call ends (commit, audit) is
``registry.boundary``.
"""
from __future__ import annotations

import hmac
from functools import wraps

from flask import current_app, g, request

from registry import ratelimit
from registry.auth import scope, sessions
from registry.auth.services import user_for_token
from registry.errors import Forbidden, TooManyRequests, Unauthorized
from registry.web.openapi import permission_doc

PERMISSIONS: dict[str, frozenset[str]] = {
    "nationals:write": frozenset({"desk", "embassy", "admin"}),
    "nationals:read": frozenset({"desk", "embassy", "coordinator", "admin"}),
    "imports:create": frozenset({"desk", "admin"}),
    "audit:read": frozenset({"admin", "auditor"}),
    "crises:write": frozenset({"coordinator", "admin"}),
    "crises:read": frozenset({"embassy", "coordinator", "admin"}),
    # Embassy officers get their jurisdiction's rows only (the query layer and RLS).
    "exposure:read": frozenset({"embassy", "coordinator", "admin"}),
    "rosters:write": frozenset({"coordinator", "admin"}),
    # Embassy officers: their jurisdiction's people only, in lists, counts, exports and welfare updates.
    "rosters:read": frozenset({"embassy", "coordinator", "admin"}),
    "welfare:write": frozenset({"embassy", "coordinator", "admin"}),
    # Reference geography (no personal data): everyone who works with records.
    "geodata:read": frozenset({"desk", "embassy", "coordinator", "admin"}),
    # Any authenticated user; the view narrows further (jobs: creator or admin).
    "authenticated": frozenset({"desk", "embassy", "coordinator", "admin", "auditor", "analyst"}),
    # The map of nationals (clusters over their reach).
    "map:read": frozenset({"embassy", "coordinator", "admin"}),
    "users:manage": frozenset({"admin"}),
    # Migration-profile statistics (SPEC §11): counts, never a record; embassy officers their jurisdiction's.
    "statistics:read": frozenset({"analyst", "embassy", "coordinator", "admin"}),
    # Code lists (SPEC §4, §11): every role, the analyst included.
    "codes:read": frozenset({"desk", "embassy", "coordinator", "admin", "auditor", "analyst"}),
    # The SMS inbox (SPEC §4 "Also"): embassy officers the replies of their jurisdiction's people; replies that
    # matched nobody only coordinators and admins (the query layer and RLS).
    "inbox:read": frozenset({"embassy", "coordinator", "admin"}),
    "inbox:write": frozenset({"embassy", "coordinator", "admin"}),
    # Self-registrations awaiting an officer (SPEC §10): embassy officers, those in their jurisdiction.
    "verification:review": frozenset({"embassy", "coordinator", "admin"}),
    # Message campaigns (SPEC §10): coordinators and admins reach everyone, embassy officers their jurisdiction.
    "messages:write": frozenset({"embassy", "coordinator", "admin"}),
    "messages:read": frozenset({"embassy", "coordinator", "admin"}),
    # /metrics (SPEC §12): counts and timings, no personal data; anyone where REGISTRY_METRICS_PUBLIC=1.
    "metrics:read": frozenset({"admin"}),
}


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def authenticate() -> None:
    """Set ``g.user`` from the bearer token (machines), or from the console's session cookie (its scripts,
    which must then send the session's CSRF token in ``X-CSRF-Token`` to change anything).
    :raises Unauthorized, TooManyRequests, Forbidden:"""
    g.user = None
    if "Authorization" not in request.headers and sessions.COOKIE in request.cookies:
        _authenticate_session()
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if user is None:
        wait = ratelimit.hit(f"auth-failures:{request.remote_addr}",
                             current_app.config["REGISTRY_AUTH_FAILURES_PER_MINUTE"])
        if wait:
            raise TooManyRequests("Too many failed authentications from this address; wait and retry.",
                                  retry_after_s=wait)
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send 'Authorization: Bearer <token>'.")
        raise Unauthorized("The token is unknown, expired or revoked.")
    g.user = user
    # user_for_token set the database scope in this transaction; later ones get it too.
    scope.remember(scope.scope_for(user))


def _authenticate_session() -> None:
    session = sessions.current()
    if session is None:
        raise Unauthorized("The console session has ended; sign in again.")
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, ""), session.csrf_token):
        raise Forbidden(f"A change made with the console's session needs its {CSRF_HEADER} header.")
    g.user = session.user


def check_role(permission: str) -> None:
    """:raises Forbidden: the caller's role does not hold ``permission``."""
    if g.user.role not in PERMISSIONS[permission]:
        raise Forbidden(f"The role '{g.user.role}' may not do this.")


def requires(permission: str):
    """Allow the view only to the roles holding ``permission``."""
    PERMISSIONS[permission]  # an unknown permission fails at import, not at the first call

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            check_role(permission)
            return view(*args, **kwargs)

        wrapper.permission = permission
        permission_doc(wrapper, permission)
        return wrapper

    return decorate


def limited(kind: str = "bulk"):
    """Rate-limit a bulk read (list, search, export) per user: 429 with Retry-After beyond the limit."""
    config_key = {"bulk": "REGISTRY_BULK_READS_PER_MINUTE"}[kind]

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            wait = ratelimit.hit(f"{kind}:{g.user.id}", current_app.config[config_key])
            if wait:
                raise TooManyRequests("Too many bulk reads; wait and retry.", retry_after_s=wait)
            return view(*args, **kwargs)

        return wrapper

    return decorate
