"""``/console/audit``: the audit trail with filters, and whether its hash chain verifies (SPEC §9, §6b).
Auditors and administrators.

The rows come from ``audit.services.list_events`` (the API's ``GET /api/v1/audit``, with the same filters
and a few more), newest first, a page at a time. The filters are POSTed, not put in the URL: the actor is
a username (often made from a person's name) and the purpose is free text that may name someone; the form
carries the page's cursor too, so paging keeps them out of URLs as well. The chain's status is
``audit.services.verify``, the same check as ``registry audit verify``. It reads every sealed entry, so the
page runs it by itself only while the chain is at most ``VERIFY_ON_OPEN`` entries long (about a second and
a half); beyond, it says how long the chain is and offers a button that runs the full check.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone

from flask import request
from sqlalchemy import func, select

from registry.audit import services as audit
from registry.audit.models import AuditEvent
from registry.auth import services as auth
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import NotFound, Unprocessable
from registry.extensions import db

PERMISSION = "audit:read"
PAGE_ROWS = 50
# Sealed entries the page verifies on every visit: ``verify`` checks about 15,000 entries a second on a
# shared 2-core machine (``python bench/audit.py``), so about a second and a half; beyond, on request.
VERIFY_ON_OPEN = 20_000
FILTERS = ("actor", "action", "object_type", "object_id", "purpose", "outcome", "date_from", "date_to")


@bp.get("/audit", endpoint="audit")
@requires_page(PERMISSION)
def audit_page():
    return _page({name: "" for name in FILTERS}, cursor=None, verify_now=False)


@bp.post("/audit")
@requires_page(PERMISSION)
def audit_search():
    filters = {name: request.form.get(name, "").strip() for name in FILTERS}
    return _page(filters, cursor=request.form.get("cursor") or None, verify_now=bool(request.form.get("verify")))


def _page(filters: dict, *, cursor: str | None, verify_now: bool):
    context = {"filters": filters, "actions": audit.actions(), "outcomes": audit.OUTCOME_NAMES, "utc": timezone.utc}
    refuse_with("audit.html", **context, listing=None, chain=None, names={})
    args = _query(filters)
    listing = audit.list_events(**args, limit=PAGE_ROWS, cursor=cursor)
    names = auth.usernames(event.actor_id for event in listing["items"])
    chain = _chain(verify_now)
    audit.note(object_type="audit_event", result_count=listing["total"],
               details={"filters": sorted(name for name, value in filters.items() if value),
                        "verified": chain["verified"]})
    return render("audit.html", **context, listing=listing, names=names, chain=chain)


def _chain(verify_now: bool) -> dict:
    """The chain's status: ``verification`` (None when not run: too long to run on every visit), its length."""
    length = db.session.scalar(select(func.coalesce(func.max(AuditEvent.chain_seq), 0)))  # by its unique index
    run = verify_now or length <= VERIFY_ON_OPEN
    return {"verified": run, "length": length, "verification": audit.verify() if run else None,
            "limit": VERIFY_ON_OPEN}


def _query(filters: dict) -> dict:
    """The filters as ``list_events``'s arguments. :raises Unprocessable: beside each bad filter."""
    errors: dict[str, list[str]] = {}
    args: dict = {}
    if filters["actor"]:
        try:
            args["actor"] = auth.find_user(filters["actor"]).id
        except NotFound:
            errors["actor"] = ["No user has this username or id."]
        except Unprocessable as several:
            errors["actor"] = [several.detail]
    if filters["action"]:
        args["action"] = filters["action"][:80]
    if filters["object_type"]:
        args["object_type"] = filters["object_type"][:40]
    if filters["object_id"]:
        try:
            args["object_id"] = uuid.UUID(filters["object_id"])
        except ValueError:
            errors["object_id"] = ["Not an id (a UUID such as 0f8c…-…)."]
    if filters["purpose"]:
        if len(filters["purpose"]) > 200:
            errors["purpose"] = ["At most 200 characters."]
        args["purpose"] = filters["purpose"]
    if filters["outcome"]:
        if filters["outcome"] not in audit.OUTCOME_NAMES:
            errors["outcome"] = [f"One of: {', '.join(audit.OUTCOME_NAMES)}."]
        args["outcome"] = filters["outcome"]
    for name, bound in (("date_from", "since"), ("date_to", "until")):
        if filters[name]:
            try:
                day = date.fromisoformat(filters[name])
            except ValueError:
                errors[name] = ["A date, YYYY-MM-DD."]
                continue
            if bound == "until":
                day += timedelta(days=1)  # the whole day
            args[bound] = datetime.combine(day, time(), tzinfo=timezone.utc)
    if "since" in args and "until" in args and args["since"] >= args["until"]:
        errors["date_to"] = ["Must not be before the first day."]
    if errors:
        raise Unprocessable("Check the filters.", errors=errors)
    return args
