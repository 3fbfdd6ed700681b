"""``/console/nationals``: find nationals (SPEC §9) by name or passport, filter, page.

Searching by name or passport posts the form (no names or passports in URLs) and runs the API's search
(``services.search_nationals``); a passport search needs a purpose (3–200 characters, recorded in the trail)
and counts toward the user's passport lookups, as in the API. Without a name or passport the form goes to
the plain list (``services.list_nationals``), whose filters and keyset cursor may sit in the URL. Both are
rate-limited like the API's bulk reads; an embassy officer finds their jurisdiction only, and a coordinator
may not filter by a field hidden from them.
"""
from __future__ import annotations

from flask import g, redirect, request, url_for
from marshmallow import ValidationError

from registry.audit import services as audit
from registry.auth import visibility
from registry.auth.access import limited
from registry.auth.reach import Reach
from registry.console import bp
from registry.console.nationals import forms
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import Unprocessable
from registry.nationals import schemas, services

TEMPLATE = "nationals_list.html"
PAGE_SIZE = 50
SEARCH_LABELS = {"q": "Name", "passport_number": "Passport number", "purpose": "Purpose",
                 "host_country": "Host country", "city": "City", "status": "Status", "vulnerability": "Vulnerability"}


def _context(values, **extra) -> dict:
    role = g.user.role
    return {"values": values, "countries": forms.host_countries(g.user), "form_errors": _field_errors,
            "may_filter_vulnerability": forms.may_filter_by_vulnerability(role), "labels": forms,
            "search_labels": SEARCH_LABELS,
            "hidden": visibility.hidden_from(role), "jurisdiction_only": not Reach.of(g.user).is_everywhere,
            **extra}


def _field_errors(error) -> dict[str, list[str]]:
    return forms.flatten(error.errors) if error is not None and error.errors else {}


def _load(schema, values: dict) -> tuple[dict, dict]:
    try:
        return schema.load(values), {}
    except ValidationError as invalid:
        return {}, invalid.messages if isinstance(invalid.messages, dict) else {"_schema": invalid.messages}


def _rows(page: dict) -> dict:
    page["items"] = [services.as_seen_by(n, g.user.role, documents=False) for n in page["items"]]
    return page


def _note_page(page: dict, filters: dict, **fields) -> None:
    audit.note(object_type="national", object_ids=[n.id for n in page["items"]], result_count=page["total"],
               details={"filters": sorted(filters)}, **fields)


@bp.get("/nationals", endpoint="nationals")
@requires_page("nationals:read")
@limited("bulk")
def nationals():
    refuse_with(TEMPLATE, **_context(request.args))
    filters = forms.list_filters(request.args, g.user.role)
    query, invalid = _load(schemas.NationalListQuery(), {**filters, "limit": PAGE_SIZE,
                                                         **({"cursor": request.args["cursor"]}
                                                            if request.args.get("cursor") else {})})
    if invalid:
        raise Unprocessable("One or more filters are invalid.", errors=invalid)
    query.pop("purpose", None)
    page = services.list_nationals(g.user, **query)
    _note_page(page, filters)
    return render(TEMPLATE, **_context(request.args, page=_rows(page), filters=filters, searched=False))


@bp.post("/nationals", endpoint="search_nationals")
@requires_page("nationals:read")
@limited("bulk")
def search_nationals():
    form = request.form
    refuse_with(TEMPLATE, **_context(form))
    filters = forms.list_filters(form, g.user.role)
    q, passport = form.get("q", "").strip(), form.get("passport_number", "").strip()
    if not q and not passport:  # no one named: the plain list, whose filters may be in the URL
        return redirect(url_for("console.nationals", **filters), code=303)
    found = {"q": q or None, "passport_number": passport or None, "limit": PAGE_SIZE}
    for name in ("purpose", "cursor", "host_country"):
        if form.get(name, "").strip():
            found[name] = form[name].strip()
    args, invalid = _load(schemas.SearchIn(), found)
    narrowing, more_invalid = _load(schemas.NationalListQuery(), {k: v for k, v in filters.items()
                                                                  if k != "host_country"})
    invalid.update(more_invalid)
    if passport and not form.get("purpose", "").strip():
        invalid.setdefault("purpose", []).append("Required for a passport search: say why you are looking "
                                                 "(3–200 characters).")
    if invalid:
        raise Unprocessable("One or more fields are invalid.", errors=invalid)
    purpose = args.pop("purpose", None)
    if args.get("passport_number"):
        services.count_passport_lookup(g.user)
    for name in ("limit", "cursor", "purpose"):
        narrowing.pop(name, None)
    page = services.search_nationals(g.user, **args, **narrowing)
    _note_page(page, {k for k, v in {**args, **narrowing}.items() if v is not None and k not in ("limit", "cursor")},
               purpose=purpose)
    return render(TEMPLATE, **_context(form, page=_rows(page), filters=filters, searched=True))
