"""Shared by the console's tests: users with passwords, and signing in through the real form."""
from __future__ import annotations

import re
import uuid

PASSWORD = "a long enough pass phrase"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def make_console_user(db, role: str = "desk", jurisdiction=(), password: str = PASSWORD):
    """A user with a console password; (the user, their username)."""
    from registry.auth import sessions
    from registry.auth.services import create_user
    user = create_user(f"{role.title()} {uuid.uuid4().hex[:6]}", role, list(jurisdiction))
    sessions.set_password(user, password)
    db.session.commit()
    return user, user.username


def sign_in(client, username: str, password: str = PASSWORD, **environ):
    """Sign in through the form as a browser would; the response to the form's post."""
    page = client.get("/console/login", environ_base=environ)
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf_token": csrf_of(page.get_data(as_text=True))},
                       environ_base=environ)
