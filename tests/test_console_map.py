"""``/console/map`` through the Flask client: who may open it, the filters offered per role, a bad filter
beside its field, the crises drawn over it, and the API the page's script calls with the session."""
from __future__ import annotations

import json

import lxml.html
import pytest

from tests.console_helpers import make_console_user, sign_in
from tests.test_crises import DUBAI, circle, declare, register

PAGE = "/console/map"


def signed_in(client, db, role, jurisdiction=()):
    user, username = make_console_user(db, role, jurisdiction)
    assert sign_in(client, username).status_code in (302, 303)
    return user


@pytest.mark.parametrize("role", ["desk", "auditor"])
def test_roles_without_the_map_are_refused(client, db, role):
    signed_in(client, db, role)
    assert client.get(PAGE).status_code == 403


def test_embassy_officer_sees_the_page_filters_and_crises(client, db, desk, make_user, celery_worker):
    _, coordinator = make_user("coordinator")
    register(client, desk, *DUBAI, passport_number="P7000001A")
    register(client, desk, 25.2854, 51.5310, host="QA", passport_number="P7000002A")
    declare(client, coordinator, circle(*DUBAI, 20), zones=(50,), name="Dubai flood")
    signed_in(client, db, "embassy", ["AE"])
    response = client.get(PAGE)
    assert response.status_code == 200
    html = lxml.html.fromstring(response.get_data(as_text=True))
    main = html.get_element_by_id("nationals-map")
    crises = json.loads(main.get("data-crises"))
    assert [c["name"] for c in crises] == ["Dubai flood"] and [r["km"] for r in crises[0]["rings"]] == [50]
    assert crises[0]["area"]["type"] in ("Polygon", "MultiPolygon")
    south, west = json.loads(main.get("data-bounds"))[0]
    assert 20 < south < 26 and 50 < west < 56  # their people (Dubai), not Doha's
    for label in ("Status", "Vulnerability", "Location certainty"):
        assert html.xpath(f'//label[text()="{label}"]')
    # The page's script calls the API with the session cookie.
    answer = client.get("/api/v1/map/nationals?bbox=50,20,60,30&zoom=6")
    assert answer.status_code == 200 and answer.get_json()["total"] == 1


def test_a_coordinator_is_not_offered_the_vulnerability_filter(client, db):
    signed_in(client, db, "coordinator")
    html = lxml.html.fromstring(client.get(PAGE).get_data(as_text=True))
    assert not html.xpath('//select[@name="vulnerability"]') and html.xpath('//select[@name="status"]')
    response = client.get(PAGE + "?vulnerability=pregnant")
    assert response.status_code == 422
    assert "filter-vulnerability-error" not in response.get_data(as_text=True)  # not offered, still refused


def test_a_bad_filter_comes_back_beside_its_field(client, db):
    signed_in(client, db, "embassy", ["AE"])
    response = client.get(PAGE + "?status=lost&certainty=high")
    assert response.status_code == 422
    html = lxml.html.fromstring(response.get_data(as_text=True))
    select = html.get_element_by_id("filter-status")
    assert select.get("aria-invalid") == "true" and select.get("aria-describedby") == "filter-status-error"
    assert html.get_element_by_id("filter-status-error").text_content()
    assert html.xpath('//select[@id="filter-certainty"]/option[@selected]/@value') == ["high"]
