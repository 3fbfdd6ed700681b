"""The SMS inbox in a real browser, against the live app: a coordinator reads the replies that need a person,
assigns a shared family phone's reply to one of them and marks an unknown number's reply handled, by keyboard
alone; the status is stored as the API reads it."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.test_replies import (FAMILY, MARIA, UNKNOWN, coordinator, replies, scene, secret,  # noqa: F401
                                send, welfare_of)


def test_a_coordinator_assigns_and_handles_replies_by_keyboard(page, console_user, client, db, secret, coordinator,
                                                               scene):
    send(client, secret, MARIA, "SAFE")
    send(client, secret, FAMILY, "LIGTAS kaming dalawa")
    send(client, secret, UNKNOWN, "Bagong numero ko ito, si Ana")
    officer = console_user("coordinator")
    sign_in_as(page, officer)
    page.get_by_role("link", name="Inbox").click()
    page.wait_for_url("**/console/inbox")
    cards = page.locator("article.reply")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("Bagong numero ko ito")
    expect(cards.nth(0)).to_contain_text("Unknown number")
    expect(cards.nth(1)).to_contain_text("several exposed people share this number")
    expect(cards.nth(1).get_by_role("link", name="Reyes, Rosa")).to_be_visible()
    check_page(page, "inbox")

    # j moves to the first reply, j again to the second; Tab reaches its controls.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    expect(cards.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(cards.nth(1)).to_be_focused()
    shared = cards.nth(1)
    page.keyboard.press("Tab")  # the person's link
    page.keyboard.press("Tab")  # the other person's link
    page.keyboard.press("Tab")  # the crisis link
    page.keyboard.press("Tab")  # Mark handled
    expect(shared.get_by_role("button", name="Mark handled")).to_be_focused()
    page.keyboard.press("Tab")  # the person
    person = shared.get_by_label("Person")
    expect(person).to_be_focused()
    person.select_option(label="Reyes, Rosa")
    page.keyboard.press("Tab")  # crisis
    page.keyboard.press("Tab")  # status
    page.keyboard.press("Tab")  # Assign
    expect(shared.get_by_role("button", name="Assign and record")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#inbox-status")).to_contain_text("Assigned")
    assert welfare_of(client, coordinator, scene, "mother")["welfare_status"] == "safe"
    assert welfare_of(client, coordinator, scene, "father")["welfare_status"] == "unknown"

    # h marks the focused reply handled: the inbox is empty.
    expect(cards).to_have_count(1)
    page.keyboard.press("j")
    expect(cards.nth(0)).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("h")
    expect(page.locator("#inbox-empty")).to_be_visible()
    check_page(page, "inbox-empty")
    handled = {r["text"]: r["handled_by"] for r in replies(db)}
    assert handled["Bagong numero ko ito, si Ana"] == officer.id
    assert handled["LIGTAS kaming dalawa"] == officer.id
