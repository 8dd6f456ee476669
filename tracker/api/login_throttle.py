"""The admin's login, throttled against password guessing.

Failed logins are counted per (username, client address) in the cache, in a window that starts
with the first failure. After `ADMIN_LOGIN_MAX_FAILURES` (default 5) failures in
`ADMIN_LOGIN_WINDOW_SECONDS` (default 900) every attempt for that pair is answered 429 with
`Retry-After`, without checking the password, so a guess that happens to be right tells the
guesser nothing; the window then has to run out. A successful login clears the count.

The pair, not the address alone: behind a reverse proxy every client may share one address,
and a limit per address would lock every administrator out at once. The address is
`REMOTE_ADDR`, which a client cannot forge (X-Forwarded-For it can). Keys are hashed so that
usernames do not sit in the cache. If the cache is down, logins are not throttled (and that is
logged) rather than refused.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

logger = logging.getLogger(__name__)

DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW_SECONDS = 15 * 60


def max_failures() -> int:
    return int(getattr(settings, "ADMIN_LOGIN_MAX_FAILURES", DEFAULT_MAX_FAILURES))


def window_seconds() -> int:
    return int(getattr(settings, "ADMIN_LOGIN_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS))


def failure_key(username: str, address: str) -> str:
    pair = f"{username.strip().casefold()}\n{address}".encode("utf-8", "surrogatepass")
    return "admin-login-failures:" + hashlib.sha256(pair).hexdigest()


def failures(key: str) -> int:
    try:
        return int(cache.get(key) or 0)
    except Exception:
        logger.warning("Admin login not throttled: the cache is unavailable", exc_info=True)
        return 0


def _record_failure(key: str) -> None:
    try:
        # add() starts the window; incr() keeps its expiry on Redis and in local memory.
        if not cache.add(key, 1, timeout=window_seconds()):
            cache.incr(key)
    except ValueError:
        # The key expired between add() and incr(): this failure opens a new window.
        cache.add(key, 1, timeout=window_seconds())
    except Exception:
        logger.warning("Admin login failure not counted: the cache is unavailable", exc_info=True)


def _clear(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:
        logger.warning("Admin login count not cleared: the cache is unavailable", exc_info=True)


def _throttled(request: HttpRequest) -> HttpResponse:
    window = window_seconds()
    minutes = max(1, window // 60)
    # The username is not echoed: the page is the same whoever is guessing.
    body = (
        "<!doctype html><title>Too many failed logins</title>"
        "<h1>Too many failed logins</h1>"
        f"<p>Too many failed logins for this account from your address. "
        f"Try again in {minutes} minutes.</p>"
        f'<p><a href="{escape(request.path)}">Back to the login page</a></p>'
    )
    response = HttpResponse(body, status=429, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(window)
    return response


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def admin_login(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """`admin.site.login`, refusing a (username, address) pair with too many recent failures."""
    if request.method != "POST":
        return admin.site.login(request, **kwargs)
    username = request.POST.get("username", "")
    key = failure_key(username, request.META.get("REMOTE_ADDR", ""))
    if failures(key) >= max_failures():
        logger.warning("Admin login throttled after %d failures", max_failures())
        return _throttled(request)
    response = admin.site.login(request, **kwargs)
    if _succeeded(request, response):
        _clear(key)
    else:
        _record_failure(key)
    return response


def _succeeded(request: HttpRequest, response: HttpResponse) -> bool:
    # The admin redirects after a successful login and shows the form again after a failed one.
    user = getattr(request, "user", None)
    return response.status_code == 302 and user is not None and user.is_authenticated
