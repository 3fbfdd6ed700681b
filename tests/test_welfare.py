"""Welfare without a roster (SPEC §10): ``/api/v1/crises/{id}/welfare/{national_id}`` reads and records a
national's welfare in a crisis; exposure rows carry the latest status; the roster entry PATCH records through
the same service (the same status, the same history)."""
from __future__ import annotations

import uuid

import pytest

from tests.test_crises import DUBAI, circle, declare, register, rows
from tests.test_rosters import at, build, make_point

PURPOSE = {"purpose": "hotline welfare check"}


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


@pytest.fixture
def scene(client, desk, coordinator, db, celery_worker):
    """Two people around Dubai, one in Muscat (Oman, beyond the area), one Emirati far from it; a 60 km crisis
    on Dubai."""
    people = {"near": register(client, desk, *at(5), family_name="Nearone"),
              "also": register(client, desk, *at(8), family_name="Neartwo"),
              "muscat": register(client, desk, 23.588, 58.3829, host="OM", family_name="Muscatperson",
                                 deployment={"city": "Muscat"})}
    crisis = declare(client, coordinator, circle(*DUBAI, 60))
    return {"people": people, "crisis": crisis}


def url(scene, who: str) -> str:
    national = scene["people"].get(who, who)
    return f"/api/v1/crises/{scene['crisis']['id']}/welfare/{national}"


def test_unknown_then_a_hotline_call_then_its_history(client, coordinator, scene):
    before = client.get(url(scene, "near"), headers=coordinator, query_string=PURPOSE)
    assert before.status_code == 200, before.get_json()
    assert before.get_json() | {} == {**before.get_json(), "national_id": scene["people"]["near"],
                                      "crisis_id": scene["crisis"]["id"], "welfare_status": "unknown",
                                      "history": []}
    response = client.patch(url(scene, "near"), headers=coordinator, json={
        "welfare_status": "needs_evacuation", "note": "Water rising on the ground floor",
        "contact": {"channel": "phone", "outcome": "reached"}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["welfare_status"] == "needs_evacuation"
    second = client.patch(url(scene, "near"), headers=coordinator, json={"contact": {"channel": "phone",
                                                                                  "outcome": "no_answer"}})
    assert second.status_code == 200
    answer = client.get(url(scene, "near"), headers=coordinator, query_string=PURPOSE).get_json()
    assert answer["welfare_status"] == "needs_evacuation" and answer["reached"] is True
    assert answer["contact_attempts"] == 2 and answer["last_contact_outcome"] == "no_answer"
    history = answer["history"]
    assert [(h["welfare_status"], h["source"], h["note"]) for h in history] == [
        ("needs_evacuation", "hotline", "Water rising on the ground floor"), ("needs_evacuation", "hotline", None)]
    assert [h["contact"]["outcome"] for h in history] == ["reached", "no_answer"]
    assert all(h["at"] for h in history)
    # The exposure rows carry the latest status; the others are unknown.
    found = rows(client, coordinator, scene["crisis"]["id"])
    assert found[scene["people"]["near"]]["welfare_status"] == "needs_evacuation"
    assert found[scene["people"]["also"]]["welfare_status"] == "unknown"
    # ... and the list filters by it (those without news are "unknown").
    def filtered(status):
        answer = client.get(f"/api/v1/crises/{scene['crisis']['id']}/exposure", headers=coordinator,
                            query_string={**PURPOSE, "welfare_status": status})
        assert answer.status_code == 200, answer.get_json()
        return {r["national_id"] for r in answer.get_json()["items"]}
    assert filtered("needs_evacuation") == {scene["people"]["near"]}
    assert scene["people"]["also"] in filtered("unknown") and scene["people"]["near"] not in filtered("unknown")
    assert filtered("safe") == set()
    refused = client.get(f"/api/v1/crises/{scene['crisis']['id']}/exposure", headers=coordinator,
                         query_string={**PURPOSE, "welfare_status": "fine"})
    assert refused.status_code == 422 and "welfare_status" in refused.get_json()["errors"]
    csv = client.get(f"/api/v1/crises/{scene['crisis']['id']}/exposure", headers=coordinator,
                     query_string={**PURPOSE, "format": "csv"}).get_data(as_text=True)
    header, *lines = csv.strip().splitlines()
    assert "welfare_status" in header.split(",")
    assert any(line.startswith(scene["people"]["near"]) and line.endswith("needs_evacuation") for line in lines)


def test_not_exposed_unknown_crisis_or_national_are_404(client, coordinator, desk, scene):
    assert client.get(url(scene, "muscat"), headers=coordinator, query_string=PURPOSE).status_code == 404
    assert client.patch(url(scene, "muscat"), headers=coordinator,
                        json={"welfare_status": "safe"}).status_code == 404
    assert client.get(url(scene, str(uuid.uuid4())), headers=coordinator, query_string=PURPOSE).status_code == 404
    other = f"/api/v1/crises/{uuid.uuid4()}/welfare/{scene['people']['near']}"
    assert client.get(other, headers=coordinator, query_string=PURPOSE).status_code == 404
    assert client.patch(other, headers=coordinator, json={"welfare_status": "safe"}).status_code == 404
    # Nothing was recorded for the person who is not exposed.
    assert client.get(url(scene, "near"), headers=coordinator, query_string=PURPOSE).get_json()["history"] == []


@pytest.mark.parametrize("body, field", [
    ({"welfare_status": "fine"}, "welfare_status"),
    ({"welfare_status": "safe", "contact": {"channel": "pigeon", "outcome": "reached"}}, "contact"),
    ({"contact": {"channel": "phone"}}, "contact"),
    ({}, "welfare_status"),
    ({"welfare_status": "safe", "source": "sms"}, "source"),
])
def test_bad_updates_are_422_and_change_nothing(client, coordinator, scene, body, field):
    response = client.patch(url(scene, "near"), headers=coordinator, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    answer = client.get(url(scene, "near"), headers=coordinator, query_string=PURPOSE).get_json()
    assert (answer["welfare_status"], answer["history"]) == ("unknown", [])


def test_reading_needs_a_purpose(client, coordinator, scene):
    response = client.get(url(scene, "near"), headers=coordinator)
    assert response.status_code == 400
    assert client.get(url(scene, "near"), headers=coordinator, query_string={"purpose": "x"}).status_code == 400


def test_embassy_officers_reach_only_their_jurisdiction_and_roles_are_checked(client, make_user, scene):
    _, dubai_embassy = make_user("embassy", ["AE"])
    _, oman_embassy = make_user("embassy", ["OM"])
    _, desk = make_user("desk")
    _, auditor = make_user("auditor")
    assert client.patch(url(scene, "near"), headers=dubai_embassy,
                        json={"welfare_status": "safe"}).status_code == 200
    assert client.get(url(scene, "near"), headers=oman_embassy, query_string=PURPOSE).status_code == 404
    assert client.patch(url(scene, "near"), headers=oman_embassy,
                        json={"welfare_status": "missing"}).status_code == 404
    for headers in (desk, auditor):
        assert client.get(url(scene, "near"), headers=headers, query_string=PURPOSE).status_code == 403
        assert client.patch(url(scene, "near"), headers=headers, json={"welfare_status": "safe"}).status_code == 403
    assert client.get(url(scene, "near"), headers=dubai_embassy,
                      query_string=PURPOSE).get_json()["welfare_status"] == "safe"


def test_the_roster_entry_and_the_hotline_share_one_status_and_history(client, coordinator, scene):
    point = make_point(client, coordinator, "Dubai shelter", *DUBAI, 10)
    roster = build(client, coordinator, scene["crisis"]["id"], assembly_point_ids=[point])
    near = scene["people"]["near"]
    entry = f"/api/v1/rosters/{roster['id']}/entries/{near}"
    assert client.patch(url(scene, "near"), headers=coordinator,
                        json={"welfare_status": "needs_assistance"}).status_code == 200
    response = client.patch(entry, headers=coordinator, json={"welfare_status": "evacuated",
                                                              "contact": {"channel": "sms", "outcome": "reached"}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["welfare"]["status"] == "evacuated"
    assert [(h["status"], h["source"]) for h in response.get_json()["history"]] == [
        ("needs_assistance", "hotline"), ("evacuated", "hotline")]
    answer = client.get(url(scene, "near"), headers=coordinator, query_string=PURPOSE).get_json()
    assert answer["welfare_status"] == "evacuated"
    assert [h["roster_id"] for h in answer["history"]] == [None, roster["id"]]
