"""Signing in and out in a real browser."""
from __future__ import annotations

from tests.browser.conftest import check_page, sign_in_as


def test_a_desk_officer_signs_in_and_out(page, console_user):
    user = console_user("desk")
    page.goto("/")
    page.wait_for_url("**/console/login?next=/console/")
    check_page(page, "login")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong password, clearly")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The username or the password is wrong."
    sign_in_as(page, user)
    assert page.get_by_role("heading", level=1).inner_text() == f"Good to see you, {user.name}"
    check_page(page, "home")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login?signed_out=1")
    page.goto("/console/")
    page.wait_for_url("**/console/login**")
