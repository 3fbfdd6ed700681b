"""The console's verification queue (``/console/verification``): the same decisions, roles and reach as
``/api/v1/verification``, by plain forms."""
from __future__ import annotations

from sqlalchemy import text

from tests.conftest import national_body
from tests.console_helpers import csrf_of, make_console_user, sign_in
from tests.test_checkin_registration import crisis, register  # noqa: F401  (the crisis fixture)


def signed_in(app, db, role: str, jurisdiction=()):
    client = app.test_client()
    user, username = make_console_user(db, role, jurisdiction)
    assert sign_in(client, username).status_code in (302, 303)
    return client


def test_an_embassy_officer_merges_a_self_registration_by_hand(app, client, db, desk, crisis):  # noqa: F811
    existing = client.post("/api/v1/nationals", json=national_body(phones=["+971551234567"]),
                           headers=desk).get_json()["id"]
    assert register(client, crisis.path).status_code == 200
    officer = signed_in(app, db, "embassy", ["AE"])
    page = officer.get("/console/verification")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Santos, Rowena" in html and "Dela Cruz, Maria Luisa" in html
    assert "same phone" in html and 'href="/console/verification"' in html  # in the menu
    national_id = str(db.session.execute(text("SELECT national_id FROM self_registrations")).scalar())
    forged = officer.post(f"/console/verification/{national_id}", data={"action": "reject"})
    assert forged.status_code == 403
    done = officer.post(f"/console/verification/{national_id}",
                        data={"csrf_token": csrf_of(html), "action": "merge", "into": existing})
    assert done.status_code == 303 and done.headers["Location"].endswith("done=merge")
    after = officer.get(done.headers["Location"]).get_data(as_text=True)
    assert "merged into the existing record" in after and "Waiting: 0" in after
    db.session.rollback()
    assert db.session.execute(text("SELECT resolution FROM self_registrations")).scalar() == "merged"


def test_a_refused_decision_is_shown_on_the_page(app, client, db, desk, crisis):  # noqa: F811
    client.post("/api/v1/nationals", json=national_body(), headers=desk)
    register(client, crisis.path, passport_number="P1234567A")
    officer = signed_in(app, db, "coordinator")
    html = officer.get("/console/verification").get_data(as_text=True)
    assert "already registered to another record" in html
    national_id = str(db.session.execute(text("SELECT national_id FROM self_registrations")).scalar())
    refused = officer.post(f"/console/verification/{national_id}", data={"csrf_token": csrf_of(html),
                                                                         "action": "verify"})
    assert refused.status_code == 409 and "already registered" in refused.get_data(as_text=True)
    assert "Santos, Rowena" in refused.get_data(as_text=True)  # the queue, shown again


def test_other_roles_and_jurisdictions_do_not_get_the_queue(app, client, db, crisis):  # noqa: F811
    register(client, crisis.path)
    assert signed_in(app, db, "desk").get("/console/verification").status_code == 403
    elsewhere = signed_in(app, db, "embassy", ["QA"]).get("/console/verification").get_data(as_text=True)
    assert "Santos" not in elsewhere and "Waiting: 0" in elsewhere
