"""What every console page shares: entering (session, CSRF), rendering, refusing, and the response headers.

``enter`` is the console's way through the one door (``registry.boundary``): the session's user, or a
redirect to sign in; every form post carries the session's CSRF token (a hidden field) or is refused.
Responses carry a Content-Security-Policy without inline scripts or styles, are never cached, and set the
session cookie ``HttpOnly``, ``SameSite=Lax`` and, in production, ``Secure``.
"""
from __future__ import annotations

import hmac
import logging
import traceback
from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, g, redirect, render_template, request, send_from_directory, url_for
from xstatic.pkg import leaflet

from registry.auth import sessions
from registry.auth.access import CSRF_HEADER, PERMISSIONS, SAFE_METHODS
from registry.console import bp
from registry.errors import ApiError, Forbidden, ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

# Served without the door: the service's own static files and Leaflet's (no personal data).
UNGUARDED = frozenset({"console.static", "console.vendor"})
NAVIGATION = (  # (endpoint, label, permission): what the menu offers each role
    ("console.home", "Home", None),
    ("console.register", "Register", "nationals:write"),
    ("console.nationals", "Nationals", "nationals:read"),
    ("console.imports", "Imports", "imports:create"),
    ("console.map", "Map", "map:read"),
    ("console.crises", "Crises", "crises:read"),
    ("console.inbox", "Inbox", "inbox:read"),
    ("console.verification_queue", "Verification", "verification:review"),
    ("console.assembly_points", "Assembly points", "crises:write"),
    ("console.statistics", "Statistics", "statistics:read"),
    ("console.audit", "Audit", "audit:read"),
    ("console.users", "Users", "users:manage"),
)


class SignInNeeded(Unauthorized):
    code, title = "sign-in-needed", "Sign in to continue"


class CsrfRefused(Forbidden):
    code, title = "csrf-refused", "The form was not sent by this console"


def public(view):
    """A page anyone may open (sign-in, invitations); it still passes the door and is audited."""
    view.public = True
    return view


def reference_data(view):
    """A page of reference data (no personal data, the same for everyone: the base map's tiles). Signed-in
    users only, but its reads are not recorded: a map view fetches dozens."""
    view.audited = False
    return view


def enter(view) -> bool:
    """Let the request in, or raise; whether its event is recorded (a public page's reads are not: they
    show no personal data, and a flood of them must not grow the trail)."""
    session = sessions.current()
    g.user = session.user if session is not None else None
    public_view = getattr(view, "public", False)
    if g.user is None and not public_view:
        raise SignInNeeded("Sign in to continue.")
    if request.method not in SAFE_METHODS:
        sent = request.form.get("csrf_token") or request.headers.get(CSRF_HEADER) or ""
        expected = sessions.expected_csrf()
        if expected is None or not hmac.compare_digest(sent, expected):
            raise CsrfRefused("This form has expired or was not sent by this console: reload the page and send it "
                              "again.")
    unrecorded = public_view or not getattr(view, "audited", True)
    return not (unrecorded and request.method in SAFE_METHODS)


def may(permission: str | None) -> bool:
    """Whether the current user's role holds ``permission`` (None: every signed-in user)."""
    user = g.get("user")
    return user is not None and (permission is None or user.role in PERMISSIONS[permission])


def render(template: str, status: int = 200, **context):
    """A page, with what the layout needs: the user, their menu, the CSRF token its forms carry."""
    token = sessions.expected_csrf()
    if token is None:
        token, cookie = sessions.form_token()
        remember_session(cookie)
    menu = [(endpoint, label) for endpoint, label, permission in NAVIGATION
            if may(permission) and endpoint in current_app.view_functions]
    body = render_template(f"console/{template}", user=g.get("user"), menu=menu, csrf_token=token,
                           tile_url=current_app.config["REGISTRY_TILE_URL"], **context)
    return current_app.response_class(body, status=status, mimetype="text/html")


def refuse_with(template: str, **context) -> None:
    """If this request is refused (raised by the door's checks or a service), show ``template`` with the
    refusal as ``error`` instead of the error page: a form shown again with what went wrong."""
    g.refusal_page = (template, context)


def refusal(error: ApiError):
    if isinstance(error, ServiceUnavailable):
        return unavailable(error)
    if isinstance(error, Unauthorized) and request.method in SAFE_METHODS:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("console.login", next=_local(target)))
    template, context = g.pop("refusal_page", ("error.html", {}))
    response = render(template, status=error.status, error=error, **context)
    if "Retry-After" in error.headers:
        response.headers["Retry-After"] = error.headers["Retry-After"]
    return response


def unavailable(error: ServiceUnavailable):
    """The error page while the database is away: drawn without it (no user, menu or session: they live there)."""
    body = render_template("console/error.html", user=None, menu=[], csrf_token="", tile_url="", error=error)
    response = current_app.response_class(body, status=error.status, mimetype="text/html")
    response.headers.update(error.headers)
    return response


def unexpected(exc: BaseException):
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s on a console page\n%s", type(exc).__name__, frames)
    error = ApiError("Something went wrong on our side; it has been logged. Try again, or go back.")
    return render("error.html", status=500, error=error)


def _local(target: str | None) -> str | None:
    """``target`` if it is a path of this console (a sign-in's ``next`` never leads elsewhere)."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/console/") else None


def next_page(target: str | None = None) -> str:
    """Where to go after signing in: ``target`` (else ``?next=``) if it is a console page, else home."""
    return _local(target if target is not None else request.args.get("next")) or url_for("console.home")


def remember_session(raw: str | None) -> None:
    """Set this value as the session cookie on the response (sign-in, the sign-in form's first visit)."""
    g.set_session_cookie = raw


def forget_session() -> None:
    g.set_session_cookie = ""


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


@bp.after_app_request
def _headers(response):
    if not request.path.startswith("/console/") and request.path != "/":
        return response
    raw = g.pop("set_session_cookie", None)
    if raw is not None:
        secure = current_app.config["REGISTRY_COOKIE_SECURE"]
        if raw:
            response.set_cookie(sessions.COOKIE, raw, httponly=True, samesite="Lax", secure=secure, path="/")
        else:
            response.delete_cookie(sessions.COOKIE, httponly=True, samesite="Lax", secure=secure, path="/")
    tiles = current_app.config["REGISTRY_TILE_URL"]
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(tiles)) if tiles else ""
    response.headers["Content-Security-Policy"] = CSP.format(tiles=f" {origin}" if origin else "")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint not in UNGUARDED:
        response.headers.setdefault("Cache-Control", "no-store")  # pages carry personal data
    if current_app.config["REGISTRY_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


@bp.get("/vendor/leaflet/<path:name>")
def vendor(name: str):
    """Leaflet, as the ``xstatic-leaflet`` package installed it (never a CDN)."""
    return send_from_directory(leaflet.BASE_DIR, name, max_age=86400)


def requires_page(permission: str):
    """A page for the roles holding ``permission`` (the API's table); others get a 403 page."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not may(permission):
                raise Forbidden("Your role may not open this page.")
            return view(*args, **kwargs)

        wrapper.permission = permission
        return wrapper

    return decorate
