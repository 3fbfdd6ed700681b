"""The public pages of SPEC §10: ``/checkin/{token}`` (a person's own check-in) and
``/checkin/register/{crisis_id}`` (self-registration while a crisis allows it).

Server-rendered, small (under 50 KB with their style sheet and script), in the person's language, usable
without JavaScript (the script only reads the phone's location). No session and no cookie: the forms carry
a signed field bound to the link or the crisis (``forms.form_token``). Every call passes the one door
(``registry.boundary`` through ``registry.web.public``) with the service's own scope, is rate-limited per
address, and is refused as a page (never JSON) that shows the hotline. Logs and the audit trail name the
route and the person, never the token (``registry.checkin.logs`` keeps it out of access logs).
"""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app, g, render_template, request

from registry import ratelimit
from registry.audit import services as audit
from registry.auth import scope
from registry.checkin import forms, services
from registry.errors import ApiError, TooManyRequests, Unprocessable
from registry.web.public import door

bp = Blueprint("checkin", __name__, url_prefix="/checkin", template_folder="templates", static_folder="static",
               static_url_path="/static")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
REFUSALS = {404: "not_found", 410: "expired", 423: "locked", 429: "busy"}


def _enter(view) -> bool:
    """Nobody signs in here: the token (or the crisis's switch) is the way in. The service's scope, a limit
    per address; the call is recorded (it reads or writes a person's data), but the registration page's
    reads (no personal data)."""
    g.user = None
    scope.use_everything()
    wait = ratelimit.hit(f"checkin:{request.remote_addr}", current_app.config["REGISTRY_CHECKIN_REQUESTS_PER_MINUTE"])
    if wait:
        raise TooManyRequests("Too many requests from this address; wait and retry.", retry_after_s=wait)
    return not (view.__name__ == "register" and request.method == "GET")


def _refuse(error: ApiError):
    lang = forms.language_for()
    key = REFUSALS.get(error.status, "error")
    response = _page("checkin/refusal.html", lang, status=error.status, key=key)
    if "Retry-After" in error.headers:
        response.headers["Retry-After"] = error.headers["Retry-After"]
    return response


def _page(template: str, lang: str, status: int = 200, **context):
    body = render_template(template, lang=lang, dir=forms.direction(lang), t=forms.words(lang),
                           languages=forms.NAMES, hotline=current_app.config["REGISTRY_HOTLINE"], **context)
    return current_app.response_class(body, status=status, mimetype="text/html")


@bp.after_app_request
def _headers(response):
    if request.blueprint == "checkin":
        headers = response.headers
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        if request.endpoint != "checkin.static":
            headers["Content-Security-Policy"] = CSP
            headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------- check-in

@bp.route("/<token>", methods=["GET", "POST"])
@door(_enter, _refuse)
def checkin(token: str):
    """A person's check-in page: the crisis name and their given name; the date of birth, then the answer."""
    link, crisis, national = services.open_link(token)
    audit.note(object_type="national", object_ids=[national.id], details={"crisis_id": str(crisis.id)})
    lang = forms.language_for(national.languages)
    state = services.state_of(link, crisis)
    if state != services.OPEN:
        return _closed(lang, state)
    purpose = link.token_index.hex()
    context = {"crisis_name": crisis.name, "given_name": national.given_names, "action": request.path}
    if request.method == "GET":
        return _page("checkin/checkin.html", lang, form={}, errors={}, form_token=forms.form_token(purpose),
                     **context)
    services.lock_for_answer(link)
    if services.state_of(link, crisis) != services.OPEN:  # locked meanwhile by another try
        return _closed(lang, services.state_of(link, crisis))
    born, answer, errors = forms.parse_checkin(request.form)
    again = {"form": request.form, "form_token": forms.form_token(purpose), **context}
    if not forms.same_origin() or not forms.form_token_valid(request.form.get("form_token"), purpose):
        return _page("checkin/checkin.html", lang, status=400, errors={"_form": "err_form"}, **again)
    if "date_of_birth" not in errors and born != national.date_of_birth:
        left = services.failed_attempt(link)
        audit.note(details={"crisis_id": str(crisis.id), "checkin": "wrong_birth_date", "tries_left": left})
        if left == 0:
            return _closed(lang, services.LOCKED)
        return _page("checkin/checkin.html", lang, status=403, errors={"date_of_birth": "err_wrong_birth"},
                     left=left, **again)
    if errors:
        return _page("checkin/checkin.html", lang, status=422, errors=errors, **again)
    stored = services.check_in(link, national, answer)
    audit.note(details={"crisis_id": str(crisis.id), "checkin": stored.status,
                        "located": stored.location is not None})
    return _page("checkin/thanks.html", lang, status=200, given_name=national.given_names, crisis_name=crisis.name)


def _closed(lang: str, state: str):
    status, key = (423, "locked") if state == services.LOCKED else (410, "expired")
    return _page("checkin/refusal.html", lang, status=status, key=key)


# ---------------------------------------------------------------------- self-registration

@bp.route("/register/<uuid:crisis_id>", methods=["GET", "POST"])
@door(_enter, _refuse)
def register(crisis_id: uuid.UUID):
    """Self-registration while the crisis is active and its coordinator allowed it (404 otherwise)."""
    crisis = services.registration_crisis(crisis_id)
    lang = forms.language_for()
    purpose = f"register:{crisis.id}"
    context = {"crisis_name": crisis.name, "action": request.path, "form_token": forms.form_token(purpose),
               "sexes": ("F", "M", "X")}
    if request.method == "GET":
        return _page("checkin/register.html", lang, form={}, errors={}, **context)
    data, errors = forms.parse_registration(request.form)
    if not forms.same_origin() or not forms.form_token_valid(request.form.get("form_token"), purpose):
        errors = {"_form": "err_form", **errors}
    if errors:
        return _page("checkin/register.html", lang, status=422 if "_form" not in errors else 400, form=request.form,
                     errors=errors, **context)
    _count_registration(crisis.id)
    try:
        national, holder = services.self_register(crisis, data)
    except Unprocessable as refused:  # the point is at sea
        field = next(iter(refused.errors or {"lat": None}))
        return _page("checkin/register.html", lang, status=422, form=request.form, errors={field: "err_sea"},
                     **context)
    audit.note(object_type="national", object_ids=[national.id],
               details={"crisis_id": str(crisis.id), "self_registration": True,
                        "passport_already_registered": holder is not None})
    return _page("checkin/registered.html", lang, crisis_name=crisis.name)


def _count_registration(crisis_id: uuid.UUID) -> None:
    """At most REGISTRY_SELF_REGISTRATIONS_PER_HOUR from one address, REGISTRY_SELF_REGISTRATIONS_PER_CRISIS_HOUR
    into one crisis. :raises TooManyRequests:"""
    config = current_app.config
    for bucket, limit in ((f"self-registration:{request.remote_addr}", config["REGISTRY_SELF_REGISTRATIONS_PER_HOUR"]),
                          (f"self-registration-crisis:{crisis_id}",
                           config["REGISTRY_SELF_REGISTRATIONS_PER_CRISIS_HOUR"])):
        wait = ratelimit.hit(bucket, limit, window_s=3600)
        if wait:
            raise TooManyRequests("Too many registrations; wait and retry.", retry_after_s=wait)
