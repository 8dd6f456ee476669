"""Under the Content-Security-Policy every page still works in a real browser, with no violation.

Chromium reports each script, style or feature a policy refused on its console; the pages are
the admin's (login, lists, forms, the audit timeline), Swagger UI and the browsable API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth.models import User

from tests.backoffice.conftest import CHROMIUM, PASSWORD, open_deal, organisations, superuser

__all__ = ["open_deal", "organisations", "superuser"]  # fixtures, shared with tests/backoffice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Browse = Callable[..., Any]


@pytest.fixture(scope="module")
def browse() -> Iterator[Browse]:
    """Runs `scenario(browser, *args)` on a headless Chromium, in a thread of its own.

    Playwright's sync API holds an event loop in the thread that starts it, and the admin
    tests' browser holds the main thread's for the whole session: a second one there fails.
    """
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `scripts/install-system-packages.sh browser`")
    sync_api = pytest.importorskip("playwright.sync_api")
    thread = ThreadPoolExecutor(max_workers=1)

    def start() -> tuple[Any, Any]:
        playwright = sync_api.sync_playwright().start()
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        return playwright, browser

    playwright, browser = thread.submit(start).result(timeout=120)

    def run(scenario: Callable[..., Any], *args: Any) -> Any:
        return thread.submit(scenario, browser, *args).result(timeout=180)

    try:
        yield run
    finally:
        thread.submit(lambda: (browser.close(), playwright.stop())).result(timeout=60)
        thread.shutdown()


def open_page(browser: Any, base_url: str, username: str | None = None) -> tuple[Any, list[str]]:
    """A page in a fresh context, logged in to the admin as `username` if given, and the list
    of what its console reports from then on (the favicon that these pages lack aside)."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(15_000)
    seen: list[str] = []

    def console(message: Any) -> None:
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type in ("error", "warning"):
            seen.append(f"{message.type}: {message.text} ({message.location.get('url')})")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.append(f"pageerror: {error}"))
    if username:
        page.goto(f"{base_url}/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_load_state()
        assert page.url == f"{base_url}/admin/", "logged in"
    return page, seen


def visit(page: Any, url: str) -> int:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    return response.status


def test_the_admin_works_under_the_policy(
    browse: Browse, superuser: User, open_deal: Callable[..., UUID], live_server: Any
) -> None:
    deal = open_deal(mou=True)
    paths = [
        "/admin/",
        "/admin/projections/dealstate/",
        f"/admin/projections/dealstate/{deal}/change/",
        f"/admin/projections/dealstate/{deal}/audit/",
        f"/admin/projections/dealstate/{deal}/record/NoteAdded/",
        "/admin/projections/dealstate/open/",
        "/admin/eventstore/event/",
        "/admin/auth/user/",
        f"/admin/auth/user/{superuser.pk}/change/",
        "/admin/deals/organisation/add/",
    ]

    def scenario(browser: Any) -> None:
        page, seen = open_page(browser, live_server.url)
        assert visit(page, f"{live_server.url}/admin/login/") == 200
        assert seen == [], seen
        page, seen = open_page(browser, live_server.url, superuser.username)
        assert seen == [], seen
        for path in paths:
            assert visit(page, live_server.url + path) == 200, path
            assert seen == [], f"{path}: {seen}"
        # The admin's own scripts ran: the record form's autocomplete picked an organisation.
        page.goto(f"{live_server.url}/admin/projections/dealstate/open/")
        page.fill("[data-for=id_data-parties-0-organisation]", "baykar")
        assert page.input_value("#id_data-parties-0-organisation") != ""
        # The audit timeline places its bars with inline style attributes: they apply.
        page.goto(f"{live_server.url}/admin/projections/dealstate/{deal}/audit/")
        assert page.locator(".dt-bar").first.evaluate("bar => bar.style.left") != ""
        assert seen == [], seen

    browse(scenario)


def test_swagger_ui_renders_the_schema_under_the_policy(browse: Browse, live_server: Any) -> None:
    def scenario(browser: Any) -> None:
        page, seen = open_page(browser, live_server.url)
        assert visit(page, f"{live_server.url}/api/docs/") == 200
        page.wait_for_selector(".opblock")
        assert page.locator(".opblock").count() > 10
        assert seen == [], seen

    browse(scenario)


def test_the_browsable_api_works_under_the_policy(
    browse: Browse, superuser: User, open_deal: Callable[..., UUID], live_server: Any
) -> None:
    deal = open_deal()

    def scenario(browser: Any) -> None:
        page, seen = open_page(browser, live_server.url, superuser.username)
        for path in ("/api/v1/deals/", f"/api/v1/deals/{deal}/", "/api/v1/organisations/"):
            assert visit(page, live_server.url + path) == 200, path
            assert page.locator(".response-info").count() == 1, path
            assert seen == [], f"{path}: {seen}"
        # Its scripts ran: the GET button's menu of formats opens.
        page.click("#get-form .dropdown-toggle")
        assert page.locator("#get-form .dropdown-menu").is_visible()
        assert seen == [], seen

    browse(scenario)
