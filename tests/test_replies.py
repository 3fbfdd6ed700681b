"""SMS replies (SPEC §10) through the hook ``/api/v1/hooks/sms``, with the Flask client against the real database
and worker: keywords into welfare statuses, notes, shared numbers and unknown numbers into the inbox, opt-outs,
closed crises, the secret, bad input, the three forms Kannel sends; and the inbox API."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.conftest import count, make_app
from tests.test_crises import DUBAI, circle, declare, register
from tests.test_rosters import at

HOOK = "/api/v1/hooks/sms"
INBOX = "/api/v1/inbox"
PURPOSE = {"purpose": "sms reply check"}
MARIA, FAMILY, MUSCAT, PH_SIM, UNKNOWN = "+971501110001", "+971501110002", "+96891110003", "+639171234567", \
    "+971509999999"


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


@pytest.fixture
def secret(app):
    return app.config["REGISTRY_SMS_HOOK_SECRET"]


@pytest.fixture
def scene(client, desk, coordinator, db, celery_worker):
    """Around Dubai: Maria (her own number), two family members sharing one phone, Jun with a Philippine SIM;
    in Muscat (Oman, beyond the area) someone with a known number; a 60 km crisis on Dubai."""
    people = {
        "maria": register(client, desk, *at(5), family_name="Santos", given_names="Maria", phones=[MARIA]),
        "father": register(client, desk, *at(7), family_name="Reyes", given_names="Pedro", phones=[FAMILY]),
        "mother": register(client, desk, *at(7.1), family_name="Reyes", given_names="Rosa", phones=[FAMILY]),
        "jun": register(client, desk, *at(9), family_name="Bautista", given_names="Jun", phones=[PH_SIM]),
        "muscat": register(client, desk, 23.588, 58.3829, host="OM", family_name="Muscatperson",
                           phones=[MUSCAT], deployment={"city": "Muscat"}),
    }
    crisis = declare(client, coordinator, circle(*DUBAI, 60), name="Dubai floods")
    return {"people": people, "crisis": crisis["id"]}


def send(client, secret, sender, body, **kwargs):
    response = client.post(HOOK, data={"from": sender, "text": body}, headers={"X-Sagip-Hook-Secret": secret},
                           **kwargs)
    return response


def replies(db) -> list[dict]:
    db.session.rollback()
    rows = db.session.execute(text("SELECT * FROM sms_replies ORDER BY received_at, id")).mappings().all()
    return [dict(row) for row in rows]


def welfare_of(client, headers, scene, who) -> dict:
    response = client.get(f"/api/v1/crises/{scene['crisis']}/welfare/{scene['people'][who]}", headers=headers,
                          query_string=PURPOSE)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_keywords_in_english_filipino_digits_any_case_or_accent_become_statuses(client, db, secret, coordinator,
                                                                              scene):
    for body, status in (("1", "safe"), ("HELP", "needs_assistance"), ("evacuate", "needs_evacuation"),
                         ("Ligtas", "safe"), ("tulong", "needs_assistance"), ("3", "needs_evacuation"),
                         ("SAFE", "safe"), ("2.", "needs_assistance"), ("Évacuate", "needs_evacuation"),
                         ("  ligtás!", "safe"), ("１", "safe")):
        response = send(client, secret, MARIA, body)
        assert response.status_code == 200, response.get_data(as_text=True)
        # Empty text/plain: Kannel sends nothing back.
        assert response.get_data() == b"" and response.mimetype == "text/plain"
        assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == status, body
    answer = welfare_of(client, coordinator, scene, "maria")
    assert answer["contact_attempts"] == 11 and answer["reached"] is True
    assert {(h["source"], h["contact"]["channel"], h["contact"]["outcome"]) for h in answer["history"]} == {
        ("sms", "sms", "reached")}
    stored = replies(db)
    assert len(stored) == 11
    assert {(r["outcome"], r["review_reason"], r["national_id"], r["crisis_id"]) for r in stored} == {
        ("applied", None, uuid.UUID(scene["people"]["maria"]), uuid.UUID(scene["crisis"]))}
    assert [r["keyword"] for r in stored][:4] == ["1", "HELP", "EVACUATE", "LIGTAS"]
    assert all(r["handled_at"] is not None for r in stored)  # nothing for a person to read
    # Every call is audited, by nobody (the gateway).
    events = db.session.execute(text("SELECT actor_id, action, object_type FROM audit_events "
                                     "WHERE action LIKE 'replies_hook.%'")).all()
    assert len(events) == 11 and {e.actor_id for e in events} == {None}
    assert {e.object_type for e in events} == {"sms_reply"}


def test_the_rest_of_a_keyword_reply_is_kept_as_a_note_and_waits_for_reading(client, db, secret, coordinator,
                                                                            scene):
    assert send(client, secret, MARIA, "LIGTAS nasa bahay ng pinsan ko sa Sharjah").status_code == 200
    answer = welfare_of(client, coordinator, scene, "maria")
    assert answer["welfare_status"] == "safe" and answer["note"] == "nasa bahay ng pinsan ko sa Sharjah"
    assert answer["history"][-1]["note"] == "nasa bahay ng pinsan ko sa Sharjah"
    (reply,) = replies(db)
    assert (reply["outcome"], reply["review_reason"], reply["handled_at"]) == ("applied", "note", None)


def test_text_that_is_no_keyword_is_a_note_and_a_contact_the_status_unchanged(client, db, secret, coordinator,
                                                                            scene):
    send(client, secret, MARIA, "2")
    assert send(client, secret, MARIA, "Water is rising, we are on the roof").status_code == 200
    answer = welfare_of(client, coordinator, scene, "maria")
    assert answer["welfare_status"] == "needs_assistance" and answer["contact_attempts"] == 2
    assert answer["history"][-1]["note"] == "Water is rising, we are on the roof"
    reply = replies(db)[-1]
    assert (reply["outcome"], reply["review_reason"], reply["keyword"], reply["handled_at"]) == (
        "needs_review", "free_text", None, None)
    items = client.get(INBOX, headers=coordinator, query_string={"handled": "false"}).get_json()["items"]
    assert [i["text"] for i in items] == ["Water is rising, we are on the roof"]
    assert items[0]["people"] == [{"id": scene["people"]["maria"], "family_name": "Santos",
                                   "given_names": "Maria"}]


def test_a_number_shared_by_several_exposed_people_marks_none_and_waits_for_review(client, db, secret,
                                                                                 coordinator, scene):
    assert send(client, secret, FAMILY, "SAFE").status_code == 200
    for who in ("father", "mother"):
        answer = welfare_of(client, coordinator, scene, who)
        assert (answer["welfare_status"], answer["history"]) == ("unknown", [])
    (reply,) = replies(db)
    assert (reply["outcome"], reply["review_reason"], reply["national_id"]) == ("needs_review", "shared_number",
                                                                                 None)
    assert set(reply["national_ids"]) == {uuid.UUID(scene["people"]["father"]), uuid.UUID(scene["people"]["mother"])}
    # An officer assigns it to the father: recorded as the hook would have, by the officer.
    response = client.patch(f"{INBOX}/{reply['id']}", headers=coordinator,
                            json={"national_id": scene["people"]["father"], "crisis_id": scene["crisis"]})
    assert response.status_code == 200, response.get_json()
    item = response.get_json()
    assert (item["outcome"], item["handled"], item["national_id"], item["welfare_status"]) == (
        "applied", True, scene["people"]["father"], "safe")
    father = welfare_of(client, coordinator, scene, "father")
    assert father["welfare_status"] == "safe" and father["history"][-1]["source"] == "sms"
    assert welfare_of(client, coordinator, scene, "mother")["welfare_status"] == "unknown"
    # Assigned once: another person is a conflict.
    again = client.patch(f"{INBOX}/{reply['id']}", headers=coordinator,
                         json={"national_id": scene["people"]["mother"], "crisis_id": scene["crisis"]})
    assert again.status_code == 409 and again.get_json()["code"] == "conflict"


def test_an_unknown_number_goes_to_the_coordinators_inbox_never_dropped(client, db, secret, coordinator,
                                                                      make_user, scene):
    assert send(client, secret, UNKNOWN, "This is Ana, new number, I am safe").status_code == 200
    (reply,) = replies(db)
    assert (reply["outcome"], reply["phone"], reply["national_ids"], reply["handled_at"]) == (
        "unknown_number", UNKNOWN, [], None)
    page = client.get(INBOX, headers=coordinator).get_json()
    assert page["total"] == 1 and page["items"][0]["outcome"] == "unknown_number"
    _, embassy = make_user("embassy", ["AE"])
    assert client.get(INBOX, headers=embassy).get_json() == {"items": [], "total": 0, "next_cursor": None}
    assert client.patch(f"{INBOX}/{reply['id']}", headers=embassy, json={"handled": True}).status_code == 404
    _, admin = make_user("admin")
    # The coordinator recognises Ana (Maria's sister-in-law here: Maria) and assigns the reply.
    response = client.patch(f"{INBOX}/{reply['id']}", headers=admin,
                            json={"national_id": scene["people"]["maria"], "crisis_id": scene["crisis"],
                                  "welfare_status": "safe"})
    assert response.status_code == 200, response.get_json()
    answer = welfare_of(client, coordinator, scene, "maria")
    assert answer["welfare_status"] == "safe" and answer["note"] == "This is Ana, new number, I am safe"
    # Now it follows Maria: her embassy sees it.
    assert client.get(INBOX, headers=embassy).get_json()["total"] == 1


def test_a_known_number_of_someone_not_exposed_waits_for_review(client, db, secret, scene):
    assert send(client, secret, MUSCAT, "SAFE").status_code == 200
    (reply,) = replies(db)
    assert (reply["outcome"], reply["review_reason"], reply["national_ids"], reply["crisis_ids"]) == (
        "needs_review", "not_exposed", [uuid.UUID(scene["people"]["muscat"])], [])


def test_stop_opts_the_number_out_and_start_lifts_it(client, db, secret, coordinator, scene):
    from registry.replies import services
    assert send(client, secret, MARIA, "STOP").status_code == 200
    assert services.opted_out([MARIA, FAMILY]) == {MARIA}
    assert send(client, secret, MARIA, "stop").status_code == 200  # twice is still one opt-out
    assert count(db, "sms_opt_outs") == 1
    answer = welfare_of(client, coordinator, scene, "maria")
    assert answer["welfare_status"] == "unknown" and answer["contact_attempts"] == 2  # reached all the same
    assert send(client, secret, FAMILY, "STOP").status_code == 200  # a shared phone: the phone opts out
    assert services.opted_out([MARIA, FAMILY]) == {MARIA, FAMILY}
    assert send(client, secret, MARIA, "START").status_code == 200
    db.session.rollback()
    assert services.opted_out([MARIA, FAMILY]) == {FAMILY}
    assert [r["outcome"] for r in replies(db)] == ["opted_out", "opted_out", "opted_out", "opted_in"]


def test_a_closed_crisis_is_not_matched(client, db, secret, coordinator, scene):
    closed = client.patch(f"/api/v1/crises/{scene['crisis']}", headers=coordinator, json={"status": "closed"})
    assert closed.status_code == 200, closed.get_json()
    assert send(client, secret, MARIA, "SAFE").status_code == 200
    (reply,) = replies(db)
    assert (reply["outcome"], reply["review_reason"], reply["crisis_ids"]) == ("needs_review", "not_exposed", [])
    assert welfare_of(client, coordinator, scene, "maria")["history"] == []
    # Nor can a reply be assigned in it.
    response = client.patch(f"{INBOX}/{reply['id']}", headers=coordinator,
                            json={"national_id": scene["people"]["maria"], "crisis_id": scene["crisis"]})
    assert response.status_code == 409


def test_one_person_exposed_in_two_active_crises_waits_for_review(client, db, secret, coordinator, scene):
    second = declare(client, coordinator, circle(*DUBAI, 30), name="Dubai unrest")
    assert send(client, secret, MARIA, "HELP").status_code == 200
    (reply,) = replies(db)
    assert (reply["outcome"], reply["review_reason"], reply["welfare_status"]) == ("needs_review",
                                                                                   "several_crises",
                                                                                   "needs_assistance")
    assert set(reply["crisis_ids"]) == {uuid.UUID(scene["crisis"]), uuid.UUID(second["id"])}
    assert welfare_of(client, coordinator, scene, "maria")["history"] == []
    listed = client.get(INBOX, headers=coordinator, query_string={"crisis_id": second["id"]}).get_json()
    assert listed["total"] == 1
    response = client.patch(f"{INBOX}/{reply['id']}", headers=coordinator,
                            json={"national_id": scene["people"]["maria"], "crisis_id": second["id"]})
    assert response.status_code == 200, response.get_json()
    answer = client.get(f"/api/v1/crises/{second['id']}/welfare/{scene['people']['maria']}", headers=coordinator,
                        query_string=PURPOSE).get_json()
    assert answer["welfare_status"] == "needs_assistance"
    assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == "unknown"


@pytest.mark.parametrize("sender", ["+639171234567", "00639171234567", "639171234567", "09171234567",
                                    "0917 123 4567", "+63 (917) 123-4567"])
def test_sender_numbers_are_normalised_before_matching(client, db, secret, coordinator, scene, sender):
    assert send(client, secret, sender, "ligtas").status_code == 200
    assert welfare_of(client, coordinator, scene, "jun")["welfare_status"] == "safe"
    assert replies(db)[0]["phone"] == PH_SIM


def test_keywords_are_configurable(app, client, db, secret, coordinator, scene):
    setting = app.config["REGISTRY_SMS_KEYWORDS"]
    app.config["REGISTRY_SMS_KEYWORDS"] = '{"OK": "safe", "Tabang": "needs_assistance", "LIKAS": "needs_evacuation"}'
    try:
        send(client, secret, MARIA, "tabang po")
        assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == "needs_assistance"
        send(client, secret, MARIA, "ok")
        assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == "safe"
        send(client, secret, MARIA, "HELP")  # the defaults are replaced
        assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == "safe"
        send(client, secret, MARIA, "STOP")  # STOP stays
    finally:
        app.config["REGISTRY_SMS_KEYWORDS"] = setting
    assert [(r["keyword"], r["outcome"]) for r in replies(db)] == [
        ("TABANG", "applied"), ("OK", "applied"), (None, "needs_review"), ("STOP", "opted_out")]


@pytest.mark.parametrize("setting, says", [
    ("not json", "not JSON"),
    ('["SAFE"]', "JSON object"),
    ('{"SAFE": "fine"}', "'SAFE' means 'fine'"),
    ('{"TWO WORDS": "safe"}', "not one word"),
    ('{"ok": "safe", "OK": "needs_assistance"}', "two meanings"),
])
def test_a_bad_keyword_setting_fails_at_startup_naming_the_problem(setting, says):
    from registry.config import ConfigError
    with pytest.raises(ConfigError, match="REGISTRY_SMS_KEYWORDS") as raised:
        make_app(REGISTRY_SMS_KEYWORDS=setting)
    assert says in str(raised.value)


@pytest.mark.parametrize("headers, data, status, code", [
    ({}, {"from": MARIA, "text": "SAFE"}, 401, "hook-secret-missing"),
    ({"X-Sagip-Hook-Secret": "wrong"}, {"from": MARIA, "text": "SAFE"}, 403, "hook-secret-refused"),
    ({}, {"from": MARIA, "text": "SAFE", "secret": "wrong"}, 403, "hook-secret-refused"),
    ({"Authorization": "Bearer nope"}, {"from": MARIA, "text": "SAFE"}, 401, "hook-secret-missing"),
])
def test_without_the_right_secret_nothing_is_stored_and_the_refusal_is_counted(client, db, coordinator, scene,
                                                                              headers, data, status, code):
    response = client.post(HOOK, data=data, headers=headers)
    assert response.status_code == status and response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code
    assert replies(db) == [] and count(db, "welfare_events") == 0
    counted = db.session.execute(text("SELECT status, calls FROM audit_refused_calls")).all()
    assert [(row.status, row.calls) for row in counted] == [(status, 1)]


def test_a_secret_of_another_length_or_a_prefix_is_refused(client, db, secret, scene):
    for wrong in (secret[:-1], secret + "0", secret[:8], "", " " + secret):
        response = client.post(HOOK, data={"from": MARIA, "text": "SAFE"}, headers={"X-Sagip-Hook-Secret": wrong})
        assert response.status_code in (401, 403), wrong
    assert replies(db) == []


@pytest.mark.parametrize("data, field", [
    ({"text": "SAFE"}, "from"),
    ({"from": "", "text": "SAFE"}, "from"),
    ({"from": MARIA}, "text"),
    ({}, "from"),
])
def test_a_message_without_its_sender_or_text_is_422_naming_the_field(client, db, secret, data, field):
    response = client.post(HOOK, data=data, headers={"X-Sagip-Hook-Secret": secret})
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert replies(db) == []


def test_the_get_form_and_the_secret_as_a_field(client, db, secret, coordinator, scene):
    response = client.get(HOOK, query_string={"from": MARIA, "text": "3 need a boat", "secret": secret})
    assert response.status_code == 200 and response.get_data() == b""
    answer = welfare_of(client, coordinator, scene, "maria")
    assert (answer["welfare_status"], answer["note"]) == ("needs_evacuation", "need a boat")
    assert client.get(HOOK, query_string={"from": MARIA, "secret": secret}).status_code == 422
    response = client.post(HOOK, data={"from": MARIA, "text": "1", "secret": secret})
    assert response.status_code == 200
    assert welfare_of(client, coordinator, scene, "maria")["welfare_status"] == "safe"


def test_kannels_post_url_form_text_as_the_body_sender_in_a_header(client, db, secret, coordinator, scene):
    response = client.post(HOOK, data="TULONG naipit kami".encode(), content_type="text/plain",
                           headers={"X-Kannel-From": MARIA, "X-Sagip-Hook-Secret": secret})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = welfare_of(client, coordinator, scene, "maria")
    assert (answer["welfare_status"], answer["note"]) == ("needs_assistance", "naipit kami")
    # UCS-2 messages (Arabic script) come as UTF-16BE.
    body = "ساعدوني".encode("utf-16-be")
    response = client.post(f"{HOOK}?secret={secret}", data=body, content_type="text/plain; charset=UTF-16BE",
                           headers={"X-Kannel-From": FAMILY})
    assert response.status_code == 200
    assert replies(db)[-1]["text"] == "ساعدوني"
    # No sender anywhere: 422.
    response = client.post(HOOK, data=b"SAFE", content_type="text/plain", headers={"X-Sagip-Hook-Secret": secret})
    assert response.status_code == 422 and "from" in response.get_json()["errors"]


@pytest.mark.parametrize("kwargs", [
    {"data": {"from": MARIA, "text": "SAFE\x00 and a NUL"}},
    {"data": {"from": "\x00\x01+97150", "text": "x"}},
    {"data": {"from": "A" * 5000, "text": "1"}},
    {"data": {"from": MARIA, "text": "x" * 100_000}},
    {"data": b"\xff\xfe\xfd", "content_type": "text/plain; charset=no-such-charset",
     "headers": {"X-Kannel-From": MARIA}},
    {"data": b"\xed\xa0\x80 lone surrogate", "content_type": "text/plain", "headers": {"X-Kannel-From": MARIA}},
    {"data": b"%ff%fe=1&from=%ed%a0%80&text=%00", "content_type": "application/x-www-form-urlencoded"},
    {"data": b'{"from": "+971501110001", "text": "SAFE"}', "content_type": "application/json"},
    {"data": b"x" * 300_000, "content_type": "text/plain", "headers": {"X-Kannel-From": MARIA}},
])
def test_odd_input_is_never_a_server_error(client, db, secret, scene, kwargs):
    headers = {"X-Sagip-Hook-Secret": secret, **kwargs.pop("headers", {})}
    response = client.post(HOOK, headers=headers, **kwargs)
    assert response.status_code in (200, 413, 422), response.get_data(as_text=True)[:300]
    if response.status_code == 200:
        assert "\x00" not in replies(db)[-1]["text"]


def test_replies_of_a_closed_crisis_are_purged_with_its_records(app, client, db, secret, coordinator, scene):
    from registry import retention
    send(client, secret, MARIA, "SAFE")
    send(client, secret, UNKNOWN, "hello")
    client.patch(f"/api/v1/crises/{scene['crisis']}", headers=coordinator, json={"status": "closed"})
    assert retention.purge_closed_crises(days=1) == 0  # closed just now
    assert len(replies(db)) == 2
    db.session.execute(text("UPDATE crises SET closed_at = now() - interval '3 days'"))
    db.session.execute(text("UPDATE sms_replies SET received_at = now() - interval '3 days'"))
    db.session.commit()
    retention.purge_closed_crises(days=1)
    assert replies(db) == []
    purged = db.session.execute(text("SELECT result_count FROM audit_events "
                                     "WHERE action = 'retention.purge_sms_replies'")).scalar()
    assert purged == 2


def test_an_erased_nationals_replies_go(client, db, secret, desk, scene):
    send(client, secret, MARIA, "LIGTAS at my cousin's")
    assert client.delete(f"/api/v1/nationals/{scene['people']['maria']}", headers=desk).status_code in (200, 204)
    assert replies(db) == []


def test_the_inbox_filters_pages_and_marks_handled(client, db, secret, coordinator, scene):
    send(client, secret, MARIA, "SAFE")
    send(client, secret, FAMILY, "We are ok")
    send(client, secret, UNKNOWN, "Who is this")
    send(client, secret, MUSCAT, "?")
    page = client.get(INBOX, headers=coordinator, query_string={"limit": 2}).get_json()
    assert page["total"] == 4 and [i["text"] for i in page["items"]] == ["?", "Who is this"]
    rest = client.get(INBOX, headers=coordinator, query_string={"limit": 2, "cursor": page["next_cursor"]})
    assert [i["text"] for i in rest.get_json()["items"]] == ["We are ok", "SAFE"]
    unhandled = client.get(INBOX, headers=coordinator, query_string={"handled": "false"}).get_json()
    assert unhandled["total"] == 3
    assert client.get(INBOX, headers=coordinator, query_string={"outcome": "unknown_number"}).get_json()["total"] == 1
    in_crisis = client.get(INBOX, headers=coordinator, query_string={"crisis_id": scene["crisis"]}).get_json()
    assert {i["text"] for i in in_crisis["items"]} == {"SAFE", "We are ok"}
    target = unhandled["items"][0]["id"]
    done = client.patch(f"{INBOX}/{target}", headers=coordinator, json={"handled": True})
    assert done.status_code == 200 and done.get_json()["handled"] is True and done.get_json()["handled_by"]
    assert client.get(INBOX, headers=coordinator, query_string={"handled": "false"}).get_json()["total"] == 2
    undone = client.patch(f"{INBOX}/{target}", headers=coordinator, json={"handled": False})
    assert undone.get_json()["handled"] is False and undone.get_json()["handled_by"] is None


@pytest.mark.parametrize("body, field", [
    ({}, "handled"),
    ({"national_id": str(uuid.uuid4())}, "crisis_id"),
    ({"crisis_id": str(uuid.uuid4())}, "national_id"),
    ({"welfare_status": "safe"}, "national_id"),
    ({"handled": "maybe"}, "handled"),
    ({"welfare_status": "repatriated", "national_id": str(uuid.uuid4()), "crisis_id": str(uuid.uuid4())},
     "welfare_status"),
    ({"handled": True, "phone": "+971500000000"}, "phone"),
])
def test_bad_inbox_updates_are_422_and_change_nothing(client, db, secret, coordinator, scene, body, field):
    send(client, secret, FAMILY, "SAFE")
    (reply,) = replies(db)
    response = client.patch(f"{INBOX}/{reply['id']}", headers=coordinator, json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()
    assert replies(db) == [reply]


def test_the_inbox_follows_jurisdiction_and_roles(client, db, secret, make_user, scene):
    send(client, secret, MARIA, "We are ok")
    send(client, secret, MUSCAT, "fine here")
    _, dubai = make_user("embassy", ["AE"])
    _, oman = make_user("embassy", ["OM"])
    assert [i["text"] for i in client.get(INBOX, headers=dubai).get_json()["items"]] == ["We are ok"]
    assert [i["text"] for i in client.get(INBOX, headers=oman).get_json()["items"]] == ["fine here"]
    maria_reply = replies(db)[0]["id"]
    assert client.patch(f"{INBOX}/{maria_reply}", headers=oman, json={"handled": True}).status_code == 404
    assert client.patch(f"{INBOX}/{maria_reply}", headers=dubai, json={"handled": True}).status_code == 200
    # The Oman officer cannot assign someone else's reply, nor assign to a person outside their reach.
    muscat_reply = replies(db)[1]["id"]
    response = client.patch(f"{INBOX}/{muscat_reply}", headers=oman,
                            json={"national_id": scene["people"]["maria"], "crisis_id": scene["crisis"]})
    assert response.status_code == 404
    for role in ("desk", "auditor"):
        _, headers = make_user(role)
        assert client.get(INBOX, headers=headers).status_code == 403
        assert client.patch(f"{INBOX}/{maria_reply}", headers=headers, json={"handled": True}).status_code == 403


def test_replies_of_one_person_arriving_together_are_all_kept(app, client, db, secret, coordinator, scene):
    """Kannel posts replies concurrently: two of one phone at once must not lose either (the first creates the
    person's status row while the other waits on it)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda n: send(app.test_client(), secret, MARIA, f"SAFE message {n}").status_code,
                                 range(12)))
    assert statuses == [200] * 12
    assert len(replies(db)) == 12
    answer = welfare_of(client, coordinator, scene, "maria")
    assert answer["welfare_status"] == "safe" and answer["contact_attempts"] == 12


def test_the_access_log_never_carries_a_get_hooks_query(app):
    """Kannel's get-url puts the sender and the text in the query: gunicorn's access log writes the path only."""
    import logging

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from registry import gunicorn_conf
    assert "%(U)s" in gunicorn_conf.access_log_format
    assert not any(atom in gunicorn_conf.access_log_format for atom in ("%(r)s", "%(q)s", "%(f)s"))
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", gunicorn_conf.access_log_format)
    logger = Logger(config)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.access_log.addHandler(handler)

    class Response:
        status, response_length, sent, headers = "200 OK", 0, 0, []

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": HOOK, "QUERY_STRING": "from=%2B63917&text=LIGTAS&secret=s",
               "RAW_URI": f"{HOOK}?from=%2B63917&text=LIGTAS&secret=s", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1"}
    from datetime import timedelta
    logger.access(Response(), [], environ, timedelta(milliseconds=3))
    line = records[-1].getMessage()
    assert HOOK in line and "LIGTAS" not in line and "63917" not in line and "secret" not in line


def test_row_level_security_gives_an_embassy_scope_only_its_peoples_replies(client, db, secret, scene):
    """The second layer: raw SQL as the application role. Scope AE: the replies that matched Dubai's people;
    scope OM: Muscat's; no scope: none; an unknown number's reply only with every record in scope (*)."""
    from registry.auth import scope
    send(client, secret, MARIA, "We are ok")
    send(client, secret, MUSCAT, "ok here")
    send(client, secret, UNKNOWN, "hello")
    for setting, expected in (("AE", {"We are ok"}), ("OM", {"ok here"}), ("", set()),
                              ("*", {"We are ok", "ok here", "hello"})):
        scope.use(setting)
        assert set(db.session.execute(text("SELECT text FROM sms_replies")).scalars()) == expected, setting
        db.session.rollback()
    scope.use("OM")  # nor can that scope write a reply naming Dubai's people
    with pytest.raises(Exception, match="row-level security"):
        db.session.execute(text("INSERT INTO sms_replies (id, phone, text, outcome, national_ids) "
                                "VALUES (gen_random_uuid(), 'x', 'x', 'needs_review', ARRAY[CAST(:n AS uuid)])"),
                           {"n": scene["people"]["maria"]})
    db.session.rollback()
    scope.use_everything()
