"""Messaging the exposed from the console, in a real browser, through the real stack: the composer's dry run
shows counts, parts and encodings; Send (confirmed) reaches fakesmsc, and the page follows the campaign."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in_as
from tests.test_campaigns import scene  # noqa: F401  (fixture: five AE nationals, one QA, a crisis over both)
from tests.test_campaigns_sending import stack  # noqa: F401  (fixture: the gateways, emptied)
from tests.test_campaigns import coordinator  # noqa: F401


def test_a_coordinator_dry_runs_then_sends_and_sees_progress(page, console_user, client, scene, stack):
    operator = console_user("coordinator")
    sign_in_as(page, operator)
    page.goto(f"/console/crises/{scene['crisis']['id']}")
    page.get_by_role("link", name="Message the exposed").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Message the exposed")
    check_page(page, "campaigns")

    # An unknown placeholder is refused beside its field.
    page.get_by_label("English (en)").fill("Hello {name}")
    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("#template-en-error")).to_contain_text("{name}")
    expect(page.get_by_label("English (en)")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("English (en)").fill("{given_name}, are you safe? {checkin_link} Hotline {hotline}")
    page.get_by_role("button", name="Dry run").click()
    result = page.locator("#dry-run-result")
    expect(result).to_be_visible()
    expect(page.locator("#dry-recipients")).to_have_text("6")
    expect(page.locator("#dry-sms")).to_have_text("4")
    expect(page.locator("#dry-parts")).to_contain_text("UCS-2")
    expect(page.locator("#dry-skipped")).to_contain_text("opted out")
    check_page(page, "campaigns-dry-run")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#progress")).to_be_visible()
    stack.wait_for_sms(4, timeout=60)
    expect(page.locator("#progress-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#progress-sent")).to_have_text("4")
    check_page(page, "campaigns-sent")
    page.reload()
    expect(page.locator("#campaigns tbody tr")).to_have_count(1)
