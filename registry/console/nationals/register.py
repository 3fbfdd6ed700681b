"""``/console/nationals/new``: register a national (SPEC §9), with possible duplicates shown before saving.

The first submit checks what registering would meet (``services.check_registration``: the refusals of the
API's create, then likely duplicates); with none it saves and redirects to the record (303). With some, the
form comes back with them listed and a "Register anyway" button that saves if it confirms every duplicate
still found (a change that finds another one shows it again).
"""
from __future__ import annotations

from flask import g, redirect, request, url_for

from registry.audit import services as audit
from registry.console import bp
from registry.console.nationals import forms
from registry.console.pages import refuse_with, render, requires_page
from registry.nationals import schemas, services

TEMPLATE = "nationals_new.html"


@bp.get("/nationals/new", endpoint="register")
@requires_page("nationals:write")
def register():
    form = forms.Registration.blank(request.args, g.user)
    return render(TEMPLATE, **form.context())


@bp.post("/nationals/new", endpoint="create_national")
@requires_page("nationals:write")
def create_national():
    form = forms.Registration(request.form, g.user)
    refuse_with(TEMPLATE, **form.context())  # a refusal (422, 409, 403, 429) shows the form again, beside its field
    data = schemas.NationalCreate().load(form.body())
    duplicates = services.check_registration(data, g.user)
    if duplicates and not {d["id"] for d in duplicates} <= form.confirmed():
        found = services.visible_by_ids([d["id"] for d in duplicates], g.user)
        audit.note(object_type="national", object_ids=[n.id for n in found], result_count=len(found),
                   details={"duplicate_check": True})
        reasons = {d["id"]: d["reasons"] for d in duplicates}
        shown = [(services.as_seen_by(n, g.user.role, documents=False), reasons[n.id]) for n in found]
        return render(TEMPLATE, duplicates=shown, **form.context())
    national, _, _ = services.create_national(data, g.user)
    audit.note(object_type="national", object_ids=[national.id])
    return redirect(url_for("console.national", national_id=national.id), code=303)
