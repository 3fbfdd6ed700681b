"""``/console/inbox``: the SMS replies a person has to read (SPEC §10), newest first.

Each reply shows its sender, its text, whom it matched (links to their records) and what the hook did; the
officer marks it handled, or assigns it to a person exposed in a crisis (recorded through
``registry.replies.services.update``, as ``PATCH /api/v1/inbox/{id}`` does: source ``sms``, a contact attempt,
by the officer). Plain forms: every control is reached with Tab and used with Enter or Space; ``j``/``k``
move between replies and ``h`` marks the current one handled (``static/inbox.js``). Embassy officers see the
replies of their jurisdiction's people; replies from numbers that matched nobody are for coordinators and
admins (the service's reach rule).
"""
from __future__ import annotations

import uuid

from flask import g, redirect, request, url_for

from registry.audit import services as audit
from registry.console import bp
from registry.console.pages import render, requires_page
from registry.errors import ApiError, NotFound, Unprocessable
from registry.extensions import db
from registry.replies import services as replies
from registry.replies.keywords import STATUSES

PAGE_ROWS = 50
PURPOSE = "SMS inbox"
OUTCOME_LABELS = {"applied": "Status recorded", "needs_review": "Needs reading", "unknown_number": "Unknown number",
                  "opted_out": "Opted out (STOP)", "opted_in": "Opted in again (START)"}
REASON_LABELS = {"shared_number": "several exposed people share this number: none was marked",
                 "several_crises": "the person is exposed in several active crises: none was marked",
                 "not_exposed": "the number's holder is exposed in no active crisis",
                 "free_text": "no keyword: kept as a note and a contact attempt, the status unchanged",
                 "note": "the status was recorded; read the note that came with it"}
STATUS_LABELS = {"safe": "Safe", "needs_assistance": "Needs assistance", "needs_evacuation": "Needs evacuation"}


@bp.get("/inbox")
@requires_page("inbox:read")
def inbox():
    return render("inbox.html", **_page())


@bp.post("/inbox/<uuid:reply_id>/handled")
@requires_page("inbox:write")
def inbox_handled(reply_id: uuid.UUID):
    audit.note(object_type="sms_reply", object_ids=[reply_id], purpose=PURPOSE)
    replies.update(reply_id, {"handled": request.form.get("handled", "1") != "0"}, g.user)
    return redirect(url_for("console.inbox", done="handled", **_kept()), code=303)


@bp.post("/inbox/<uuid:reply_id>/assign")
@requires_page("inbox:write")
def inbox_assign(reply_id: uuid.UUID):
    form = {name: request.form.get(name, "").strip() for name in ("national_id", "crisis_id", "welfare_status")}
    try:
        data = _assignment(form)
        audit.note(object_type="sms_reply", object_ids=[reply_id, data["national_id"]], purpose=PURPOSE)
        replies.update(reply_id, data, g.user)
    except ApiError as refused:
        if isinstance(refused, NotFound) and "reply" in refused.detail.lower():
            raise
        db.session.rollback()  # nothing of the refused assignment stays; the page says why beside the reply
        return render("inbox.html", status=refused.status, **_page(failed=(reply_id, refused, form)))
    return redirect(url_for("console.inbox", done="assigned", **_kept()), code=303)


def _kept() -> dict:
    return {"show": "all"} if request.args.get("show") == "all" else {}


def _uuid(value: str, field: str, errors: dict):
    try:
        return uuid.UUID(value)
    except ValueError:
        errors[field] = ["Choose the person." if field == "national_id" else "Choose the crisis."] if not value \
            else ["Not a record's ID (copy it from the national's page)."]
        return None


def _assignment(form: dict) -> dict:
    """:raises Unprocessable: a field missing or malformed (named)."""
    errors: dict = {}
    data = {"national_id": _uuid(form["national_id"], "national_id", errors),
            "crisis_id": _uuid(form["crisis_id"], "crisis_id", errors)}
    if form["welfare_status"]:
        if form["welfare_status"] not in STATUSES:
            errors["welfare_status"] = ["Choose one of the options."]
        data["welfare_status"] = form["welfare_status"]
    if errors:
        raise Unprocessable("The reply was not assigned: see the fields marked.", errors=errors)
    return data


def _page(failed=None) -> dict:
    show_all = request.args.get("show") == "all"
    page = replies.inbox(g.user, handled=None if show_all else False, limit=PAGE_ROWS,
                         cursor=request.args.get("cursor") or None)
    items = page["items"]
    names = replies.crisis_names(c for item in items for c in [*item["crisis_ids"], item["crisis_id"]] if c)
    active = replies.active_crises()
    names.update({crisis_id: (name, "active") for crisis_id, name in active})
    audit.note(object_type="sms_reply", object_ids=[item["id"] for item in items], result_count=page["total"],
               purpose=PURPOSE)
    return {"page": page, "items": items, "crisis_names": names, "active": active,
            "counts": replies.counts(g.user), "show_all": show_all, "failed": failed,
            "outcome_labels": OUTCOME_LABELS, "reason_labels": REASON_LABELS, "status_labels": STATUS_LABELS,
            "statuses": STATUSES, "done": request.args.get("done") if request.args.get("done") in (
                "handled", "assigned") else None}
