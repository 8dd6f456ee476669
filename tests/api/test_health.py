"""GET /health/: database, broker and projection lag, for anyone."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from .conftest import database_unreachable

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.redis
def test_healthy_with_database_and_broker_up():
    response = APIClient().get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")
    assert body["projection_lag"] is None or body["projection_lag"] >= 0


def test_503_when_the_database_is_down():
    with database_unreachable():
        response = APIClient().get("/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert response.json()["status"] == "unavailable"
    assert APIClient().get("/health/").json()["database"] == "ok"


def test_broker_down_is_reported_but_not_fatal():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    try:
        url = f"redis://127.0.0.1:{blocker.getsockname()[1]}/0"
        with override_settings(CELERY_BROKER_URL=url):
            response = APIClient().get("/health/")
    finally:
        blocker.close()
    assert response.status_code == 200
    assert response.json()["broker"] == "unavailable"


def test_no_broker_configured_is_embedded():
    with override_settings(CELERY_BROKER_URL=""):
        assert APIClient().get("/health/").json()["broker"] == "embedded"


def test_a_bad_token_does_not_hide_health():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/health/").status_code == 200
