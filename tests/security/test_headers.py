"""Every response carries the security headers that `check --deploy` asks for, a
Content-Security-Policy and a Permissions-Policy; authenticated API answers are not stored."""

from __future__ import annotations

import os
import re
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
    policy = csp(response)
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    if path != "/api/docs/":
        assert policy["script-src"] == ["'self'"]
    assert "camera=()" in response["Permissions-Policy"]


def csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy of `response`, as {directive: [sources]}."""
    directives = [part.split() for part in response["Content-Security-Policy"].split(";")]
    return {name: sources for name, *sources in directives}


# The admin login page, Swagger UI, an authenticated API answer and the health check, as a
# browser would ask for them.
PAGES_AS_BROWSED = ["/admin/login/", "/api/docs/", "/api/v1/deals/", "/health/"]


@pytest.mark.parametrize("path", PAGES_AS_BROWSED)
def test_pages_load_script_only_from_this_origin(path):
    client = client_for(make_user("rita", "reader"))
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    policy = csp(response)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert "*" not in response["Content-Security-Policy"]
    assert policy["form-action"] == ["'self'"]
    if path != "/api/docs/":
        assert policy["script-src"] == ["'self'"]
        assert not re.search(rb"<script(?![^>]*\bsrc=)(?![^>]*application/json)", response.content)


def test_swagger_ui_runs_no_inline_script():
    page = Client().get("/api/docs/").content
    assert not re.search(rb"<script(?![^>]*\bsrc=)", page)


@pytest.mark.parametrize("path", PAGES_AS_BROWSED)
def test_pages_turn_off_browser_features_the_product_never_uses(path):
    response = Client().get(path)
    features = dict(item.split("=") for item in response["Permissions-Policy"].split(", "))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "fullscreen"):
        assert features[feature] == "()", feature


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/deals/", 200),
        ("/api/v1/events/", 200),
        ("/api/v1/deals/00000000-0000-4000-8000-000000000000/", 404),
        ("/api/v1/nowhere/", 404),
        ("/api/schema/", 200),
    ],
)
def test_api_answers_to_a_token_are_not_stored(path, status):
    response = client_for(make_user("rita", "reader")).get(path)
    assert response.status_code == status
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives


def test_api_answers_to_a_session_are_not_stored():
    client = Client()
    client.force_login(make_user("rita", "reader"))
    response = client.get("/api/v1/deals/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"response-info" in response.content  # the browsable API
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives


def test_a_refused_token_is_answered_without_being_stored():
    response = Client().get("/api/v1/deals/", HTTP_AUTHORIZATION="Token " + "0" * 64)
    assert response.status_code == 401
    assert "no-store" in response["Cache-Control"]


def test_anonymous_public_answers_are_left_cacheable():
    assert "no-store" not in Client().get("/health/").get("Cache-Control", "")


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
