"""Creating users, issuing tokens and recognising them."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pycountry
from flask import current_app
from sqlalchemy import bindparam, func, select, text, update

from registry.auth import scope
from registry.auth.models import ROLES, ApiToken, ConsoleSession, User
from registry.errors import NotFound, Unprocessable
from registry.extensions import db

TOKEN_PREFIX = "sgp_"


def token_hash(token: str) -> bytes:
    return hmac.new(current_app.config["REGISTRY_TOKEN_KEY"], token.encode(), hashlib.sha256).digest()


USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def _username_from(name: str) -> str:
    """A free username derived from a name: ``Maria Santos`` → ``maria.santos`` (then ``maria.santos2``…)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    base = ".".join(re.findall(r"[a-z0-9]+", ascii_name))[:56] or "user"
    if len(base) < 2:
        base = f"user.{base}"
    taken = set(db.session.scalars(select(User.username).where(User.username.like(f"{base}%"))))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}{number}"
    return candidate


def check_username(username: str, exclude: uuid.UUID | None = None) -> str:
    """``username`` lower-cased if it is well formed and free. :raises Unprocessable:"""
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise Unprocessable("The username is not valid.", errors={"username": [
            "2 to 64 characters: letters, digits, dots, dashes or underscores, starting with a letter or digit."]})
    query = select(User.id).where(User.username == username)
    if exclude is not None:
        query = query.where(User.id != exclude)
    if db.session.scalar(query) is not None:
        raise Unprocessable("The username is taken.", errors={"username": ["Already taken."]})
    return username


def _role_and_jurisdiction_errors(role: str, jurisdiction: list[str] | None) -> tuple[list[str], dict]:
    """(the jurisdiction's codes, upper case and sorted; the errors of each field)."""
    errors = {}
    if role not in ROLES:
        errors["role"] = [f"Must be one of: {', '.join(ROLES)}."]
    codes = sorted({code.strip().upper() for code in (jurisdiction or []) if code.strip()})
    unknown = [code for code in codes if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None]
    if unknown:
        errors["jurisdiction"] = [f"Not ISO 3166-1 alpha-2 codes: {', '.join(unknown)}."]
    elif role == "embassy" and not codes:
        errors["jurisdiction"] = ["An embassy officer needs at least one host country."]
    elif role != "embassy" and codes:
        errors["jurisdiction"] = ["Only embassy officers have a jurisdiction."]
    return codes, errors


def check_role_and_jurisdiction(role: str, jurisdiction: list[str] | None) -> list[str]:
    """The jurisdiction's codes (upper case, sorted) if they fit the role. :raises Unprocessable:"""
    codes, errors = _role_and_jurisdiction_errors(role, jurisdiction)
    if errors:
        raise Unprocessable("The user is not valid.", errors=errors)
    return codes


def create_user(name: str, role: str, jurisdiction: list[str] | None = None, username: str | None = None) -> User:
    """Create a user; embassy officers need a jurisdiction of host countries. The console username is
    ``username``, or one derived from the name.

    :raises Unprocessable: unknown role, bad or missing jurisdiction, bad or taken username.
    """
    codes, errors = _role_and_jurisdiction_errors(role, jurisdiction)
    if not name or not name.strip():
        errors["name"] = ["Must not be empty."]
    elif len(name.strip()) > 200:
        errors["name"] = ["At most 200 characters."]
    if username is not None:
        try:
            username = check_username(username)
        except Unprocessable as taken:
            errors.update(taken.errors)
    if errors:
        raise Unprocessable("The user is not valid.", errors=errors)
    user = User(name=name.strip(), role=role, jurisdiction=codes, username=username or _username_from(name))
    db.session.add(user)
    db.session.flush()
    return user


def issue_token(user: User, ttl_days: int | None = None) -> str:
    """Return a new random token (256 bits) for ``user``; only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    days = ttl_days if ttl_days is not None else current_app.config["REGISTRY_TOKEN_TTL_DAYS"]
    db.session.add(ApiToken(user_id=user.id, token_hash=token_hash(token),
                            expires_at=datetime.now(timezone.utc) + timedelta(days=days)))
    db.session.flush()
    return token


@dataclass(frozen=True)
class Principal:
    """Who is calling: what every permission and jurisdiction check needs, and nothing more."""

    id: uuid.UUID
    name: str
    role: str
    jurisdiction: tuple[str, ...]


def _principal_query(with_role: bool):
    """The token lookup. It also sets the transaction's row-level security scope (and database role)
    for the user it finds (registry/auth/scope.py): no extra round trip."""
    columns = [User.id, User.name, User.role, User.jurisdiction,
               func.set_config(scope.SETTING, text(scope.SCOPE_SQL), True).label("scope")]
    if with_role:
        columns.append(func.set_config("role", text(scope.role_sql()), True).label("role"))
    return (select(*columns).join(ApiToken)
            .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
                   ApiToken.expires_at > bindparam("now"), User.active.is_(True)))


# Built once: this lookup runs on every API call.
_PRINCIPAL_BY_TOKEN = {}


def user_for_token(token: str) -> Principal | None:
    """The active user owning an unexpired, unrevoked ``token``, else None.

    Sets the transaction's row-level security scope for that user.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    roles = scope.role_params()
    query = _PRINCIPAL_BY_TOKEN.get(bool(roles))
    if query is None:
        query = _PRINCIPAL_BY_TOKEN[bool(roles)] = _principal_query(bool(roles))
    row = db.session.execute(query, {"token_hash": token_hash(token), "now": datetime.now(timezone.utc),
                                     **roles}).first()
    return Principal(row.id, row.name, row.role, tuple(row.jurisdiction)) if row else None


def find_user(ref: str) -> User:
    """A user by id, username or unique name. :raises NotFound, Unprocessable: none, or several by that name."""
    try:
        user = db.session.get(User, uuid.UUID(ref))
    except ValueError:
        user = db.session.scalar(select(User).where(User.username == ref.strip().lower()))
        matches = [user] if user else db.session.scalars(select(User).where(User.name == ref)).all()
        if len(matches) > 1:
            raise Unprocessable(f"{len(matches)} users have this name; give the id.") from None
        user = matches[0] if matches else None
    if user is None:
        raise NotFound("No such user.")
    return user


def revoke_tokens(user: User) -> int:
    """Revoke every live token of ``user`` at once; how many were live."""
    result = db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                .values(revoked_at=func.now()))
    return result.rowcount


def end_sessions(user_id: uuid.UUID) -> int:
    """End every console session of a user (disabled, new password); how many were live."""
    return db.session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                                            ConsoleSession.revoked_at.is_(None))
                              .values(revoked_at=func.now())).rowcount


def disable_user(user: User) -> int:
    """Disable ``user``: refused from the next request on, every token revoked and every console session
    ended; how many tokens were revoked."""
    user.active = False
    db.session.flush()
    end_sessions(user.id)
    return revoke_tokens(user)


SERVICE_USER = "cli"


def service_user() -> User:
    """The built-in admin user that owns work started from the command line (created on first use)."""
    user = db.session.scalar(select(User).where(User.name == SERVICE_USER, User.role == "admin"))
    if user is None:
        user = User(name=SERVICE_USER, role="admin", jurisdiction=[])
        db.session.add(user)
        db.session.flush()
    return user


def usernames(ids) -> dict[uuid.UUID, str]:
    """The username (else the name) of each user among ``ids`` (the audit page's actor column)."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {row.id: row.username or row.name
            for row in db.session.execute(select(User.id, User.username, User.name).where(User.id.in_(ids)))}
