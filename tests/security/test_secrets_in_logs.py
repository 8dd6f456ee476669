"""No token, password or secret key reaches a log, SQL logged at DEBUG included."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import OCCURRED, SOURCE, make_organisation

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "Sup3r-secret-passphrase-for-logs"
WRONG_PASSWORD = "Wr0ng-secret-passphrase-for-logs"


class Everything(logging.Handler):
    """Keeps each record as the text any formatter could write: message, extras, traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self.formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), repr(record.__dict__)]
        if record.exc_info:
            parts.append(self.formatter.formatException(record.exc_info))
        self.texts.append("\n".join(parts))


@pytest.fixture
def every_record() -> Iterator[Everything]:
    """Every logger at DEBUG (the access log, django.request, SQL), into one handler."""
    handler = Everything()
    root = logging.getLogger()
    names = [name for name in logging.root.manager.loggerDict if isinstance(name, str)]
    loggers = [root, *(logging.getLogger(name) for name in names), logging.getLogger("knox")]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    # SQL with its parameters is logged only by a debug cursor.
    connection.force_debug_cursor = True
    try:
        yield handler
    finally:
        connection.force_debug_cursor = False
        root.removeHandler(handler)
        for logger, level in levels.items():
            logger.setLevel(level)


def test_tokens_passwords_and_the_secret_key_never_reach_a_log(every_record):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_user",
        "logan",
        "--role",
        "editor",
        "--password",
        PASSWORD,
        stdout=out,
        stderr=err,
    )
    token = out.getvalue().strip()
    assert len(token) == 64
    call_command("create_api_user", "logan", "--role", "editor", stdout=out, stderr=err)
    second_token = out.getvalue().split()[-1]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    org = make_organisation()
    opening = {
        "title": "Logged deal",
        "kind": "other",
        "parties": [{"organisation": str(org), "role": "partner"}],
        "occurred": OCCURRED,
        "source": SOURCE,
    }
    assert api.post("/api/v1/deals/", opening, format="json").status_code == 201
    assert api.get("/api/v1/deals/").status_code == 200
    # A token in the query string (refused: no endpoint takes `token`), a bad body, and a
    # near-miss token.
    assert api.get(f"/api/v1/events/?token={token}").status_code == 400
    assert api.post("/api/v1/deals/", b"{", content_type="application/json").status_code == 400
    near = APIClient()
    near.credentials(HTTP_AUTHORIZATION=f"Token {token[:-1]}x")
    assert near.get("/api/v1/events/").status_code == 401
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Token {second_token}")
    assert second.get("/api/v1/events/").status_code == 200

    browser = Client()
    failed = browser.post("/admin/login/", {"username": "logan", "password": WRONG_PASSWORD})
    assert failed.status_code == 200
    logged_in = browser.post("/admin/login/", {"username": "logan", "password": PASSWORD})
    assert logged_in.status_code == 200  # an editor without is_staff sees the form again
    assert browser.login(username="logan", password=PASSWORD) is True
    assert browser.get("/api/v1/events/").status_code == 200

    texts = "\n".join(every_record.texts)
    assert "tracker.access" in texts  # the access log was captured
    assert "SELECT" in texts  # and the SQL
    for secret in (token, second_token, PASSWORD, WRONG_PASSWORD, settings.SECRET_KEY):
        assert secret not in texts
