"""The console in a real browser: Debian's Chromium driven by Playwright (pytest-playwright), against the
test application served over HTTP by a thread of this process (``live_server``, tests/gateway_stack.py),
with the real database, Redis and the session's Celery worker.

Every page a test opens is held to three rules, checked by fixtures rather than remembered:

* offline: the browser context refuses every request that leaves 127.0.0.1, and the test fails if a
  page tried one (``offline_guard``);
* accessible: ``check_page`` runs axe-core (``axe-playwright-python``) and fails on any serious or critical
  violation;
* pictures: with ``SAGIP_SCREENSHOTS=DIR`` set, ``check_page`` saves a screenshot named after the page
  (how the README's pictures are made: ``scripts/screenshots.sh``).
"""
from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit

import pytest

from tests.console_helpers import PASSWORD, make_console_user

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SERIOUS = {"serious", "critical"}


def _chromium() -> str:
    found = os.environ.get("SAGIP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: scripts/bootstrap.sh installs it (apt-get install chromium)")
    return found


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Root on CI: Chromium's sandbox needs user namespaces it may not have.
    return {**browser_type_launch_args, "executable_path": _chromium(), "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, live_server):
    return {**browser_context_args, "base_url": live_server, "viewport": {"width": 1280, "height": 860},
            "locale": "en-GB", "timezone_id": "UTC"}


@pytest.fixture
def offline_guard(context):
    """Refuse, and remember, every request that would leave this machine."""
    tried: list[str] = []

    def route(route, request):
        if urlsplit(request.url).hostname in LOCAL_HOSTS or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            tried.append(request.url)
            route.abort()

    context.route("**/*", route)
    return tried


@pytest.fixture
def page(page, offline_guard, db):
    """A page of a fresh browser context; fails the test if anything tried to leave 127.0.0.1."""
    page.set_default_timeout(20_000)
    yield page
    assert offline_guard == [], f"the console tried to reach the internet: {offline_guard[:5]}"


@pytest.fixture
def console_user(db):
    """``console_user(role, jurisdiction=())`` → the user (with the password ``PASSWORD``)."""

    def make(role: str = "desk", jurisdiction=()):
        user, _ = make_console_user(db, role, jurisdiction)
        return user

    return make


def sign_in_as(page, user, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would: by its labels."""
    page.goto("/console/login")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/")


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe
    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in SERIOUS]


def check_page(page, name: str) -> None:
    """The page as it stands: no serious or critical axe-core violation; a screenshot when asked for."""
    found = axe_violations(page)
    assert found == [], f"{name}: accessibility violations: {found}"
    folder = os.environ.get("SAGIP_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=False)
