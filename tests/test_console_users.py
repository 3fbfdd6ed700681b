"""The users page of the console (SPEC §9 ``/console/users``), through the Flask client: administrators only,
CSRF, errors beside their field, a new user's one-time invitation link that lets them sign in, role changes
that take effect, disabling that ends an open session, resetting a password by a new link, and the audit."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.console_helpers import PASSWORD, csrf_of, make_console_user, sign_in
from tests.test_console_rosters import console_client, events, field_error, page_of

USERS = "/console/users"
NEW_PASSWORD = "another long pass phrase"


def post_form(browser, page_url, url, **form):
    token = csrf_of(browser.get(page_url).get_data(as_text=True))
    return browser.post(url, data={"csrf_token": token, **form})


def add_user(browser, **form):
    return post_form(browser, USERS, USERS, **{"name": "", "role": "desk", "jurisdiction": "", "username": "", **form})


def invitation_link(response) -> str:
    return page_of(response).get_element_by_id("invitation-link").get("value")


def accept(app, link: str, password: str = NEW_PASSWORD):
    """Open an invitation link in a fresh browser and set the password; the answer to the form."""
    stranger = app.test_client()
    path = urlsplit(link).path
    page = stranger.get(path)
    assert page.status_code == 200
    return stranger.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True)), "password": password,
                                     "confirmation": password})


def user_row(response, username: str) -> list[str]:
    doc = page_of(response)
    rows = doc.xpath(f'//table[@id="users-table"]//tr[@data-username="{username}"]')
    assert rows, f"{username} is not listed"
    return [cell.text_content().strip() for cell in rows[0].findall("td")]


def get_user(db, user_id):
    from registry.auth.models import User
    db.session.rollback()
    return db.session.get(User, user_id)


# ---------------------------------------------------------------------- who may

@pytest.mark.parametrize("role", ["desk", "embassy", "coordinator", "auditor"])
def test_only_administrators_open_the_users_page(app, db, role):
    browser, _ = console_client(app, db, role, ["AE"] if role == "embassy" else ())
    assert browser.get(USERS).status_code == 403
    someone, _ = make_console_user(db, "desk")
    assert browser.get(f"{USERS}/{someone.id}").status_code == 403
    token = csrf_of(browser.get("/console/").get_data(as_text=True))
    assert browser.post(USERS, data={"csrf_token": token, "name": "Intruder", "role": "admin"}).status_code == 403
    assert browser.post(f"{USERS}/{someone.id}/disable", data={"csrf_token": token}).status_code == 403
    assert get_user(db, someone.id).active
    assert "Users" not in page_of(browser.get("/console/")).xpath("string(//nav)")


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(USERS)
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_forms_without_the_csrf_token_are_refused(app, db):
    browser, _ = console_client(app, db, "admin")
    someone, _ = make_console_user(db, "desk")
    assert browser.post(USERS, data={"name": "No Token", "role": "desk"}).status_code == 403
    assert browser.post(f"{USERS}/{someone.id}/disable", data={"csrf_token": "forged"}).status_code == 403
    assert browser.post(f"{USERS}/{someone.id}", data={"role": "admin"}).status_code == 403
    assert browser.post(f"{USERS}/{someone.id}/invitation", data={}).status_code == 403
    assert get_user(db, someone.id).active and get_user(db, someone.id).role == "desk"
    from registry.auth.models import User
    assert db.session.scalar(select(User).where(User.name == "No Token")) is None


# ---------------------------------------------------------------------- the list

def test_the_list_shows_names_usernames_roles_jurisdictions_status_and_last_sign_in(app, db):
    browser, admin = console_client(app, db, "admin")
    embassy, embassy_name = make_console_user(db, "embassy", ["QA", "AE"])
    _, never_name = make_console_user(db, "desk")
    sign_in(app.test_client(), embassy_name)
    response = browser.get(USERS)
    assert response.status_code == 200
    row = user_row(response, embassy_name)
    assert row[0] == embassy.name and row[1] == embassy_name and row[2] == "embassy"
    assert row[3] == "AE, QA" and row[4] == "active" and row[5].endswith("UTC")
    assert user_row(response, never_name)[5] == "—"
    assert user_row(response, admin.username)[5].endswith("UTC")
    event = events(db, "console.users")[-1]
    assert event.actor_id == admin.id and event.result_count == 3


# ---------------------------------------------------------------------- adding a user

def test_a_new_user_gets_a_one_time_link_that_lets_them_sign_in(app, db):
    browser, admin = console_client(app, db, "admin")
    response = add_user(browser, name="Josefina Reyes-Bautista", role="embassy", jurisdiction="ae, qa")
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    assert "josefina.reyes.bautista" in html
    link = invitation_link(response)
    assert "/console/invitations/" in link
    hours = app.config["REGISTRY_INVITATION_HOURS"]
    notice = page_of(response).get_element_by_id("invitation").text_content()
    assert f"expires in {hours} hours" in " ".join(notice.split())
    assert user_row(response, "josefina.reyes.bautista")[2:5] == ["embassy", "AE, QA", "active"]
    # The link is shown once: the list does not show it again.
    assert link not in browser.get(USERS).get_data(as_text=True)
    assert accept(app, link).status_code == 303
    newcomer = app.test_client()
    assert sign_in(newcomer, "josefina.reyes.bautista", NEW_PASSWORD).status_code == 303
    assert newcomer.get("/console/").status_code == 200
    # The link works once.
    assert app.test_client().get(urlsplit(link).path).status_code == 404
    # The change is audited by the same service as the command line, naming the administrator.
    from registry.auth.models import User
    user = db.session.scalar(select(User).where(User.username == "josefina.reyes.bautista"))
    created = events(db, "users.create")[-1]
    assert created.actor_id == admin.id and created.object_ids == [user.id]
    assert created.details["jurisdiction"] == ["AE", "QA"]
    invited = events(db, "users.invite")[-1]
    assert invited.actor_id == admin.id and invited.object_ids == [user.id]
    assert user.id in events(db, "console.create_user")[-1].object_ids
    # No link, no token in the trail.
    from registry.audit.models import AuditEvent
    token = urlsplit(link).path.rsplit("/", 1)[1]
    assert not [e for e in db.session.scalars(select(AuditEvent)) if token in str(e.details)]


def test_a_chosen_username_is_kept(app, db):
    browser, _ = console_client(app, db, "admin")
    response = add_user(browser, name="Ana Cruz", role="coordinator", username="Coord.Ana")
    assert response.status_code == 201
    assert user_row(response, "coord.ana")[2] == "coordinator"


@pytest.mark.parametrize("form, field, message", [
    ({"name": "Ana", "role": "pilot"}, "role", "Must be one of"),
    ({"name": "Ana", "role": "embassy", "jurisdiction": "AE, XX"}, "jurisdiction", "XX"),
    ({"name": "Ana", "role": "embassy", "jurisdiction": "UAE"}, "jurisdiction", "UAE"),
    ({"name": "Ana", "role": "embassy", "jurisdiction": ""}, "jurisdiction", "at least one host country"),
    ({"name": "Ana", "role": "desk", "jurisdiction": "AE"}, "jurisdiction", "Only embassy officers"),
    ({"name": "   ", "role": "desk"}, "name", "Must not be empty"),
    ({"name": "Ana", "role": "desk", "username": "a b"}, "username", "2 to 64 characters"),
])
def test_bad_input_is_shown_beside_its_field(app, db, form, field, message):
    browser, _ = console_client(app, db, "admin")
    response = add_user(browser, **form)
    assert response.status_code == 422
    assert message in field_error(page_of(response), field)
    # What was typed is kept.
    doc = page_of(response)
    assert doc.get_element_by_id("name").get("value") == form["name"].strip()


def test_a_taken_username_is_shown_beside_the_field(app, db):
    browser, _ = console_client(app, db, "admin")
    _, taken = make_console_user(db, "desk")
    response = add_user(browser, name="Second Person", role="desk", username=taken)
    assert response.status_code == 422
    assert "Already taken" in field_error(page_of(response), "username")
    from registry.auth.models import User
    assert db.session.scalar(select(User).where(User.name == "Second Person")) is None


# ---------------------------------------------------------------------- changing a user

def test_a_role_change_takes_effect_on_the_users_open_session(app, db):
    admin_browser, _ = console_client(app, db, "admin")
    officer_browser, officer = console_client(app, db, "desk")
    assert officer_browser.get("/console/nationals/new").status_code == 200
    assert officer_browser.get("/console/assembly-points").status_code == 403
    url = f"{USERS}/{officer.id}"
    response = post_form(admin_browser, url, url, role="coordinator", jurisdiction="")
    assert response.status_code == 303
    assert "saved" in page_of(admin_browser.get(response.headers["Location"])).xpath("string(//main)")
    assert officer_browser.get("/console/assembly-points").status_code == 200
    assert officer_browser.get("/console/nationals/new").status_code == 403
    changed = events(db, "users.change")[-1]
    assert changed.object_ids == [officer.id]
    assert changed.details["before"]["role"] == "desk" and changed.details["after"]["role"] == "coordinator"
    # An embassy officer's jurisdiction.
    response = post_form(admin_browser, url, url, role="embassy", jurisdiction="om")
    assert response.status_code == 303
    assert get_user(db, officer.id).jurisdiction == ["OM"]


def test_a_bad_change_is_shown_beside_its_field_and_nothing_changes(app, db):
    browser, _ = console_client(app, db, "admin")
    officer, _ = make_console_user(db, "embassy", ["AE"])
    url = f"{USERS}/{officer.id}"
    response = post_form(browser, url, url, role="embassy", jurisdiction="")
    assert response.status_code == 422
    assert "at least one host country" in field_error(page_of(response), "jurisdiction")
    response = post_form(browser, url, url, role="root", jurisdiction="")
    assert response.status_code == 422 and field_error(page_of(response), "role")
    assert get_user(db, officer.id).role == "embassy" and get_user(db, officer.id).jurisdiction == ["AE"]


def test_administrators_may_not_demote_or_disable_themselves(app, db):
    browser, admin = console_client(app, db, "admin")
    url = f"{USERS}/{admin.id}"
    response = post_form(browser, url, url, role="desk", jurisdiction="")
    assert response.status_code == 422 and "another administrator" in field_error(page_of(response), "role")
    assert post_form(browser, url, f"{url}/disable").status_code == 409
    assert get_user(db, admin.id).role == "admin" and get_user(db, admin.id).active


def test_unknown_users_are_404(app, db):
    browser, _ = console_client(app, db, "admin")
    assert browser.get(f"{USERS}/{uuid.uuid4()}").status_code == 404
    assert browser.get(f"{USERS}/not-an-id").status_code == 404
    assert post_form(browser, USERS, f"{USERS}/{uuid.uuid4()}/disable").status_code == 404


# ---------------------------------------------------------------------- disabling, enabling, resetting

def test_disabling_ends_an_open_session_and_enabling_lets_them_back(app, db, make_user):
    admin_browser, admin = console_client(app, db, "admin")
    officer_browser, officer = console_client(app, db, "desk")
    assert officer_browser.get("/console/").status_code == 200
    from registry.auth.services import issue_token
    token = issue_token(get_user(db, officer.id))
    db.session.commit()
    url = f"{USERS}/{officer.id}"
    response = post_form(admin_browser, url, f"{url}/disable")
    assert response.status_code == 303
    page = page_of(admin_browser.get(response.headers["Location"]))
    assert page.get_element_by_id("user-status").text_content() == "disabled"
    # The open session has ended: the next page asks to sign in; signing in again is refused.
    after = officer_browser.get("/console/")
    assert after.status_code == 302 and "/console/login" in after.headers["Location"]
    assert sign_in(app.test_client(), officer.username).status_code == 401
    assert app.test_client().get("/api/v1/nationals", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    disabled = events(db, "users.disable")[-1]
    assert disabled.actor_id == admin.id and disabled.object_ids == [officer.id] and disabled.result_count == 1
    # A disabled user gets no invitation.
    assert post_form(admin_browser, url, f"{url}/invitation").status_code == 409
    # Enabled again: the password works again.
    assert post_form(admin_browser, url, f"{url}/enable").status_code == 303
    assert sign_in(app.test_client(), officer.username).status_code == 303
    assert events(db, "users.enable")[-1].object_ids == [officer.id]


def test_reset_password_issues_a_new_link_that_replaces_the_old_password(app, db):
    admin_browser, _ = console_client(app, db, "admin")
    officer_browser, officer = console_client(app, db, "desk")
    url = f"{USERS}/{officer.id}"
    first = post_form(admin_browser, url, f"{url}/invitation")
    assert first.status_code == 201
    first_link = invitation_link(first)
    second = post_form(admin_browser, url, f"{url}/invitation")
    link = invitation_link(second)
    assert link != first_link
    # The older link no longer works; until the new one is used, the old password still does.
    assert app.test_client().get(urlsplit(first_link).path).status_code == 404
    assert sign_in(app.test_client(), officer.username, PASSWORD).status_code == 303
    assert accept(app, link).status_code == 303
    # Accepted: the old password no longer works, the open session has ended, the new password works.
    assert sign_in(app.test_client(), officer.username, PASSWORD).status_code == 401
    assert officer_browser.get("/console/").status_code == 302
    assert sign_in(app.test_client(), officer.username, NEW_PASSWORD).status_code == 303
    assert len(events(db, "users.invite")) == 2


def test_the_command_line_uses_the_same_services_and_audit(app, db):
    officer, username = make_console_user(db, "desk")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "disable", username]).exit_code == 0
    assert not get_user(db, officer.id).active
    assert events(db, "users.disable")[-1].object_ids == [officer.id]
    invite = runner.invoke(args=["users", "invite", username])
    assert invite.exit_code != 0 and "disabled" in invite.output
    assert runner.invoke(args=["users", "enable", username]).exit_code == 0
    assert get_user(db, officer.id).active and events(db, "users.enable")[-1].object_ids == [officer.id]
    bad = runner.invoke(args=["users", "create", "--name", "Ana", "--role", "embassy", "--jurisdiction", "ZZ"])
    assert bad.exit_code != 0 and "ZZ" in bad.output
