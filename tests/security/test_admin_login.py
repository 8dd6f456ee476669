"""Login to the admin is throttled per (username, address) against password guessing."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, override_settings

from tracker.api.login_throttle import failure_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LOGIN = "/admin/login/"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def staff() -> User:
    user = User.objects.create_user("ops", password=PASSWORD, is_staff=True, is_superuser=True)
    yield user
    # The cache may be the shared Redis: leave no count behind for another test.
    for name in ("ops", "OPS", "someone-else"):
        for address in ("127.0.0.1", "10.0.0.2"):
            cache.delete(failure_key(name, address))


def attempt(password: str, *, username: str = "ops", address: str = "127.0.0.1") -> int:
    response = Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}
    )
    return response.status_code


@override_settings(ADMIN_LOGIN_MAX_FAILURES=3, ADMIN_LOGIN_WINDOW_SECONDS=60)
def test_after_too_many_failures_even_the_right_password_is_refused(staff):
    assert [attempt(f"guess-{n}") for n in range(3)] == [200, 200, 200]
    response = Client(REMOTE_ADDR="127.0.0.1").post(
        LOGIN, {"username": "ops", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in response.client.session
    # The same name in other letters is the same account.
    assert attempt(PASSWORD, username="OPS") == 429


@override_settings(ADMIN_LOGIN_MAX_FAILURES=3, ADMIN_LOGIN_WINDOW_SECONDS=60)
def test_the_lock_is_per_username_and_address(staff):
    for n in range(3):
        attempt(f"guess-{n}")
    assert attempt(PASSWORD) == 429
    # From another address the owner still logs in; another account from here is not locked.
    assert attempt(PASSWORD, address="10.0.0.2") == 302
    assert attempt("wrong", username="someone-else") == 200


@override_settings(ADMIN_LOGIN_MAX_FAILURES=3, ADMIN_LOGIN_WINDOW_SECONDS=60)
def test_a_successful_login_clears_the_count(staff):
    assert [attempt("guess-1"), attempt("guess-2")] == [200, 200]
    assert attempt(PASSWORD) == 302
    assert [attempt("guess-3"), attempt("guess-4")] == [200, 200]
    assert attempt(PASSWORD) == 302


@override_settings(ADMIN_LOGIN_MAX_FAILURES=2, ADMIN_LOGIN_WINDOW_SECONDS=1)
def test_the_lock_ends_with_its_window(staff):
    assert [attempt("guess-1"), attempt("guess-2"), attempt(PASSWORD)] == [200, 200, 429]
    time.sleep(1.5)
    assert attempt(PASSWORD) == 302


def test_the_default_limit_is_five_failures(staff):
    assert [attempt(f"guess-{n}") for n in range(5)] == [200] * 5
    assert attempt(PASSWORD) == 429


def test_the_login_page_itself_is_served(staff):
    response = Client().get(LOGIN)
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
