"""``/console/verification``: the verification queue (SPEC §9, §10).

Each self-registered person beside their likely duplicates, with three decisions: Verify, Merge into… (one
of the duplicates shown, chosen with a radio button) and Reject. Plain forms (no script), each button
reachable by keyboard; the decisions go through ``registry.checkin.verification``, as
``POST /api/v1/verification/{id}`` does, with the same roles, reach and audit.
"""
from __future__ import annotations

import uuid

from flask import g, redirect, request, url_for

from registry.audit import services as audit
from registry.checkin import verification
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import NotFound, Unprocessable

REASONS = {"same_names_and_birth_date": "same names and date of birth", "same_phone": "same phone",
           "same_passport_number": "same passport", "same_national_id_number": "same national ID number"}
DONE = {"verify": "verified", "merge": "merged into the existing record", "reject": "rejected"}


@bp.get("/verification")
@requires_page("verification:review")
def verification_queue():
    page = verification.queue(g.user, limit=50, cursor=request.args.get("cursor") or None)
    audit.note(object_type="national", result_count=page["total"],
               object_ids=[e["national"]["id"] for e in page["items"]]
               + [d["id"] for e in page["items"] for d in e["duplicates"]])
    return render("verification.html", page=page, reasons=REASONS, done=DONE.get(request.args.get("done", "")))


@bp.post("/verification/<uuid:national_id>")
@requires_page("verification:review")
def verification_decide(national_id: uuid.UUID):
    refuse_with("verification.html", page=verification.queue(g.user, limit=50), reasons=REASONS, done=None)
    action = request.form.get("action")
    if action not in verification.ACTIONS:
        raise Unprocessable("Choose Verify, Merge or Reject.", errors={"action": ["Unknown decision."]})
    data = {"action": action}
    if action == "merge":
        data["into"] = _uuid(request.form.get("into"))
    verification.decide(national_id, data, g.user)
    return redirect(url_for("console.verification_queue", done=action), code=303)


def _uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("No such record.") from None
