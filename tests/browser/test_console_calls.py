"""The hotline story in a real browser, against the live app and the real worker: an embassy operator works
the call list with the keyboard alone, and the statuses are stored as the API reads them."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.test_console_calls import make_people
from tests.test_crises import DUBAI, circle, declare

PURPOSE = {"purpose": "hotline story check"}


def test_an_embassy_operator_marks_three_people_by_keyboard_alone(page, console_user, client, db, desk,
                                                                  make_user):
    _, coordinator = make_user("coordinator")
    people = make_people(client, desk, coordinator)
    crisis = declare(client, coordinator, circle(*DUBAI, 60), name="Gulf floods")
    operator = console_user("embassy", ["AE"])
    sign_in_as(page, operator)
    url = f"/console/crises/{crisis['id']}/calls"
    page.goto(url)
    main = page.locator("main")
    expect(main).to_contain_text("Gulf floods")
    expect(page.locator("#count-to-call")).to_have_text("4")
    expect(page.locator("#start")).to_be_focused()  # the page starts where the work starts
    page.keyboard.press("Enter")
    expect(page.locator("#person-heading")).to_be_visible()
    check_page(page, "calls")

    names = {people[key]: key for key in people}
    marked = {}
    # (outcome key, status key, a note typed after two Tabs or none, the status it stands for)
    for outcome, status, note, expected in (("1", "s", None, "safe"),
                                            ("1", "e", "Ground floor flooded", "needs_evacuation"),
                                            ("2", "a", None, "needs_assistance")):
        national_id = page.locator('input[name="national_id"]').get_attribute("value")
        assert national_id in names and national_id not in marked
        page.keyboard.press(outcome)
        page.keyboard.press(status)
        expect(page.locator(f'input[name="welfare_status"][data-key="{status}"]')).to_be_checked()
        expect(page.locator(f'input[name="outcome"][data-key="{outcome}"]')).to_be_checked()
        if note:
            page.keyboard.press("Tab")  # the channel
            page.keyboard.press("Tab")  # the note
            expect(page.get_by_label("Note")).to_be_focused()
            page.keyboard.type(note)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator("#call-status")).to_contain_text("Saved")
        marked[national_id] = (expected, note)

    # The next person is already claimed; three are stored as the API reads them.
    assert page.locator('input[name="national_id"]').get_attribute("value") not in marked
    for national_id, (expected, note) in marked.items():
        answer = client.get(f"/api/v1/crises/{crisis['id']}/welfare/{national_id}", headers=coordinator,
                            query_string=PURPOSE).get_json()
        assert answer["welfare_status"] == expected, (names[national_id], answer)
        assert answer["history"][-1]["source"] == "hotline" and answer["history"][-1]["note"] == note
    expect(page.locator("#count-reached")).to_have_text("2")
    expect(page.locator("#count-settled")).to_have_text("1")
