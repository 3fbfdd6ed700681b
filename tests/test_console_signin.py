"""Console sign-in and sessions (SPEC §9): forms, cookies, CSRF, idle timeout, rate limits, invitations,
and the same audit as the API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import clear_rate_limits, make_app, national_body, owner_connection
from tests.console_helpers import PASSWORD, csrf_of, make_console_user, sign_in


def _events(db, action=None):
    from registry.audit.models import AuditEvent
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    db.session.rollback()
    return list(db.session.scalars(query))


def _set_cookie_headers(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_the_sign_in_page_has_the_pinned_form_and_safe_headers(client, db):
    page = client.get("/console/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<label for="username">Username</label>' in html and '<label for="password">Password</label>' in html
    assert 'name="username"' in html and 'name="password"' in html and 'type="password"' in html
    assert ">Sign in</button>" in html
    assert csrf_of(html)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in html and " on" + "click=" not in html  # no inline scripts or handlers
    cookie = _set_cookie_headers(page)[0]
    assert cookie.startswith("sagip_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development
    assert page.headers["Cache-Control"] == "no-store"


def test_root_redirects_to_the_console_and_pages_ask_to_sign_in(client, db):
    assert client.get("/").headers["Location"].endswith("/console/")
    response = client.get("/console/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login?next=/console/"


def test_signing_in_changes_the_session_id_and_is_audited(client, db):
    user, username = make_console_user(db)
    client.get("/console/login")
    before = client.get_cookie("sagip_session").value
    response = sign_in(client, username)
    assert response.status_code == 303 and response.headers["Location"] == "/console/"
    after = client.get_cookie("sagip_session").value
    assert after != before
    home = client.get("/console/")
    assert home.status_code == 200 and user.name in home.get_data(as_text=True)
    events = _events(db, "console.sign_in")
    assert [(e.outcome, e.actor_id) for e in events] == [("ok", user.id)]


def test_a_wrong_password_shows_the_form_again_and_is_recorded(client, db):
    user, username = make_console_user(db)
    response = sign_in(client, username, "not the password at all")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "The username or the password is wrong." in html and f'value="{username}"' in html
    assert client.get("/console/").status_code == 302  # not signed in
    failed = _events(db, "console.sign_in")
    assert [(e.outcome, e.actor_id, e.object_ids) for e in failed] == [("unauthenticated", None, [user.id])]
    assert "not the password" not in str(failed[0].details)


def test_a_form_posted_without_its_csrf_token_is_refused(client, db):
    _, username = make_console_user(db)
    client.get("/console/login")
    response = client.post("/console/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 403 and "was not sent by this console" in response.get_data(as_text=True)
    forged = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert client.get("/console/").status_code == 302
    # Signed in, a form without the session's token is refused too (sign-out here).
    sign_in(client, username)
    assert client.post("/console/logout").status_code == 403
    assert client.get("/console/").status_code == 200


def test_sign_in_is_rate_limited_per_username_and_per_address(app, client, db):
    _, username = make_console_user(db)
    limit = app.config["REGISTRY_SIGN_IN_FAILURES"]
    assert limit >= 10
    for attempt in range(limit):
        assert sign_in(client, username, f"wrong password {attempt}").status_code == 401
    blocked = sign_in(client, username)  # the right password, too late
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)
    # From another address the username is still locked; another user from there is not.
    assert sign_in(client, username, **{"REMOTE_ADDR": "192.0.2.9"}).status_code == 429
    _, other = make_console_user(db)
    assert sign_in(client, other, **{"REMOTE_ADDR": "192.0.2.9"}).status_code == 303
    # Per address: failures over many usernames lock the address.
    clear_rate_limits()
    client.delete_cookie("sagip_session")
    for attempt in range(limit):
        assert sign_in(client, f"nobody{attempt}", "wrong password", REMOTE_ADDR="192.0.2.7").status_code == 401
    assert sign_in(client, username, REMOTE_ADDR="192.0.2.7").status_code == 429
    assert sign_in(client, username, REMOTE_ADDR="192.0.2.8").status_code == 303


def test_sign_out_ends_the_session(client, db):
    _, username = make_console_user(db)
    sign_in(client, username)
    raw = client.get_cookie("sagip_session").value
    home = client.get("/console/")
    response = client.post("/console/logout", data={"csrf_token": csrf_of(home.get_data(as_text=True))})
    assert response.status_code == 303 and "signed_out=1" in response.headers["Location"]
    assert any(c.startswith("sagip_session=;") for c in _set_cookie_headers(response))
    client.set_cookie("sagip_session", raw)  # the old cookie, replayed
    assert client.get("/console/").status_code == 302
    assert [e.outcome for e in _events(db, "console.sign_out")] == ["ok"]


def test_an_idle_session_ends(client, db):
    _, username = make_console_user(db)
    sign_in(client, username)
    assert client.get("/console/").status_code == 200
    with owner_connection() as conn:
        conn.execute("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'")
    assert client.get("/console/").status_code == 302


def test_disabling_a_user_ends_their_sessions(app, client, db):
    user, username = make_console_user(db)
    sign_in(client, username)
    assert client.get("/console/").status_code == 200
    result = app.test_cli_runner().invoke(args=["users", "disable", username])
    assert result.exit_code == 0, result.output
    assert client.get("/console/").status_code == 302
    assert sign_in(client, username).status_code == 401


def test_the_cookie_is_secure_in_production(db):
    secure = make_app(REGISTRY_COOKIE_SECURE=True)
    with secure.test_client() as browser:
        page = browser.get("/console/login")
        assert "Secure" in _set_cookie_headers(page)[0]
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_next_page_never_leads_off_the_console(client, db):
    _, username = make_console_user(db)
    page = client.get("/console/login?next=https://evil.example/")
    response = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                   "next": "https://evil.example/",
                                                   "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/console/"
    client.post("/console/logout", data={"csrf_token": csrf_of(client.get("/console/").get_data(as_text=True))})
    page = client.get("/console/login")
    response = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                   "next": "/console/?x=1",
                                                   "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/console/?x=1"


def test_visits_to_the_sign_in_page_add_no_rows(client, db):
    for _ in range(50):
        client.get("/console/login")  # a new browser each time, no cookie kept
        client.delete_cookie("sagip_session")
    with owner_connection() as conn:
        assert conn.execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 0


def test_anonymous_refusals_are_counted_not_recorded_one_by_one(client, db):
    for _ in range(30):
        client.get("/console/nationals")  # not signed in
        client.post("/console/login", data={"username": "x", "password": "y"})  # no CSRF token
    with owner_connection() as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 0
        rows = conn.execute("SELECT status, calls FROM audit_refused_calls ORDER BY status").fetchall()
    assert rows == [(401, 30), (403, 30)] or rows == [(403, 30)]  # /console/nationals may not exist yet


def test_the_consoles_scripts_call_the_api_with_the_session_and_its_csrf_header(client, db):
    _, username = make_console_user(db, "desk")
    sign_in(client, username)
    token = csrf_of(client.get("/console/").get_data(as_text=True))
    assert client.get("/api/v1/nationals").status_code == 200
    body = national_body()
    refused = client.post("/api/v1/nationals?purpose=registration", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.get_json()["detail"]
    created = client.post("/api/v1/nationals?purpose=registration", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201, created.get_json()
    client.delete_cookie("sagip_session")
    assert client.get("/api/v1/nationals").status_code == 401


def test_invitations_set_a_password_once(app, client, db):
    from registry.auth.services import create_user
    user = create_user("Rosa Reyes", "embassy", ["AE"])
    db.session.commit()
    assert user.username == "rosa.reyes"
    result = app.test_cli_runner().invoke(args=["users", "invite", "rosa.reyes"])
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    path = link[link.index("/console/"):]
    page = client.get(path)
    assert page.status_code == 200 and "rosa.reyes" in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    short = client.post(path, data={"password": "short", "confirmation": "short", "csrf_token": token})
    assert short.status_code == 422 and 'aria-invalid="true"' in short.get_data(as_text=True)
    differ = client.post(path, data={"password": PASSWORD, "confirmation": PASSWORD + "x", "csrf_token": token})
    assert differ.status_code == 422 and "Differs from the password." in differ.get_data(as_text=True)
    done = client.post(path, data={"password": PASSWORD, "confirmation": PASSWORD, "csrf_token": token})
    assert done.status_code == 303
    assert client.get(path).status_code == 404  # used
    assert sign_in(client, "rosa.reyes").status_code == 303


def test_set_password_reads_one_line_of_stdin(app, client, db):
    from registry.auth.services import create_user
    create_user("Jun Dela Cruz", "coordinator", [], username="jun")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-password", "jun", "--password-stdin"], input=PASSWORD + "\nignored\n")
    assert result.exit_code == 0 and PASSWORD not in result.output
    assert sign_in(client, "jun").status_code == 303
    short = runner.invoke(args=["users", "set-password", "jun", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "12 to 256 characters" in short.output
    taken = runner.invoke(args=["users", "create", "--name", "Other", "--role", "desk", "--username", "JUN"])
    assert taken.exit_code != 0 and "Already taken" in taken.output


def test_ended_sessions_and_invitations_are_purged_a_day_later(app, client, db):
    from registry import retention
    from registry.auth import sessions
    user, username = make_console_user(db)
    sign_in(client, username)
    sessions.invite(user)
    db.session.commit()
    with owner_connection() as conn:
        assert retention.purge_console_sessions() == 0  # live ones stay
        conn.execute("UPDATE console_sessions SET last_seen_at = now() - interval '2 days'")
        conn.execute("UPDATE invitations SET expires_at = now() - interval '2 days'")
        assert retention.purge_console_sessions() == 2
        assert conn.execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 0
