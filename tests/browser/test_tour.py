"""A tour of every console page, as the demo's users, with the demo's data: each page is held to the
offline rule (the ``page`` fixture) and to axe-core, and with ``SAGIP_SCREENSHOTS=DIR`` each is
photographed — the README's pictures come from here (``scripts/screenshots.sh``)."""
from __future__ import annotations

import itertools
import re

import pytest

from tests.browser.conftest import check_page

# (role, path or a function of the demo's ids, screenshot name, what must be on the page)
TOUR = (
    ("desk", "/console/", "home", "Your recent work"),
    ("desk", "/console/nationals/new", "register", "Register"),
    ("desk", "/console/nationals", "nationals", "Nationals"),
    ("desk", "national", "national", "Location history"),
    ("desk", "/console/imports", "imports", "Import"),
    ("embassy", "/console/map", "map", "Map"),
    ("coordinator", "/console/crises", "crises", "Crises"),
    ("coordinator", "/console/crises/new", "crisis_new", "Declare"),
    ("coordinator", "crisis", "crisis", "Demo: flash flood, Dubai"),
    ("embassy", "calls", "calls", "Demo: flash flood, Dubai"),
    ("coordinator", "roster", "roster", "Roster"),
    ("coordinator", "messages", "campaigns", "Message the exposed"),
    ("coordinator", "/console/inbox", "inbox", "SMS inbox"),
    ("coordinator", "/console/verification", "verification", "Bautista"),
    ("coordinator", "/console/assembly-points", "assembly_points", "Assembly points"),
    ("analyst", "/console/statistics#result", "statistics", "Nationals abroad at the end of"),
    ("auditor", "/console/audit", "audit", "Audit"),
    ("admin", "/console/users", "users", "Users"),
)


@pytest.fixture
def demo(app, db):
    """The demo's data and users (``registry demo``, a small one); {username: password}, and its ids."""
    from sqlalchemy import text
    result = app.test_cli_runner().invoke(args=["demo", "--nationals", "400"])
    assert result.exit_code == 0, result.output
    listed = itertools.takewhile(lambda line: line.startswith("  "),
                                 result.output[result.output.index("Console sign-in"):].splitlines()[1:])
    passwords = dict(line.split() for line in listed)
    assert set(passwords) >= {role for role, *_ in TOUR}, passwords
    db.session.rollback()
    ids = db.session.execute(text("""
        SELECT c.id AS crisis, r.id AS roster,
               (SELECT e.national_id FROM exposures e WHERE e.run_id = r.run_id LIMIT 1) AS national
          FROM crises c JOIN rosters r ON r.crisis_id = c.id LIMIT 1""")).one()
    return passwords, {"crisis": f"/console/crises/{ids.crisis}", "calls": f"/console/crises/{ids.crisis}/calls",
                       "roster": f"/console/rosters/{ids.roster}", "national": f"/console/nationals/{ids.national}",
                       "messages": f"/console/crises/{ids.crisis}/messages"}


def test_every_page_of_the_tour_is_offline_and_accessible(page, demo):
    passwords, paths = demo
    signed_in_as = None
    for role, where, name, expected in TOUR:
        if role != signed_in_as:
            page.context.clear_cookies()
            page.goto("/console/login")
            page.get_by_label("Username").fill(role)
            page.get_by_label("Password").fill(passwords[role])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/")
            signed_in_as = role
        page.goto(paths.get(where, where))
        page.wait_for_load_state("networkidle")
        assert re.search(re.escape(expected), page.inner_text("main")), f"{name}: {expected!r} not shown"
        check_page(page, name)


def test_the_public_pages_a_person_opens_from_a_message(page, demo, app):
    """A person's own check-in (the link a campaign sends) and the self-registration page of the demo crisis,
    on a phone-sized screen: offline, accessible, photographed for the README."""
    from sqlalchemy import text

    from registry.auth import scope
    from registry.checkin import links
    from registry.extensions import db
    with app.app_context():
        scope.use_everything()
        crisis, national = db.session.execute(text(
            "SELECT c.id, e.national_id FROM crises c JOIN exposure_runs r ON r.crisis_id = c.id "
            "JOIN exposures e ON e.run_id = r.id JOIN nationals n ON n.id = e.national_id "
            "WHERE r.status = 'succeeded' AND n.date_of_birth IS NOT NULL LIMIT 1")).one()
        url = links.ensure_many(crisis, [national])[national]
        db.session.commit()
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in ((url.split("/checkin/", 1)[1], "checkin"), (f"register/{crisis}", "checkin_register")):
        page.goto(f"/checkin/{path}")
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").count() == 1 and page.locator("form").count() == 1
        check_page(page, name)
