"""Login to the admin is throttled per (username, address) against password guessing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connections
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


@override_settings(ADMIN_LOGIN_MAX_FAILURES=2, ADMIN_LOGIN_WINDOW_SECONDS=4)
def test_the_lock_ends_with_its_window(staff):
    # A window long enough for three logins on a loaded machine, so the third meets the lock.
    assert [attempt("guess-1"), attempt("guess-2"), attempt(PASSWORD)] == [200, 200, 429]
    time.sleep(4.5)
    assert attempt(PASSWORD) == 302


def test_the_default_limit_is_five_failures(staff):
    assert [attempt(f"guess-{n}") for n in range(5)] == [200] * 5
    assert attempt(PASSWORD) == 429


def test_the_login_page_itself_is_served(staff):
    response = Client().get(LOGIN)
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()


# --- The username as Django authenticates it, and attempts sent at once ---

# Fullwidth s, mathematical bold s: NFKC makes both a plain s, as Django's login form does.
NFKC_VARIANTS = ["\uff53omeone", "\U0001d42comeone", " someone ", "SOMEONE"]


@pytest.fixture
def someone() -> User:
    user = User.objects.create_user("someone", password=PASSWORD, is_staff=True)
    yield user
    cache.delete(failure_key("someone", "127.0.0.1"))


@pytest.mark.parametrize("variant", NFKC_VARIANTS)
def test_a_name_that_normalises_to_a_locked_one_is_locked_too(someone, variant):
    assert [attempt(f"guess-{n}", username="someone") for n in range(5)] == [200] * 5
    assert attempt("guess-5", username=variant) == 429
    # The right password under the variant is refused without being checked.
    assert attempt(PASSWORD, username=variant) == 429


def test_a_fullwidth_name_with_the_right_password_after_lockout_is_refused():
    User.objects.create_user("editor", password=PASSWORD, is_staff=True)
    try:
        assert [attempt(f"guess-{n}", username="editor") for n in range(5)] == [200] * 5
        client = Client(REMOTE_ADDR="127.0.0.1")
        response = client.post(LOGIN, {"username": "\uff45ditor", "password": PASSWORD})
        assert response.status_code == 429
        assert "_auth_user_id" not in client.session
    finally:
        cache.delete(failure_key("editor", "127.0.0.1"))


def test_failures_under_variants_of_a_name_add_up(someone):
    names = [
        "someone",
        "\uff53omeone",
        "\U0001d42comeone",
        "\uff53\uff4f\uff4d\uff45\uff4f\uff4e\uff45",
        "someone",
    ]
    assert [attempt("wrong", username=name) for name in names] == [200] * 5
    assert attempt(PASSWORD, username="someone") == 429


def test_the_right_password_under_a_fullwidth_name_logs_in_while_unlocked(someone):
    """The variant is the same account to Django: it logs in, and clears the count."""
    assert attempt("wrong", username="someone") == 200
    assert attempt(PASSWORD, username="\uff53omeone") == 302
    assert [attempt(f"guess-{n}", username="someone") for n in range(5)] == [200] * 5
    assert attempt(PASSWORD, username="someone") == 429


class CountingBackend(ModelBackend):
    """Django's own backend, counting the passwords it was asked to check."""

    lock = threading.Lock()
    checked = 0

    def authenticate(self, request, username=None, password=None, **kwargs):
        with CountingBackend.lock:
            CountingBackend.checked += 1
        return super().authenticate(request, username=username, password=password, **kwargs)


COUNTING = {"AUTHENTICATION_BACKENDS": [f"{__name__}.CountingBackend"]}


def race(attempts: list[tuple[str, str]]) -> list[int]:
    """Send each (username, password) from its own thread, all released at once."""
    barrier = threading.Barrier(len(attempts))

    def send(username: str, password: str) -> int:
        client = Client(REMOTE_ADDR="127.0.0.1")
        barrier.wait(timeout=30)
        try:
            return attempt_with(client, username, password)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        futures = [pool.submit(send, username, password) for username, password in attempts]
        return [future.result(timeout=120) for future in futures]


def attempt_with(client: Client, username: str, password: str) -> int:
    return client.post(LOGIN, {"username": username, "password": password}).status_code


@pytest.fixture
def counting() -> Iterator[None]:
    CountingBackend.checked = 0
    with override_settings(**COUNTING):
        yield


@pytest.mark.django_db(transaction=True)
def test_twenty_guesses_sent_at_once_check_at_most_five_passwords(counting):
    User.objects.create_user("racer", password=PASSWORD, is_staff=True)
    try:
        statuses = race([("racer", f"guess-{n}") for n in range(20)])
        assert sorted(statuses) == [200] * 5 + [429] * 15
        assert CountingBackend.checked == 5
    finally:
        cache.delete(failure_key("racer", "127.0.0.1"))


@pytest.mark.django_db(transaction=True)
def test_guesses_sent_at_once_under_variants_of_a_name_share_one_count(counting):
    User.objects.create_user("racer", password=PASSWORD, is_staff=True)
    names = ["racer", "\uff52acer", "\U0001d42bacer", "RACER", "\uff52\uff41\uff43\uff45\uff52"]
    try:
        statuses = race([(names[n % len(names)], f"guess-{n}") for n in range(20)])
        assert sorted(statuses) == [200] * 5 + [429] * 15
        assert CountingBackend.checked == 5
        assert attempt(PASSWORD, username="racer") == 429
    finally:
        cache.delete(failure_key("racer", "127.0.0.1"))


def test_logins_go_unthrottled_when_the_cache_is_down(staff, caplog):
    down = {"default": {**settings.CACHES["default"]}}
    down["default"].update(
        BACKEND="django.core.cache.backends.redis.RedisCache",
        LOCATION=f"redis://127.0.0.1:{closed_port()}/0",
        OPTIONS={"socket_connect_timeout": 1, "socket_timeout": 1},
    )
    with override_settings(CACHES=down, ADMIN_LOGIN_MAX_FAILURES=1):
        assert [attempt("guess-1"), attempt("guess-2"), attempt(PASSWORD)] == [200, 200, 302]
    assert "Admin login not throttled: the cache is unavailable" in caplog.text


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
