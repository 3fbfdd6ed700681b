"""The hotline's call list (``/console/crises/{id}/calls``, SPEC §9), through the Flask client against the
real database: who may open it, CSRF, one person at a time with their phones and household, a contact attempt
and a status recorded (the same welfare as the API's), operators in parallel never on one person, abandoned
claims and the unreached coming back, settled people not."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import lxml.html
import pytest

from tests.conftest import owner_connection
from tests.console_helpers import csrf_of, make_console_user, sign_in
from tests.test_crises import DUBAI, circle, declare, register
from tests.test_rosters import at

_HELD = re.compile(r'name="national_id" value="([0-9a-f-]{36})"')
PURPOSE = {"purpose": "hotline test"}


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


def make_people(client, desk, coordinator, extra: int = 0) -> dict:
    """Around Dubai: a medical case 10 km out (priority 1) with a household member and a next of kin, two
    workers at 3 and 6 km (standard), ``extra`` more workers; one person in Muscat (Oman) outside the area."""
    medical = register(client, desk, *at(10), family_name="Medicalcase", given_names="Ana",
                       vulnerabilities=["chronic_illness"], phones=["+971501110001"], deployment={"city": "Dubai"},
                       next_of_kin={"name": "Jose Medicalcase", "relation": "spouse", "phone": "+639171110001"})
    household = client.get(f"/api/v1/nationals/{medical}", headers=desk).get_json()["household_id"]
    people = {
        "medical": medical,
        "partner": register(client, desk, *at(10.1), family_name="Medicalcase", given_names="Bea",
                          vulnerabilities=[], phones=["+971501110002"], household_id=household,
                          date_of_birth="1970-01-01"),
        "near": register(client, desk, *at(3), family_name="Nearworker", vulnerabilities=[],
                         phones=["+971501110003"], date_of_birth="1985-01-01"),
        "far": register(client, desk, *at(6), family_name="Farworker", vulnerabilities=[],
                        phones=["+971501110004"], date_of_birth="1985-01-01"),
    }
    for n in range(extra):
        people[f"extra{n}"] = register(client, desk, *at(20 + n), family_name=f"Extra{n}", vulnerabilities=[],
                                       date_of_birth="1985-01-01")
    people["muscat"] = register(client, desk, 23.588, 58.3829, host="OM", family_name="Muscatperson",
                                vulnerabilities=[], deployment={"city": "Muscat"})
    return people


@pytest.fixture
def scene(client, desk, coordinator, db, celery_worker):
    people = make_people(client, desk, coordinator)
    crisis = declare(client, coordinator, circle(*DUBAI, 60), name="Gulf floods")
    return {"people": people, "crisis": crisis}


def operator(app, db, role="embassy", jurisdiction=("AE",)):
    _, username = make_console_user(db, role, jurisdiction)
    browser = app.test_client()
    assert sign_in(browser, username).status_code == 303
    return browser


def calls_url(scene) -> str:
    return f"/console/crises/{scene['crisis']['id']}/calls"


def held(browser, scene) -> str | None:
    found = _HELD.search(browser.get(calls_url(scene)).get_data(as_text=True))
    return found.group(1) if found else None


def claim_next(browser, scene) -> str | None:
    page = browser.get(calls_url(scene)).get_data(as_text=True)
    response = browser.post(calls_url(scene) + "/next", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 303, response.get_data(as_text=True)
    return held(browser, scene)


def record(browser, scene, national_id, **fields):
    page = browser.get(calls_url(scene)).get_data(as_text=True)
    return browser.post(calls_url(scene), data={"csrf_token": csrf_of(page), "national_id": national_id,
                                                "channel": "phone", **fields})


def welfare(client, headers, scene, who) -> dict:
    response = client.get(f"/api/v1/crises/{scene['crisis']['id']}/welfare/{scene['people'][who]}",
                          headers=headers, query_string=PURPOSE)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def backdate(sql: str, **params) -> None:
    with owner_connection() as conn:
        conn.execute(sql, params)


# ---------------------------------------------------------------------- who may open it

def test_roles_reach_and_the_crisis_purpose(app, client, db, scene):
    for role in ("desk", "auditor"):
        assert operator(app, db, role, ()).get(calls_url(scene)).status_code == 403
    assert app.test_client().get(calls_url(scene)).status_code == 302  # sign in first
    for role, jurisdiction in (("coordinator", ()), ("admin", ()), ("embassy", ("AE",))):
        response = operator(app, db, role, jurisdiction).get(calls_url(scene))
        assert response.status_code == 200
        main = lxml.html.fromstring(response.get_data(as_text=True)).get_element_by_id("main").text_content()
        assert "Gulf floods" in main
    assert operator(app, db).get("/console/crises/00000000-0000-0000-0000-000000000000/calls").status_code == 404
    # An embassy officer of Oman has nobody to call here.
    oman = operator(app, db, "embassy", ("OM",))
    doc = lxml.html.fromstring(oman.get(calls_url(scene)).get_data(as_text=True))
    assert doc.get_element_by_id("count-to-call").text_content() == "0"
    assert claim_next(oman, scene) is None
    from registry.audit.models import AuditEvent
    db.session.rollback()
    purposes = {e.purpose for e in db.session.query(AuditEvent).filter(AuditEvent.action == "console.calls")
                if e.details.get("status") == 200}
    assert purposes == {"crisis response: Gulf floods"}


def test_forms_need_the_csrf_token(app, client, coordinator, db, scene):
    browser = operator(app, db)
    assert browser.post(calls_url(scene) + "/next", data={}).status_code == 403
    assert held(browser, scene) is None
    response = browser.post(calls_url(scene), data={"national_id": scene["people"]["near"], "outcome": "reached",
                                                    "welfare_status": "safe", "csrf_token": "forged"})
    assert response.status_code == 403
    assert welfare(client, coordinator, scene, "near")["history"] == []


# ---------------------------------------------------------------------- one person at a time

def test_the_operator_sees_the_person_records_a_call_and_gets_the_next(app, client, coordinator, db, scene):
    browser = operator(app, db)
    first = claim_next(browser, scene)
    assert first == scene["people"]["medical"]  # the most vulnerable first
    doc = lxml.html.fromstring(browser.get(calls_url(scene)).get_data(as_text=True))
    text = {name: doc.get_element_by_id(name).text_content() for name in (
        "person-heading", "person-phones", "person-kin", "person-city", "person-zone", "person-needs",
        "person-household", "person-history", "count-to-call", "count-claimed")}
    assert "Medicalcase, Ana" in text["person-heading"] and "+971501110001" in text["person-phones"]
    assert "Jose Medicalcase" in text["person-kin"] and "+639171110001" in text["person-kin"]
    assert "Dubai" in text["person-city"] and "inside" in text["person-zone"]
    assert "chronic illness" in text["person-needs"]
    assert "Medicalcase, Bea" in text["person-household"] and "+971501110002" in text["person-household"]
    assert "No news" in text["person-history"]
    assert (text["count-to-call"], text["count-claimed"]) == ("4", "0")

    response = record(browser, scene, first, outcome="reached", welfare_status="needs_evacuation",
                      note="Ground floor flooded")
    assert response.status_code == 303
    answer = welfare(client, coordinator, scene, "medical")
    assert answer["welfare_status"] == "needs_evacuation"
    assert [(h["source"], h["contact"]["outcome"], h["note"]) for h in answer["history"]] == [
        ("hotline", "reached", "Ground floor flooded")]
    second = held(browser, scene)  # the next person was claimed at once
    assert second not in (None, first)
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: Needs evacuation" in page
    # A coordinator sees the priority class, not the needs behind it.
    coordinator_page = operator(app, db, "coordinator", ())
    claim_next(coordinator_page, scene)
    html = coordinator_page.get(calls_url(scene)).get_data(as_text=True)
    assert "chronic" not in html


@pytest.mark.parametrize("fields, field, status", [
    ({"welfare_status": "safe"}, "outcome", 422),
    ({"outcome": "shouted"}, "outcome", 422),
    ({"outcome": "reached", "welfare_status": "fine"}, "welfare_status", 422),
    ({"outcome": "reached", "channel": "pigeon"}, "channel", 422),
    ({"outcome": "reached", "note": "x" * 2001}, "note", 422),
])
def test_bad_forms_come_back_with_the_error_beside_the_field(app, client, coordinator, db, scene, fields, field,
                                                            status):
    browser = operator(app, db)
    person = claim_next(browser, scene)
    response = record(browser, scene, person, **fields)
    assert response.status_code == status
    doc = lxml.html.fromstring(response.get_data(as_text=True))
    assert doc.get_element_by_id(f"{field}-error").text_content().strip()
    described = doc.get_element_by_id(field).get("aria-describedby", "")
    assert f"{field}-error" in described
    assert held(browser, scene) == person  # still theirs; nothing recorded
    who = next(k for k, v in scene["people"].items() if v == person)
    assert welfare(client, coordinator, scene, who)["history"] == []


def test_a_person_outside_the_crisis_or_the_reach_is_404(app, db, scene):
    browser = operator(app, db)
    assert record(browser, scene, scene["people"]["muscat"], outcome="reached").status_code == 404
    assert record(browser, scene, "not-an-id", outcome="reached").status_code == 404
    oman = operator(app, db, "embassy", ("OM",))
    assert record(oman, scene, scene["people"]["near"], outcome="reached").status_code == 404


# ---------------------------------------------------------------------- claims

def test_operators_in_parallel_never_claim_the_same_person(app, client, desk, coordinator, db, celery_worker):
    people = make_people(client, desk, coordinator, extra=6)
    crisis = declare(client, coordinator, circle(*DUBAI, 60), name="Gulf floods")
    scene = {"people": people, "crisis": crisis}
    browsers = [operator(app, db) for _ in range(4)]
    tokens = [csrf_of(b.get(calls_url(scene)).get_data(as_text=True)) for b in browsers]
    for _ in range(3):  # each round: every operator lets go of their person and claims the next, at once
        barrier = threading.Barrier(len(browsers))
        failures = []

        def claim(browser, token, barrier=barrier, failures=failures):
            barrier.wait()
            response = browser.post(calls_url(scene) + "/next", data={"csrf_token": token})
            if response.status_code != 303:
                failures.append(response.status_code)

        threads = [threading.Thread(target=claim, args=pair) for pair in zip(browsers, tokens)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        claimed = [held(b, scene) for b in browsers]
        assert None not in claimed and len(set(claimed)) == len(browsers), claimed
    with owner_connection() as conn:
        rows = conn.execute("SELECT national_id, operator_id FROM call_claims").fetchall()
    assert len(rows) == len(browsers) and len({r[0] for r in rows}) == len(browsers)


def test_an_abandoned_claim_comes_back_after_it_expires(app, db, scene):
    first, second, third = operator(app, db), operator(app, db), operator(app, db)
    abandoned = claim_next(first, scene)
    assert claim_next(second, scene) != abandoned
    backdate("UPDATE call_claims SET expires_at = now() - interval '1 minute' WHERE national_id = %(id)s",
             id=abandoned)
    assert claim_next(third, scene) == abandoned
    assert held(first, scene) is None  # it is no longer the first operator's


def test_the_unreached_come_back_after_the_retry_time_and_settled_people_never(app, client, coordinator, db,
                                                                              scene):
    people = scene["people"]
    standard = {people["partner"], people["near"], people["far"]}
    one, two = operator(app, db), operator(app, db)
    assert claim_next(one, scene) == people["medical"]  # priority 1
    assert record(one, scene, people["medical"], outcome="no_answer").status_code == 303
    # Tried just now: the others come first, however vulnerable the one tried.
    assert held(one, scene) in standard
    assert claim_next(two, scene) in standard - {held(one, scene)}
    backdate("UPDATE welfare_statuses SET last_contact_at = now() - interval '31 minutes' "
             "WHERE national_id = %(id)s", id=people["medical"])
    assert claim_next(two, scene) == people["medical"]  # the retry time has passed: back, ahead of the others
    # Settle everyone: nobody settled ever comes back.
    settled = []
    for browser in (one, two):
        while (person := held(browser, scene) or claim_next(browser, scene)) is not None:
            assert record(browser, scene, person, outcome="reached", welfare_status="safe").status_code == 303
            settled.append(person)
    assert sorted(settled) == sorted(standard | {people["medical"]})
    html = one.get(calls_url(scene)).get_data(as_text=True)
    assert "Nobody is left to call" in html
    doc = lxml.html.fromstring(html)
    assert doc.get_element_by_id("count-settled").text_content() == "4"
    assert doc.get_element_by_id("count-to-call").text_content() == "0"


def test_when_no_one_else_is_left_the_recently_tried_come_back_at_once(app, db, scene):
    browser = operator(app, db)
    tried = []
    for _ in range(4):
        person = claim_next(browser, scene)
        assert record(browser, scene, person, outcome="no_answer").status_code == 303
        tried.append(person)
    assert len(set(tried)) == 4  # everyone once before anyone twice
    assert held(browser, scene) == tried[0]  # then the longest waiting


def test_recording_through_the_api_releases_the_claim_and_stopping_puts_them_back(app, client, coordinator, db,
                                                                                  scene):
    browser, other = operator(app, db), operator(app, db)
    person = claim_next(browser, scene)
    response = client.patch(f"/api/v1/crises/{scene['crisis']['id']}/welfare/{person}", headers=coordinator,
                            json={"welfare_status": "safe", "contact": {"channel": "phone", "outcome": "reached"}})
    assert response.status_code == 200
    assert held(browser, scene) is None
    person = claim_next(browser, scene)
    page = browser.get(calls_url(scene)).get_data(as_text=True)
    assert browser.post(calls_url(scene) + "/release", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert held(browser, scene) is None
    assert claim_next(other, scene) == person


def test_claims_last_the_configured_time(app, db, scene):
    browser = operator(app, db)
    claim_next(browser, scene)
    with owner_connection() as conn:
        claimed_at, expires_at = conn.execute("SELECT claimed_at, expires_at FROM call_claims").fetchone()
    assert expires_at - claimed_at == timedelta(minutes=app.config["REGISTRY_CALL_CLAIM_MINUTES"])
    assert abs(claimed_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
