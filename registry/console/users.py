"""``/console/users``: the users, their roles and jurisdictions; adding one, changing one, disabling and
enabling, and resetting a password by a new one-time invitation link (SPEC §9). Administrators only.

Every change goes through ``registry.users.services``, the same functions as ``registry users …`` on the
command line: the same checks (errors shown beside their field) and the same ``users.<verb>`` audit event,
besides the page's own request event. An invitation link is shown once, in the answer to the form that
made it (never in a URL of the console, never stored: only its hash is kept).
"""
from __future__ import annotations

import re
import uuid

from flask import g, redirect, request, url_for

from registry.audit import services as audit
from registry.auth import sessions
from registry.auth.models import ROLES, User
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import Unprocessable
from registry.users import services

PERMISSION = "users:manage"
_NEW_USER = {"name": "", "role": "desk", "jurisdiction": "", "username": ""}
_CODES = re.compile(r"[\s,;]+")


@bp.get("/users")
@requires_page(PERMISSION)
def users():
    return _list_page(form=_NEW_USER)


@bp.post("/users")
@requires_page(PERMISSION)
def create_user():
    form = {name: request.form.get(name, "").strip() for name in _NEW_USER}
    refuse_with("users.html", **_list_context(form=form))
    user = services.create(form["name"], form["role"], _codes(form["jurisdiction"]), form["username"] or None,
                           by=g.user)
    raw = services.invite(user, by=g.user)
    audit.note(object_type="user", object_ids=[user.id], details={"role": user.role})
    return _list_page(form=_NEW_USER, created=user, invitation=sessions.invitation_url(raw), status=201)


@bp.get("/users/<uuid:user_id>")
@requires_page(PERMISSION)
def user(user_id: uuid.UUID):
    target = services.get(user_id)
    audit.note(object_type="user", object_ids=[target.id])
    return render("users_edit.html", **_edit_context(target, saved=request.args.get("saved")))


@bp.post("/users/<uuid:user_id>")
@requires_page(PERMISSION)
def update_user(user_id: uuid.UUID):
    target = services.get(user_id)
    form = {"role": request.form.get("role", "").strip(), "jurisdiction": request.form.get("jurisdiction", "").strip()}
    refuse_with("users_edit.html", **_edit_context(target, form=form))
    changed = services.change(target, role=form["role"], jurisdiction=_codes(form["jurisdiction"]), by=g.user)
    audit.note(object_type="user", object_ids=[target.id], details={"fields": changed})
    return redirect(url_for("console.user", user_id=target.id, saved="changed" if changed else "unchanged"),
                    code=303)


@bp.post("/users/<uuid:user_id>/disable")
@requires_page(PERMISSION)
def disable_user(user_id: uuid.UUID):
    target = services.get(user_id)
    refuse_with("users_edit.html", **_edit_context(target))
    revoked = services.disable(target, by=g.user)
    audit.note(object_type="user", object_ids=[target.id], result_count=revoked)
    return redirect(url_for("console.user", user_id=target.id, saved="disabled"), code=303)


@bp.post("/users/<uuid:user_id>/enable")
@requires_page(PERMISSION)
def enable_user(user_id: uuid.UUID):
    target = services.get(user_id)
    services.enable(target, by=g.user)
    audit.note(object_type="user", object_ids=[target.id])
    return redirect(url_for("console.user", user_id=target.id, saved="enabled"), code=303)


@bp.post("/users/<uuid:user_id>/invitation")
@requires_page(PERMISSION)
def invite_user(user_id: uuid.UUID):
    target = services.get(user_id)
    refuse_with("users_edit.html", **_edit_context(target))
    raw = services.invite(target, by=g.user)
    audit.note(object_type="user", object_ids=[target.id])
    return render("users_edit.html", status=201,
                  **_edit_context(target, invitation=sessions.invitation_url(raw)))


def _list_page(*, form: dict, status: int = 200, **context):
    rows = services.listing()
    audit.note(object_type="user", result_count=len(rows))
    return render("users.html", status=status, **_list_context(form=form, rows=rows, **context))


def _list_context(*, form: dict, rows=None, **context) -> dict:
    return {"form": form, "roles": ROLES, "rows": rows if rows is not None else services.listing(),
            "hours": services.invitation_hours(), **context}


def _edit_context(target: User, form: dict | None = None, **context) -> dict:
    form = form or {"role": target.role, "jurisdiction": ", ".join(target.jurisdiction)}
    return {"target": target, "form": form, "roles": ROLES, "is_self": target.id == g.user.id,
            "hours": services.invitation_hours(), **context}


def _codes(text: str) -> list[str]:
    """``"AE, qa"`` → ``["AE", "qa"]`` (the service upper-cases and checks them)."""
    codes = [code for code in _CODES.split(text) if code]
    if len(codes) > 300:
        raise Unprocessable("The user is not valid.", errors={"jurisdiction": ["At most 300 countries."]})
    return codes
