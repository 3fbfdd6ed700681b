"""Console sessions: signing in and out, the session behind a browser's cookie, invitations.

A session is a random 256-bit id in an ``HttpOnly``, ``SameSite=Lax`` cookie
(``Secure`` in production); the database keeps only its SHA-256, its CSRF
token, and when it expires: after ``REGISTRY_SESSION_IDLE_MINUTES`` without a
request, or ``REGISTRY_SESSION_MAX_HOURS`` after sign-in. Before sign-in the
cookie holds a random value that is stored nowhere (the sign-in form's CSRF
token is derived from it, ``form_token``); signing in makes a new session
with a new id, so the id changes at sign-in. Failed sign-ins are counted
per username and per address (``REGISTRY_SIGN_IN_FAILURES`` in
``REGISTRY_SIGN_IN_WINDOW_MINUTES``); beyond, sign-in waits. Sign-in, its
failures and sign-out are audited. Disabling a user ends their sessions.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app, g, request
from sqlalchemy import delete, func, select, update

from registry import ratelimit
from registry.auth import passwords, scope
from registry.auth.models import ConsoleSession, Invitation, User
from registry.auth.services import Principal, end_sessions
from registry.errors import NotFound, TooManyRequests, Unauthorized, Unprocessable
from registry.extensions import db

COOKIE = "sagip_session"
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Session:
    """The signed-in session of the current request: its CSRF token and its user."""

    id_hash: bytes
    csrf_token: str
    user: Principal


class SignInFailed(Unauthorized):
    """A wrong username or password; ``user_id``: the user the username named, if any (what the trail keeps:
    the text typed is not kept, as it may be a password typed in the wrong field)."""

    def __init__(self, detail: str, *, user_id):
        super().__init__(detail)
        self.user_id = user_id


def _digest(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def _new(user_id) -> tuple[str, ConsoleSession]:
    """(the cookie's value, the stored session)."""
    raw = secrets.token_urlsafe(32)
    config = current_app.config
    stored = ConsoleSession(id_hash=_digest(raw), user_id=user_id, csrf_token=secrets.token_urlsafe(32),
                            expires_at=datetime.now(timezone.utc) + timedelta(hours=config["REGISTRY_SESSION_MAX_HOURS"]))
    db.session.add(stored)
    db.session.flush()
    return raw, stored


def load(raw: str | None) -> Session | None:
    """The live session behind a cookie's value, its user's database scope set; None when there is none."""
    if not raw or len(raw) > 100:
        return None
    idle = timedelta(minutes=current_app.config["REGISTRY_SESSION_IDLE_MINUTES"])
    now = datetime.now(timezone.utc)
    found = db.session.execute(
        select(ConsoleSession, User).join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.id_hash == _digest(raw), ConsoleSession.revoked_at.is_(None),
               ConsoleSession.expires_at > now, ConsoleSession.last_seen_at > now - idle)).first()
    if found is None:
        return None
    stored, user = found
    if user is None or not user.active:
        return None
    if now - stored.last_seen_at > TOUCH_EVERY:
        stored.last_seen_at = now
    principal = _principal(user)
    scope.use(scope.scope_for(principal))
    return Session(stored.id_hash, stored.csrf_token, principal)


def current() -> Session | None:
    """The current request's session (loaded once)."""
    if "console_session" not in g:
        g.console_session = load(request.cookies.get(COOKIE))
    return g.console_session


def form_token() -> tuple[str, str | None]:
    """The CSRF token of a page shown before sign-in (the sign-in and invitation forms); (token, cookie to
    set, or None). Nothing is stored: the cookie holds a random value, and the token is its HMAC under the
    service's token key, so a flood of visits to the sign-in page adds no rows."""
    raw = request.cookies.get(COOKIE, "")
    cookie = None
    if not 20 <= len(raw) <= 100:
        raw = cookie = secrets.token_urlsafe(32)
    return _form_token(raw), cookie


def _form_token(raw: str) -> str:
    return hmac.new(current_app.config["REGISTRY_TOKEN_KEY"], b"sign-in-form:" + raw.encode(),
                    hashlib.sha256).hexdigest()


def expected_csrf() -> str | None:
    """The CSRF token a form or script of this browser must send: its session's, or before sign-in the
    one derived from its cookie; None without a cookie."""
    found = current()
    if found is not None:
        return found.csrf_token
    raw = request.cookies.get(COOKIE, "")
    return _form_token(raw) if 20 <= len(raw) <= 100 else None


def _failures(username: str) -> tuple[str, str]:
    address = request.remote_addr or "unknown"
    return f"sign-in:user:{username}", f"sign-in:address:{address}"


def sign_in(username: str, password: str) -> tuple[Principal, str]:
    """Check the credentials; (the user, the new session's cookie value). The current session ends.
    The caller's request is audited as every call (the view renders refusals itself, so that failures are
    recorded one by one: they are few, being rate-limited).

    :raises TooManyRequests: too many failures for this username or address lately.
    :raises SignInFailed: wrong username or password (which one is not said).
    """
    config = current_app.config
    username = (username or "").strip().lower()[:64]
    window_s = config["REGISTRY_SIGN_IN_WINDOW_MINUTES"] * 60
    buckets = _failures(username)
    if any(ratelimit.count(bucket, window_s) >= config["REGISTRY_SIGN_IN_FAILURES"] for bucket in buckets):
        raise TooManyRequests("Too many failed sign-ins; wait and try again.", retry_after_s=ratelimit.wait_s(window_s))
    user = db.session.scalar(select(User).where(User.username == username, User.active.is_(True))) \
        if username else None
    if not passwords.verify(user.password_hash if user else None, password or ""):
        for bucket in buckets:
            ratelimit.hit(bucket, 1 << 30, window_s)
        raise SignInFailed("The username or the password is wrong.", user_id=user.id if user else None)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    previous = current()
    if previous is not None:
        _revoke(previous.id_hash)
    raw, _ = _new(user.id)
    principal = _principal(user)
    g.user = principal  # the sign-in's own audit event names who signed in
    return principal, raw


def sign_out() -> None:
    """End the current session (its audit event is the request's own)."""
    found = current()
    if found is not None:
        _revoke(found.id_hash)


def _revoke(id_hash: bytes) -> None:
    db.session.execute(update(ConsoleSession).where(ConsoleSession.id_hash == id_hash)
                       .values(revoked_at=func.now()))


def _principal(user: User) -> Principal:
    return Principal(user.id, user.name, user.role, tuple(user.jurisdiction))


def set_password(user: User, password: str) -> None:
    """A new password; the user's sessions end (everywhere they were signed in). :raises Unprocessable:"""
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = func.now()
    end_sessions(user.id)
    db.session.flush()


def invite(user: User, by=None) -> str:
    """A one-time token to set ``user``'s password, valid REGISTRY_INVITATION_HOURS."""
    raw = secrets.token_urlsafe(32)
    hours = current_app.config["REGISTRY_INVITATION_HOURS"]
    db.session.add(Invitation(token_hash=_digest(raw), user_id=user.id, created_by=by.id if by else None,
                              expires_at=datetime.now(timezone.utc) + timedelta(hours=hours)))
    db.session.flush()
    return raw


def invitation_url(raw: str) -> str:
    return f"{current_app.config['REGISTRY_PUBLIC_URL']}/console/invitations/{raw}"


def invitation(raw: str) -> tuple[Invitation, User]:
    """The live invitation behind a token. :raises NotFound: unknown, used or expired."""
    found = db.session.execute(select(Invitation, User).join(User, User.id == Invitation.user_id)
                               .where(Invitation.token_hash == _digest(raw or ""), Invitation.used_at.is_(None),
                                      Invitation.expires_at > func.now(), User.active.is_(True))).first()
    if found is None:
        raise NotFound("This invitation is unknown, used or expired; ask an administrator for a new one.")
    return found


def accept(raw: str, password: str, confirmation: str) -> User:
    """Set the password of an invitation's user; the invitation is used. :raises NotFound, Unprocessable:"""
    invited, user = invitation(raw)
    if password != confirmation:
        raise Unprocessable("The two passwords differ.", errors={"confirmation": ["Differs from the password."]})
    set_password(user, password)
    invited.used_at = func.now()
    db.session.flush()
    return user


def purge_ended(grace: timedelta) -> int:
    """Delete the sessions and invitations that ended more than ``grace`` ago; how many rows went."""
    now = datetime.now(timezone.utc)
    idle = timedelta(minutes=current_app.config["REGISTRY_SESSION_IDLE_MINUTES"])
    ended = db.session.execute(delete(ConsoleSession).where(
        (ConsoleSession.expires_at < now - grace) | (ConsoleSession.last_seen_at < now - idle - grace)
        | (ConsoleSession.revoked_at < now - grace))).rowcount
    return ended + db.session.execute(delete(Invitation).where(
        (Invitation.expires_at < now - grace) | (Invitation.used_at < now - grace))).rowcount
