"""``/api/v1/verification``: the queue of self-registered nationals and the officer's decision (SPEC §10)."""
from __future__ import annotations

import uuid

from flask import g

from registry.audit import services as audit
from registry.auth.access import limited, requires
from registry.checkin import schemas, services, verification
from registry.web.openapi import ApiBlueprint, errors

bp = ApiBlueprint("verification", __name__, url_prefix="/verification",
                  description="The verification queue of self-registrations (SPEC §10)")
links_bp = ApiBlueprint("checkin_links", __name__, url_prefix="/crises",
                        description="Check-in links an officer issues again (SPEC §10)")


@bp.get("")
@requires("verification:review")
@limited()
@bp.arguments(schemas.QueueQuery, location="query")
@bp.response(200, schemas.QueuePage)
def verification_queue(args):
    """Unverified nationals (self-registrations), oldest first, each beside its likely duplicates.

    Duplicates: the same names and date of birth, a shared phone, the same passport (same nationality) or
    national ID number; only records the caller may see. Coordinators and admins see every unverified
    national, an embassy officer those in their jurisdiction (the country the person is in).
    """
    args.pop("purpose", None)
    page = verification.queue(g.user, **args)
    audit.note(object_type="national", result_count=page["total"],
               object_ids=[e["national"]["id"] for e in page["items"]]
               + [d["id"] for e in page["items"] for d in e["duplicates"]])
    return page


@bp.post("/<uuid:national_id>")
@requires("verification:review")
@bp.arguments(schemas.Decision, example={"action": "merge", "into": "5d0f3a52-7c4e-4c1e-9a53-4f6a1c2b9e10"})
@bp.response(200, schemas.DecisionOut)
@errors(404, 409)
def decide(data, national_id: uuid.UUID):
    """Verify (status ``abroad``), merge by hand (``into``: the newer location and missing phones are copied
    to that record, then the self-registration is erased) or reject (erased) an unverified national.

    404 outside the caller's reach; 409 when the national is not waiting for verification, or (verify) its
    passport number is still another record's.
    """
    return verification.decide(national_id, data, g.user)


@links_bp.post("/<uuid:crisis_id>/checkin-links/<uuid:national_id>")
@requires("welfare:write")
@links_bp.response(200, schemas.IssuedLink)
@errors(404, 409)
def issue_link(crisis_id: uuid.UUID, national_id: uuid.UUID):
    """Issue a new check-in link for a person exposed in the crisis (a link locked after five wrong dates of
    birth, a lost message): ``url`` for the officer to send; the old link stops working.

    Embassy officers: their jurisdiction only (404 outside it, or when the person was never exposed in the
    crisis); 409 once the crisis is closed.
    """
    issued = services.issue_new_link(crisis_id, national_id, g.user)
    audit.note(object_type="national", object_ids=[national_id], details={"crisis_id": str(crisis_id),
                                                                          "checkin_link": "issued"})
    return issued
