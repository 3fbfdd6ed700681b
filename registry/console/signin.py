"""Signing in and out, and accepting an invitation (SPEC §9, "Sign-in").

The sign-in form's inputs are ``username`` and ``password``, with the CSRF token as a hidden field. A wrong
username or password shows the form again (401) and is recorded as an event of its own; failures are few,
being rate-limited per username and per address, and past the limit the form waits (429, counted per
minute by the door like every 429).
"""
from __future__ import annotations

from flask import g, redirect, request, url_for

from registry.audit import services as audit
from registry.auth import sessions
from registry.console import bp
from registry.console.pages import forget_session, next_page, public, refuse_with, remember_session, render
from registry.errors import Unprocessable


@bp.get("/login", endpoint="login")
@public
def login():
    if g.user is not None:
        return redirect(next_page())
    return render("login.html", next=request.args.get("next", ""), username="")


@bp.post("/login", endpoint="sign_in")
@public
def sign_in():
    username = request.form.get("username", "")
    refuse_with("login.html", next=request.form.get("next", ""), username=username[:64])
    try:
        _, raw = sessions.sign_in(username, request.form.get("password", ""))
    except sessions.SignInFailed as wrong:
        audit.note(object_type="user", object_ids=[wrong.user_id] if wrong.user_id else [],
                   details={"known_username": wrong.user_id is not None})
        return render("login.html", status=401, error=wrong, next=request.form.get("next", ""),
                      username=username[:64])
    remember_session(raw)
    return redirect(next_page(request.form.get("next")), code=303)


@bp.post("/logout")
def sign_out():
    sessions.sign_out()
    forget_session()
    return redirect(url_for("console.login", signed_out=1), code=303)


@bp.get("/invitations/<token>")
@public
def invitation(token: str):
    _, user = sessions.invitation(token)
    return render("invitation.html", invited=user, token=token)


@bp.post("/invitations/<token>")
@public
def accept_invitation(token: str):
    _, user = sessions.invitation(token)
    refuse_with("invitation.html", invited=user, token=token)
    password = request.form.get("password", "")
    try:
        sessions.accept(token, password, request.form.get("confirmation", ""))
    except Unprocessable as invalid:
        return render("invitation.html", status=422, error=invalid, invited=user, token=token)
    audit.note(object_type="user", object_ids=[user.id])
    return redirect(url_for("console.login", welcome=1), code=303)

