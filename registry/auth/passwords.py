"""Console passwords: Argon2id hashes (argon2-cffi), never the password itself."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from registry.errors import Unprocessable

MIN_LENGTH = 12
MAX_LENGTH = 256
_HASHER = PasswordHasher()  # Argon2id, the library's recommended cost (RFC 9106 second choice)
# Verified against when the username is unknown, so that a wrong username costs the same as a wrong password.
_DUMMY = _HASHER.hash("no user has this password")


def check_new(password: str) -> None:
    """:raises Unprocessable: too short, too long, or blank."""
    if not isinstance(password, str) or not password.strip():
        raise Unprocessable("Give a password.", errors={"password": ["Missing."]})
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise Unprocessable(f"A password has {MIN_LENGTH} to {MAX_LENGTH} characters.",
                            errors={"password": [f"{MIN_LENGTH} to {MAX_LENGTH} characters."]})


def hash_password(password: str) -> str:
    check_new(password)
    return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no password set; the same work is done anyway)."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
