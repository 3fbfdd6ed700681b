"""Administering users: create, change role and jurisdiction, disable and enable, invitations, passwords,
tokens. The command line (``registry users …``) and the console's users page both call these, so a change
is checked and audited the same way whoever makes it: each records one ``users.<verb>`` event naming the
administrator (``by``) and the user, never a password, a token or an invitation link.

These live beside ``registry.auth`` rather than in it because they record audit events, and the audit
package already stands on ``registry.auth`` (its views use the door's role check).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, update

from registry.audit import services as audit
from registry.auth import services as auth
from registry.auth import sessions
from registry.auth.models import ApiToken, ConsoleSession, Invitation, User
from registry.errors import Conflict, Unprocessable
from registry.extensions import db


@dataclass(frozen=True)
class UserRow:
    """A user as the users page lists them."""

    user: User
    live_tokens: int
    last_sign_in: datetime | None


def create(name: str, role: str, jurisdiction: list[str] | None = None, username: str | None = None, *,
           by) -> User:
    """A new user (``auth.create_user``'s checks). :raises Unprocessable: beside each field."""
    user = auth.create_user(name, role, jurisdiction, username)
    audit.record("users.create", actor=by, object_type="user", object_ids=[user.id],
                 details={"role": user.role, "jurisdiction": list(user.jurisdiction)})
    return user


def change(user: User, *, role: str, jurisdiction: list[str] | None, by) -> list[str]:
    """Give ``user`` another role and/or jurisdiction; effective from their next request (sessions and
    tokens read the user's role each time). Which fields changed.

    :raises Unprocessable: unknown role, bad or missing jurisdiction, an administrator changing their own
        role (another administrator must).
    """
    codes = auth.check_role_and_jurisdiction(role, jurisdiction)
    changed = [name for name, value in (("role", role), ("jurisdiction", codes))
               if getattr(user, name) != value]
    if "role" in changed and by is not None and by.id == user.id:
        raise Unprocessable("You may not change your own role: ask another administrator.",
                            errors={"role": ["Your own role is changed by another administrator."]})
    if changed:
        before = {"role": user.role, "jurisdiction": list(user.jurisdiction)}
        user.role, user.jurisdiction = role, codes
        db.session.flush()
        audit.record("users.change", actor=by, object_type="user", object_ids=[user.id],
                     details={"fields": changed, "before": before,
                              "after": {"role": role, "jurisdiction": codes}})
    return changed


def disable(user: User, *, by) -> int:
    """Disable ``user``: every token revoked and every console session ended at once; how many tokens.

    :raises Conflict: an administrator disabling themselves.
    """
    if by is not None and by.id == user.id:
        raise Conflict("You may not disable yourself: ask another administrator.")
    revoked = auth.disable_user(user)
    audit.record("users.disable", actor=by, object_type="user", object_ids=[user.id], result_count=revoked)
    return revoked


def enable(user: User, *, by) -> None:
    """Let a disabled user in again (with their password; their revoked tokens stay revoked)."""
    if not user.active:
        user.active = True
        db.session.flush()
        audit.record("users.enable", actor=by, object_type="user", object_ids=[user.id])


def invite(user: User, *, by) -> str:
    """A one-time link (its token) for ``user`` to set their console password: a new user's first, or a
    reset. The user's older unused links stop working; their current password works until this one is
    accepted, which ends all their sessions.

    :raises Conflict: the user is disabled.
    """
    if not user.active:
        raise Conflict("The user is disabled: enable them first.")
    superseded = db.session.execute(
        update(Invitation).where(Invitation.user_id == user.id, Invitation.used_at.is_(None),
                                 Invitation.expires_at > func.now())
        .values(expires_at=func.now())).rowcount
    raw = sessions.invite(user, by)
    audit.record("users.invite", actor=by, object_type="user", object_ids=[user.id],
                 details={"superseded": superseded, "password_set": user.password_hash is not None})
    return raw


def set_password(user: User, password: str, *, by) -> None:
    """Set ``user``'s password; their sessions end. :raises Unprocessable:"""
    sessions.set_password(user, password)
    audit.record("users.set_password", actor=by, object_type="user", object_ids=[user.id])


def issue_token(user: User, ttl_days: int | None = None, *, revoke: bool = False, by) -> tuple[str, int]:
    """A new API token for ``user`` (first revoking their live ones if ``revoke``); (token, how many revoked).

    :raises Conflict: the user is disabled.
    """
    if not user.active:
        raise Conflict("The user is disabled.")
    revoked = auth.revoke_tokens(user) if revoke else 0
    token = auth.issue_token(user, ttl_days)
    audit.record("users.rotate" if revoke else "users.token", actor=by, object_type="user",
                 object_ids=[user.id], result_count=revoked)
    return token, revoked


def listing() -> list[UserRow]:
    """Every user by name, with their live tokens and last console sign-in (known while their sessions are
    kept). The caller records the read (a page's request event, a command's ``users.list``)."""
    live = (select(func.count()).where(ApiToken.user_id == User.id, ApiToken.revoked_at.is_(None),
                                      ApiToken.expires_at > func.now()).scalar_subquery())
    last = select(func.max(ConsoleSession.created_at)).where(ConsoleSession.user_id == User.id).scalar_subquery()
    rows = [UserRow(user, tokens, signed_in) for user, tokens, signed_in
            in db.session.execute(select(User, live, last).order_by(func.lower(User.name), User.created_at))]
    return rows


def invitation_hours() -> int:
    return current_app.config["REGISTRY_INVITATION_HOURS"]


def get(user_id: uuid.UUID) -> User:
    """:raises NotFound:"""
    return auth.find_user(str(user_id))

