"""Every response carries the security headers that `check --deploy` asks for."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from tests.api.conftest import client_for, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": False,
    # The test client speaks to the app directly; the redirect to HTTPS is checked below.
    "SECURE_SSL_REDIRECT": False,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
}
EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
}
PAGES = [
    ("anonymous", "get", "/api/v1/events/", 401),
    ("reader", "get", "/api/v1/events/", 200),
    ("reader", "get", "/api/v1/deals/not-a-uuid/", 404),
    ("reader", "post", "/api/v1/deals/", 403),
    ("anonymous", "get", "/api/v1/nowhere/", 404),
    ("anonymous", "get", "/api/schema/", 200),
    ("anonymous", "get", "/api/docs/", 200),
    ("anonymous", "get", "/health/", 200),
    ("anonymous", "get", "/admin/", 302),
    ("anonymous", "get", "/admin/login/", 200),
    ("anonymous", "get", "/nowhere/", 404),
]


@pytest.mark.parametrize(("who", "method", "path", "status"), PAGES)
def test_response_carries_the_security_headers(who, method, path, status):
    with override_settings(**PRODUCTION):
        client = client_for(make_user("rita", "reader")) if who == "reader" else Client()
        response = getattr(client, method)(path, secure=True)
    assert response.status_code == status
    for header, value in EXPECTED.items():
        assert response.get(header) == value, header


def test_plain_http_is_redirected_to_https_when_asked():
    with override_settings(**{**PRODUCTION, "SECURE_SSL_REDIRECT": True}):
        response = Client().get("/api/v1/events/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/events/"


def test_the_production_settings_pass_check_deploy():
    """`manage.py check --deploy` with DEBUG off fails on any warning of the settings."""
    # As deployed: without what other tests set for themselves (the browser tests allow
    # synchronous database access from async code, which check --deploy rightly refuses).
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "deals.example.org",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
