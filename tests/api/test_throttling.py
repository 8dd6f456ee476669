"""The rate limit on Redis: DRF's sliding window, in one atomic round trip per request."""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory, force_authenticate

from tests.api.conftest import make_user
from tracker.api.throttling import UserRateThrottle, _redis_script

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def rate():
    """Sets the user rate; needs Redis as the cache, as in production."""
    if _redis_script() is None:
        pytest.skip("the cache is not Redis")

    def set_rate(value: str):
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": value}
        return override_settings(
            REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        )

    return set_rate


def request_by(user) -> Request:
    request = APIRequestFactory().get("/api/v1/events/")
    force_authenticate(request, user)
    drf_request = Request(request)
    drf_request.user = user
    return drf_request


def throttle_at(now: float) -> UserRateThrottle:
    throttle = UserRateThrottle()
    throttle.timer = lambda: now
    return throttle


def test_the_window_slides_and_refused_requests_do_not_count(rate):
    request = request_by(make_user(f"slide-{uuid4().hex[:8]}", "reader"))
    start = 1_000_000.0
    with rate("2/min"):
        assert throttle_at(start).allow_request(request, None) is True
        assert throttle_at(start + 30).allow_request(request, None) is True
        refused = throttle_at(start + 40)
        assert refused.allow_request(request, None) is False
        # The oldest granted request leaves the window 60 s after it: 20 s from now.
        assert refused.wait() == pytest.approx(20.0)
        assert throttle_at(start + 59).allow_request(request, None) is False
        # The first request has left the window; the refused ones never entered it.
        assert throttle_at(start + 60.5).allow_request(request, None) is True
        assert throttle_at(start + 61).allow_request(request, None) is False


def test_each_user_has_a_window_of_their_own(rate):
    first = request_by(make_user(f"one-{uuid4().hex[:8]}", "reader"))
    second = request_by(make_user(f"two-{uuid4().hex[:8]}", "reader"))
    with rate("1/min"):
        assert throttle_at(5.0).allow_request(first, None) is True
        assert throttle_at(5.0).allow_request(first, None) is False
        assert throttle_at(5.0).allow_request(second, None) is True


def test_concurrent_requests_are_granted_no_more_than_the_rate(rate):
    request = request_by(make_user(f"race-{uuid4().hex[:8]}", "reader"))
    barrier = threading.Barrier(8)
    granted = []

    def send() -> None:
        barrier.wait()
        for _ in range(5):
            granted.append(UserRateThrottle().allow_request(request, None))

    with rate("10/min"):
        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert granted.count(True) == 10
    assert granted.count(False) == 30


def test_counts_on_after_redis_forgets_the_script(rate):
    request = request_by(make_user(f"flush-{uuid4().hex[:8]}", "reader"))
    with rate("2/min"):
        assert throttle_at(10.0).allow_request(request, None) is True
        _redis_script().registered_client.script_flush()
        assert throttle_at(11.0).allow_request(request, None) is True
        refused = throttle_at(12.0)
        assert refused.allow_request(request, None) is False
        assert refused.wait() == pytest.approx(58.0)


def test_lets_requests_through_when_redis_is_unreachable(rate, monkeypatch, caplog):
    request = request_by(make_user(f"down-{uuid4().hex[:8]}", "reader"))
    pool = _redis_script().registered_client.connection_pool
    monkeypatch.setitem(pool.connection_kwargs, "port", 1)
    pool.reset()
    with rate("1/min"):
        assert throttle_at(20.0).allow_request(request, None) is True
        assert throttle_at(20.0).allow_request(request, None) is True
    assert "Rate limit not applied" in caplog.text
    monkeypatch.undo()
    pool.reset()
    with rate("1/min"):
        assert throttle_at(30.0).allow_request(request, None) is True
        assert throttle_at(30.0).allow_request(request, None) is False
