"""The audit page of the console (SPEC §9 ``/console/audit``), through the Flask client: auditors and
administrators only, filters POSTed (never in the URL) that narrow the rows, errors beside their field, and
the chain's status, computed by the same check as ``registry audit verify``, before and after tampering."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy

from tests.conftest import owner_connection
from tests.console_helpers import csrf_of
from tests.test_audit import register
from tests.test_console_rosters import console_client, events, field_error, page_of

AUDIT = "/console/audit"
FILTERS = {"actor": "", "action": "", "object_type": "", "object_id": "", "purpose": "", "outcome": "",
           "date_from": "", "date_to": ""}


def seal(db) -> int:
    from registry.audit import services
    db.session.rollback()
    sealed = services.seal_all()
    db.session.rollback()
    return sealed


def search(browser, **filters):
    token = csrf_of(browser.get(AUDIT).get_data(as_text=True))
    return browser.post(AUDIT, data={"csrf_token": token, **FILTERS, **filters})


def rows(response) -> list[dict]:
    doc = page_of(response)
    found = []
    for row in doc.xpath('//table[@id="events-table"]/tbody/tr'):
        cells = [cell.text_content().strip() for cell in row.findall("td")]
        found.append({"id": int(row.get("data-id")), "action": row.get("data-action"),
                      "outcome": row.get("data-outcome"), "user": cells[1], "role": cells[2],
                      "object": cells[4], "purpose": cells[5], "count": cells[6]})
    return found


def chain_status(response):
    status = page_of(response).get_element_by_id("chain-status")
    return status.get("data-chain"), " ".join(status.text_content().split())


@pytest.fixture
def trail(app, client, db, make_user):
    """A desk officer registers someone and reads the record; an embassy officer searches by passport with a
    purpose; a sign-in fails; everything sealed."""
    desk_id, desk = make_user("desk")
    embassy_id, embassy = make_user("embassy", ["AE"])
    national = register(client, desk)
    client.get(f"/api/v1/nationals/{national['id']}", headers=desk)
    assert client.post("/api/v1/nationals/search", query_string={"purpose": "walk-in passport check"},
                       json={"passport_number": "P1234567A"}, headers=embassy).status_code == 200
    page = app.test_client()
    login = page.get("/console/login")
    assert page.post("/console/login", data={"username": "nobody.here", "password": "wrong password",
                                             "csrf_token": csrf_of(login.get_data(as_text=True))}).status_code == 401
    seal(db)
    return {"desk": desk_id, "embassy": embassy_id, "national": uuid.UUID(national["id"])}


# ---------------------------------------------------------------------- who may

@pytest.mark.parametrize("role", ["desk", "embassy", "coordinator"])
def test_only_auditors_and_administrators_open_the_audit_page(app, db, role):
    browser, _ = console_client(app, db, role, ["AE"] if role == "embassy" else ())
    assert browser.get(AUDIT).status_code == 403
    token = csrf_of(browser.get("/console/").get_data(as_text=True))
    assert browser.post(AUDIT, data={"csrf_token": token, **FILTERS}).status_code == 403


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditors_and_administrators_read_the_trail(app, db, role, trail):
    browser, user = console_client(app, db, role)
    response = browser.get(AUDIT)
    assert response.status_code == 200
    found = rows(response)
    assert found == sorted(found, key=lambda r: -r["id"])  # newest first
    actions = {r["action"] for r in found}
    assert {"nationals.create_national", "nationals.search_nationals", "console.sign_in"} <= actions
    assert "Audit" in page_of(response).xpath("string(//main)")
    read = events(db, "console.audit")[-1]
    assert read.actor_id == user.id and read.object_type == "audit_event"


def test_the_filter_form_needs_its_csrf_token(app, db):
    browser, _ = console_client(app, db, "auditor")
    assert browser.post(AUDIT, data=FILTERS).status_code == 403
    assert browser.post(AUDIT, data={**FILTERS, "csrf_token": "forged"}).status_code == 403


# ---------------------------------------------------------------------- filters

def test_filters_narrow_the_rows(app, db, make_user, trail):
    browser, _ = console_client(app, db, "auditor")
    from registry.auth.models import User
    desk_username = db.session.get(User, trail["desk"]).username
    everything = rows(search(browser))
    by_desk = rows(search(browser, actor=desk_username))
    assert by_desk and len(by_desk) < len(everything)
    assert {r["action"] for r in by_desk} == {"nationals.create_national", "nationals.get_national"}
    assert {r["user"] for r in by_desk} == {desk_username} and {r["role"] for r in by_desk} == {"desk"}
    by_id = rows(search(browser, actor=str(trail["embassy"])))
    assert [r["action"] for r in by_id] == ["nationals.search_nationals"]
    searches = rows(search(browser, action="nationals.search_nationals"))
    assert len(searches) == 1 and searches[0]["purpose"] == "walk-in passport check" and searches[0]["count"] == "1"
    assert [r["action"] for r in rows(search(browser, purpose="PASSPORT CHECK"))] == ["nationals.search_nationals"]
    assert rows(search(browser, purpose="100%_")) == []  # wildcards are taken literally
    about = rows(search(browser, object_id=str(trail["national"])))
    assert {r["action"] for r in about} == {"nationals.create_national", "nationals.get_national",
                                            "nationals.search_nationals"}
    failed = rows(search(browser, action="console.sign_in", outcome="unauthenticated"))
    assert len(failed) == 1 and failed[0]["user"] == "—"
    assert rows(search(browser, action="console.sign_in", outcome="ok")) != failed  # the auditor's own sign-in
    typed = rows(search(browser, object_type="national"))
    assert typed and all("national" in r["object"] for r in typed)
    today = date.today()
    around_today = search(browser, date_from=str(today - timedelta(days=1)), date_to=str(today + timedelta(days=1)))
    assert len(rows(around_today)) >= len(everything)
    assert rows(search(browser, date_to=str(today - timedelta(days=2)))) == []
    # Combined filters narrow further.
    assert rows(search(browser, actor=desk_username, action="nationals.get_national"))[0]["action"] == \
        "nationals.get_national"


def test_filters_never_reach_a_url_or_the_trail(app, db, trail):
    browser, _ = console_client(app, db, "auditor")
    response = search(browser, purpose="walk-in passport check", actor="nobody.here")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'method="get"' not in html.lower().replace(" ", "")
    event = events(db, "console.audit_search")[-1]
    assert "walk-in" not in str(event.details) and "nobody.here" not in str(event.details)


def test_events_come_in_pages(app, db, trail, monkeypatch):
    import registry.console.audit_trail
    monkeypatch.setattr(registry.console.audit_trail, "PAGE_ROWS", 2)
    browser, _ = console_client(app, db, "auditor")
    first = search(browser)
    doc = page_of(first)
    cursor = doc.xpath('//form[contains(@class, "pager")]//input[@name="cursor"]')[0].get("value")
    token = csrf_of(first.get_data(as_text=True))
    second = browser.post(AUDIT, data={"csrf_token": token, **FILTERS, "cursor": cursor})
    assert second.status_code == 200
    first_ids, second_ids = [r["id"] for r in rows(first)], [r["id"] for r in rows(second)]
    assert len(first_ids) == 2 and second_ids and max(second_ids) < min(first_ids)
    assert browser.post(AUDIT, data={"csrf_token": token, **FILTERS, "cursor": "garbage"}).status_code == 400


@pytest.mark.parametrize("filters, field, message", [
    ({"actor": "no.such.user"}, "actor", "No user"),
    ({"object_id": "12345"}, "object_id", "Not an id"),
    ({"outcome": "fine"}, "outcome", "One of"),
    ({"date_from": "2026-13-40"}, "date_from", "YYYY-MM-DD"),
    ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to", "before the first day"),
    ({"purpose": "x" * 201}, "purpose", "200"),
])
def test_bad_filters_are_shown_beside_their_field(app, db, filters, field, message):
    browser, _ = console_client(app, db, "auditor")
    response = search(browser, **filters)
    assert response.status_code == 422
    assert message in field_error(page_of(response), field)


# ---------------------------------------------------------------------- the chain

def test_the_chain_verifies_then_shows_where_it_was_broken(app, db, trail):
    browser, _ = console_client(app, db, "auditor")
    seal(db)
    state, said = chain_status(browser.get(AUDIT))
    assert state == "verified" and "intact" in said
    from registry.audit import services
    assert f"through its {services.verify().checked} sealed entries" in said
    victim = db.session.execute(
        sqlalchemy.text("SELECT id FROM audit_events WHERE action = 'nationals.search_nationals'")).scalar_one()
    db.session.rollback()
    with owner_connection() as owner:
        owner.execute("SET session_replication_role = replica")  # a superuser switching the trigger off
        owner.execute(f"UPDATE audit_events SET purpose = 'nothing to see' WHERE id = {victim}")
    response = browser.get(AUDIT)
    state, said = chain_status(response)
    assert state == "broken" and f"event id {victim}" in said and "does not match its hash" in said
    # The API's and the command line's check say the same.
    result = services.verify()
    assert not result.ok and result.first_bad == f"event id {victim}"


def test_a_long_chain_is_verified_on_request(app, db, trail, monkeypatch):
    import registry.console.audit_trail
    monkeypatch.setattr(registry.console.audit_trail, "VERIFY_ON_OPEN", 1)
    browser, _ = console_client(app, db, "admin")
    response = browser.get(AUDIT)
    state, said = chain_status(response)
    assert state is None and "Not checked yet" in said
    verified = search(browser, verify="1")
    assert chain_status(verified)[0] == "verified"
    assert events(db, "console.audit_search")[-1].details["verified"] is True


def test_the_api_reads_the_trail_with_the_same_new_filters(client, db, make_user, trail):
    _, auditor = make_user("auditor")
    answer = client.get("/api/v1/audit", query_string={"purpose_contains": "PASSPORT check", "outcome": "ok"},
                        headers=auditor).get_json()
    assert [e["action"] for e in answer["items"]] == ["nationals.search_nationals"]
    typed = client.get("/api/v1/audit", query_string={"object_type": "national"}, headers=auditor).get_json()
    assert typed["items"] and {e["object_type"] for e in typed["items"]} == {"national"}
    assert client.get("/api/v1/audit", query_string={"outcome": "fine"}, headers=auditor).status_code == 422
