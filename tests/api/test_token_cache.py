"""Kept tokens: no token query once a process has checked a token, and revocation at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api.conftest import make_user
from tracker.api import throttling, token_cache
from tracker.api.auth import issue_token

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def redis_cache():
    if throttling.redis_client() is None:
        pytest.skip("the cache is not Redis")
    token_cache._entries.clear()
    yield
    token_cache._entries.clear()


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def token_queries(client: APIClient, path: str = "/api/v1/events/") -> tuple[int, int]:
    """The status of a GET and how many queries read the token table."""
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, sum("EXECUTE tracker_api_token_candidates" in query["sql"] for query in queries)


def three_a_minute() -> override_settings:
    """The user rate limit at 3 requests a minute."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"}
    return override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    )


def test_a_checked_token_is_not_read_again():
    client = with_token(issue_token(make_user("kept", "reader")))
    assert token_queries(client) == (200, 1)
    assert token_queries(client) == (200, 0)
    assert token_queries(client) == (200, 0)


def test_the_kept_request_is_counted_once_in_the_rate_limit():
    client = with_token(issue_token(make_user("counted", "reader")))
    with three_a_minute():
        statuses = [token_queries(client) for _ in range(4)]
    assert statuses == [(200, 1), (200, 0), (200, 0), (429, 0)]


def test_a_token_deleted_by_another_process_is_refused_on_the_next_request():
    user = make_user("elsewhere", "reader")
    client = with_token(issue_token(user))
    assert token_queries(client) == (200, 1)
    assert token_queries(client) == (200, 0)
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # Another process, with its own memory: only the generation in Redis can tell this one.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from knox.models import AuthToken; "
            f"AuthToken.objects.filter(user_id={user.pk}).delete()",
        ],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": url},
    )
    assert not AuthToken.objects.filter(user=user).exists()
    assert token_queries(client) == (401, 1)


@pytest.mark.parametrize("change", ["deactivate", "demote", "rename_role", "delete_token"])
def test_each_revoking_change_counts_from_the_next_request(change):
    user = make_user(f"revoke-{change}", "reader")
    client = with_token(issue_token(user))
    assert token_queries(client) == (200, 1)
    if change == "deactivate":
        user.is_active = False
        user.save()
    elif change == "demote":
        user.groups.clear()
    elif change == "rename_role":
        group = Group.objects.get(name="reader")
        group.name = "former-reader"
        group.save()
    else:
        AuthToken.objects.filter(user=user).delete()
    status, queries = token_queries(client)
    assert queries == 1
    assert status in {401, 403}


def test_a_login_does_not_make_every_process_read_its_tokens_again():
    client = with_token(issue_token(make_user("login", "reader")))
    other = make_user("admin-login", "reader")
    assert token_queries(client) == (200, 1)
    other.save(update_fields=["last_login"])
    assert token_queries(client) == (200, 0)


def test_redis_losing_the_generation_makes_kept_tokens_read_again():
    client = with_token(issue_token(make_user("flushed", "reader")))
    assert token_queries(client) == (200, 1)
    throttling.send(b"DEL", token_cache._key())
    assert token_queries(client) == (200, 1)
    assert token_queries(client) == (200, 0)


def test_without_redis_every_request_reads_the_token(monkeypatch):
    client = with_token(issue_token(make_user("no-redis", "reader")))
    assert token_queries(client) == (200, 1)
    pool = throttling.redis_client().connection_pool
    monkeypatch.setitem(pool.connection_kwargs, "port", 1)
    pool.reset()
    try:
        assert token_queries(client) == (200, 1)
        assert token_queries(client) == (200, 1)
    finally:
        monkeypatch.undo()
        pool.reset()
    assert token_queries(client) == (200, 1)
    assert token_queries(client) == (200, 0)


def test_kept_tokens_age_out():
    client = with_token(issue_token(make_user("aged", "reader")))
    with override_settings(API_TOKEN_CACHE_SECONDS=0.05):
        assert token_queries(client) == (200, 1)
        time.sleep(0.1)
        assert token_queries(client) == (200, 1)


def test_zero_seconds_keeps_nothing():
    client = with_token(issue_token(make_user("never", "reader")))
    with override_settings(API_TOKEN_CACHE_SECONDS=0):
        assert token_queries(client) == (200, 1)
        assert token_queries(client) == (200, 1)


def test_a_kept_token_read_again_is_counted_once_in_the_rate_limit():
    client = with_token(issue_token(make_user("recounted", "reader")))
    with three_a_minute():
        assert token_queries(client) == (200, 1)
        assert token_queries(client) == (200, 0)
        # A change elsewhere: the kept row is not confirmed, so it is read again, and the
        # request is counted once, by the rate limit, not also by the failed confirmation.
        token_cache._new_generation()
        assert token_queries(client) == (200, 1)
        assert token_queries(client) == (429, 0)


def test_a_deactivated_users_token_is_not_kept():
    user = make_user("inactive", "reader")
    client = with_token(issue_token(user))
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert token_queries(client) == (401, 1)
    assert token_queries(client) == (401, 1)


def test_any_failure_of_redis_reads_the_token_instead_of_failing(monkeypatch):
    client = with_token(issue_token(make_user("closed-socket", "reader")))
    assert token_queries(client) == (200, 1)

    def closed(*items: bytes) -> None:
        # What redis-py raised once under concurrent requests: not a RedisError.
        raise ValueError("I/O operation on closed file.")

    monkeypatch.setattr(throttling, "send", closed)
    assert token_queries(client) == (200, 1)
