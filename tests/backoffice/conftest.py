"""A headless Chromium (the Debian package) driven by Playwright, users of each role, a deal."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tracker.deals import services
from tracker.deals.models import Organisation

# Playwright's sync API runs an event loop in the test thread; Django's async-safety check
# would otherwise refuse the ORM calls the tests make between browser steps.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
# The README's screenshots are refreshed only on request (UPDATE_SCREENSHOTS=1), so that a
# test run leaves the checkout as it found it.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "dealtracker-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
PASSWORD = "a-long-test-password"
SOURCE = {"title": "Turkish drone makers court Europe", "publisher": "unknown"}
YEAR_2025 = {"date": "2025-01-01", "precision": "year"}

BAYKAR = UUID("00000000-0000-4000-8000-00000000ba01")
LEONARDO = UUID("00000000-0000-4000-8000-00000000ba02")
LBA = UUID("00000000-0000-4000-8000-00000000ba03")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `scripts/install-system-packages.sh browser`")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def login(browser: object, live_server: object) -> Iterator[Callable[[User], object]]:
    """A fresh browser session logged in to the admin as the given user; returns its page."""
    contexts = []

    def open_as(user: User) -> object:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_load_state()
        return page

    yield open_as
    for context in contexts:
        context.close()


def make_user(
    username: str, *, groups: tuple[str, ...] = (), staff: bool = True, superuser: bool = False
) -> User:
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        is_staff=staff,
        is_superuser=superuser,
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def client_for(user: User) -> Client:
    """Django's test client, logged in as `user`."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser(db: None) -> User:
    return make_user("admin", superuser=True)


@pytest.fixture
def auditor(db: None) -> User:
    return make_user("auditor", groups=("auditor",))


@pytest.fixture
def editor(db: None) -> User:
    return make_user("editor", groups=("editor",))


@pytest.fixture
def organisations(db: None) -> dict[str, UUID]:
    for org_id, name, short, kind, country in [
        (BAYKAR, "Baykar Technologies", "Baykar", "company", "TR"),
        (LEONARDO, "Leonardo", "", "company", "IT"),
        (LBA, "LBA Systems", "LBA", "joint_venture", "IT"),
    ]:
        Organisation.objects.create(
            id=org_id, name=name, short_name=short, kind=kind, country=country
        )
    return {"baykar": BAYKAR, "leonardo": LEONARDO, "lba": LBA}


@pytest.fixture
def open_deal(organisations: dict[str, UUID]) -> Callable[..., UUID]:
    """Open a Baykar-Leonardo deal through the services; optionally with its MoU signed."""

    def build(*, title: str = "Baykar and Leonardo", mou: bool = False) -> UUID:
        appended = services.open_deal(
            title=title,
            kind="joint_venture",
            summary="",
            parties=[
                {"organisation": str(BAYKAR), "role": "partner"},
                {"organisation": str(LEONARDO), "role": "partner"},
            ],
            occurred=YEAR_2025,
            source=SOURCE,
            actor="fixture",
        )
        if mou:
            services.record_event(
                deal_id=appended.stream_id,
                event_type="MouSigned",
                data={"parties": [str(BAYKAR), str(LEONARDO)], "scope": ""},
                occurred=YEAR_2025,
                source=SOURCE,
                expected_version=1,
                actor="fixture",
            )
        return appended.stream_id

    return build
