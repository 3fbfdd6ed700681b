"""``/api/v1/hooks/sms`` (Kannel's sms-service passes each incoming SMS) and ``/api/v1/inbox`` (SPEC §10).

The hook is no user's call: it comes in through ``registry.web.public``'s door with the shared secret
``REGISTRY_SMS_HOOK_SECRET`` (header ``X-Sagip-Hook-Secret``, or a ``secret`` form field or query
parameter), compared in constant time; it acts for the service (every record in scope). It takes the three
forms Kannel sends: a POST of form fields ``from`` and ``text``; ``post-url`` (the text as the body, the
sender in ``X-Kannel-From``); a GET with ``from`` and ``text`` (``get-url``; the access log records the path
only, ``registry/gunicorn_conf.py``). It answers an empty ``text/plain`` 200, so Kannel sends nothing back.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid

from flask import Response, current_app, g, request

from registry import ratelimit
from registry.audit import services as audit
from registry.auth import scope
from registry.auth.access import requires
from registry.errors import Forbidden, TooManyRequests, Unauthorized, Unprocessable
from registry.replies import schemas, services
from registry.web.openapi import ApiBlueprint, errors
from registry.web.public import door

SECRET_HEADER = "X-Sagip-Hook-Secret"
SENDER_HEADER = "X-Kannel-From"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

hooks = ApiBlueprint("replies_hook", __name__, url_prefix="/hooks",
                     description="The SMS gateway's hook (SPEC §10): authenticated by its shared secret")
bp = ApiBlueprint("inbox", __name__, url_prefix="/inbox", description="SMS replies a person has to read (SPEC §10)")


class HookSecretRefused(Forbidden):
    code, title = "hook-secret-refused", "The hook's secret is wrong"


class HookSecretMissing(Unauthorized):
    code, title = "hook-secret-missing", "The hook's secret is missing"

    def __init__(self, detail=None, **kw):
        super().__init__(detail, **kw)
        self.headers.pop("WWW-Authenticate", None)


def _digest(value: str) -> bytes:
    # Fixed-length digests compared: neither the secret's length nor a prefix leaks through timing.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def enter_hook(view) -> bool:
    """The gateway's way in: the shared secret, or 401 (none given) / 403 (wrong); refusals are counted per
    address like any other anonymous refusal, and too many wrong secrets from one address are a 429."""
    g.user = None
    scope.use_everything()
    given = request.headers.get(SECRET_HEADER) or request.args.get("secret")
    if not given and request.method == "POST" and request.mimetype in FORM_TYPES:
        given = request.form.get("secret")
    expected = current_app.config["REGISTRY_SMS_HOOK_SECRET"]
    if given and expected and hmac.compare_digest(_digest(given), _digest(expected)):
        return True
    wait = ratelimit.hit(f"hook-failures:{request.remote_addr}",
                         current_app.config["REGISTRY_AUTH_FAILURES_PER_MINUTE"])
    if wait:
        raise TooManyRequests("Too many refused hook calls from this address; wait and retry.", retry_after_s=wait)
    if not given:
        raise HookSecretMissing(f"Send the hook's secret as the {SECRET_HEADER} header or a 'secret' field.")
    raise HookSecretRefused("The hook's secret is not the one configured (REGISTRY_SMS_HOOK_SECRET).")


def _message() -> tuple[str, str]:
    """(sender, text) from whichever form the gateway used. :raises Unprocessable: one of them missing."""
    form = request.form if request.method == "POST" and request.mimetype in FORM_TYPES else {}
    sender = form.get("from") or request.args.get("from") or request.headers.get(SENDER_HEADER) or ""
    text = form.get("text")
    if text is None:
        text = request.args.get("text")
    if text is None and request.method == "POST" and request.mimetype and request.mimetype not in FORM_TYPES:
        charset = request.mimetype_params.get("charset") or "utf-8"
        raw = request.get_data(cache=True)
        try:
            text = raw.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            text = raw.decode("utf-8", errors="replace")
    missing = {}
    if not sender.strip():
        missing["from"] = ["Missing data for required field."]
    if text is None:
        missing["text"] = ["Missing data for required field."]
    if missing:
        raise Unprocessable("The message needs its sender ('from', or the X-Kannel-From header) and its 'text'.",
                            errors=missing)
    return sender, text


HOOK_PARAMETERS = [
    {"in": "header", "name": SECRET_HEADER, "schema": {"type": "string"},
     "description": "REGISTRY_SMS_HOOK_SECRET (or the `secret` field or query parameter)"},
    {"in": "query", "name": "secret", "schema": {"type": "string"}, "required": False},
]
HOOK_ANSWER = {200: {"description": "stored; an empty body, so that the gateway sends no reply",
                     "content": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}}}}
FORM_BODY = {"type": "object", "required": ["from", "text"], "properties": {
    "from": {"type": "string", "description": "the sender's number (+, 00 or national format)"},
    "text": {"type": "string"}, "secret": {"type": "string"}}}


@hooks.post("/sms")
@door(enter_hook)
@hooks.doc(security=[], parameters=[*HOOK_PARAMETERS, {
    "in": "header", "name": SENDER_HEADER, "schema": {"type": "string"}, "required": False,
    "description": "the sender, with a text/plain body (Kannel's post-url with send-sender)"}],
    requestBody={"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": FORM_BODY},
        "text/plain": {"schema": {"type": "string"}}}},
    responses=HOOK_ANSWER)
@errors(401, 403, 413, 415, 422, 429)
def sms_hook():
    """An incoming SMS from Kannel's sms-service (``post-url``, or a form with ``from`` and ``text``).

    Matched by phone to the people exposed in active crises; a keyword (``1``/``SAFE``/``LIGTAS``,
    ``2``/``HELP``/``TULONG``, ``3``/``EVACUATE``; ``STOP``, ``START``) becomes a welfare status or an
    opt-out; everything else waits in the inbox. Answers an empty text/plain 200.
    """
    return _receive()


@hooks.get("/sms")
@door(enter_hook)
@hooks.doc(security=[], parameters=[*HOOK_PARAMETERS,
                                    {"in": "query", "name": "from", "schema": {"type": "string"}, "required": True},
                                    {"in": "query", "name": "text", "schema": {"type": "string"}, "required": True}],
           responses=HOOK_ANSWER)
@errors(401, 403, 422, 429)
def sms_hook_get():
    """An incoming SMS from Kannel's ``get-url`` (``from`` and ``text`` in the query; never logged)."""
    return _receive()


def _receive():
    sender, text = _message()
    reply = services.receive(sender, text)
    audit.note(object_type="sms_reply", object_ids=[reply.id, *([reply.national_id] if reply.national_id else [])],
               details={"outcome": reply.outcome, "review_reason": reply.review_reason,
                        "welfare_status": reply.welfare_status})
    return Response("", status=200, mimetype="text/plain")


@bp.get("")
@requires("inbox:read")
@bp.arguments(schemas.InboxQuery, location="query")
@bp.response(200, schemas.InboxPage)
def list_inbox(args):
    """SMS replies, newest first; filters ``crisis_id``, ``outcome``, ``handled`` (false: what a person still
    has to read).

    Embassy officers see the replies that matched a national of their jurisdiction; replies from numbers
    that matched nobody are for coordinators and admins only.
    """
    args.pop("purpose", None)
    page = services.inbox(g.user, **args)
    audit.note(object_type="sms_reply", object_ids=[item["id"] for item in page["items"]],
               result_count=page["total"])
    return page


@bp.patch("/<uuid:reply_id>")
@requires("inbox:write")
@bp.arguments(schemas.InboxUpdate, example={"national_id": "8d7f3e0a-2b5c-4a51-9a57-1c4d6f2b9e11",
                                            "crisis_id": "5b0c8a9e-8f1a-4e0b-a2a4-0d6b9e3c7f21"})
@bp.response(200, schemas.InboxItem)
@errors(404, 409)
def update_reply(data, reply_id: uuid.UUID):
    """Mark a reply handled (``{"handled": true}``), or assign it to a person exposed in an active crisis
    (``national_id`` and ``crisis_id``; optional ``welfare_status``): recorded as the hook would have (source
    ``sms``, a contact attempt), by the caller, and marked handled. 404 for a reply or person outside the
    caller's reach; 409 for a closed crisis or a reply already recorded for someone else.
    """
    audit.note(object_type="sms_reply", object_ids=[reply_id, *([data["national_id"]] if "national_id" in data
                                                                else [])])
    reply = services.update(reply_id, data, g.user)
    audit.note(details={"fields": sorted(data), "outcome": reply.outcome})
    return services.item(reply.id, g.user)
