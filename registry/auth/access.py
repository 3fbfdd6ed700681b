"""Who may call what: the permission table of SPEC §4 and its decorator.

Every API view declares one permission with ``@requires``; the OpenAPI
builder and the authorisation tests read it from the view function, so an
endpoint without a rule is visible as such.
"""
from __future__ import annotations

from functools import wraps

from flask import g, request

from registry.auth.services import user_for_token
from registry.errors import Forbidden, Unauthorized

PERMISSIONS: dict[str, frozenset[str]] = {
    "nationals:write": frozenset({"desk", "embassy", "admin"}),
    "nationals:read": frozenset({"desk", "embassy", "coordinator", "admin"}),
    "imports:create": frozenset({"desk", "admin"}),
    # Any authenticated user; the view narrows further (jobs: creator or admin).
    "authenticated": frozenset({"desk", "embassy", "coordinator", "admin", "auditor"}),
}


def authenticate() -> None:
    """Set ``g.user`` from the bearer token. :raises Unauthorized:"""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    user = user_for_token(token.strip())
    if user is None:
        raise Unauthorized("The token is unknown, expired or revoked.")
    g.user = user


def requires(permission: str):
    """Allow the view only to the roles holding ``permission``."""
    roles = PERMISSIONS[permission]

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.user.role not in roles:
                raise Forbidden(f"The role '{g.user.role}' may not do this.")
            return view(*args, **kwargs)

        wrapper.permission = permission
        return wrapper

    return decorate
