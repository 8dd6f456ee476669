"""The admin's login, throttled against password guessing.

Failed logins are counted per (username, client address) in the cache, in a window that starts
with the first failure. After `ADMIN_LOGIN_MAX_FAILURES` (default 5) failures in
`ADMIN_LOGIN_WINDOW_SECONDS` (default 900) every attempt for that pair is answered 429 with
`Retry-After`, without checking the password, so a guess that happens to be right tells the
guesser nothing; the window then has to run out. A successful login clears the count.

The username is counted as Django authenticates it: the login form strips it and normalises it
to NFKC (`UsernameField`), so a fullwidth or a mathematical bold s is a plain s. It is also
case-folded, so that `Someone` shares the count: stricter than the lookup, never looser.

Each attempt takes its place in the count before its password is checked, with one atomic
increment, and a success gives the places back. Counting after the check would let attempts
sent at once all pass the check before any of them is counted (django-axes counts that way,
which is why this is not django-axes).

The pair, not the address alone: behind a reverse proxy every client may share one address,
and a limit per address would lock every administrator out at once. The address is
`REMOTE_ADDR`, which a client cannot forge (X-Forwarded-For it can). Keys are hashed so that
usernames do not sit in the cache. If the cache is down, logins are not throttled (and that is
logged) rather than refused.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import UsernameField
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


def normalise_username(username: str) -> str:
    """The username as the admin's login form hands it to `authenticate()`, case-folded."""
    # The form's own field: strip, then NFKC. Case folding can undo NFKC (and NFKC can
    # produce new capitals), hence NFKC once more after it.
    as_authenticated = UsernameField().to_python(username)
    return unicodedata.normalize("NFKC", as_authenticated.casefold())


def failure_key(username: str, address: str) -> str:
    pair = f"{normalise_username(username)}\n{address}".encode("utf-8", "surrogatepass")
    return "admin-login-failures:" + hashlib.sha256(pair).hexdigest()


def _take_place(key: str) -> int | None:
    """Count one more attempt for `key`, atomically; its number in the window, None if unknown."""
    window = window_seconds()
    try:
        for _ in range(3):
            # add() opens the window; incr() keeps its expiry, both atomic on Redis and in
            # local memory, so attempts arriving together get different numbers.
            if cache.add(key, 1, timeout=window):
                return 1
            try:
                count = cache.incr(key)
            except ValueError:
                continue  # the window closed between add() and incr(): open a new one
            if count == 1:
                # On Redis the key expired between incr()'s existence check and INCR, which
                # then made it anew without an expiry: give it one, or the lock never ends.
                cache.touch(key, timeout=window)
            return int(count)
    except Exception:
        logger.warning("Admin login not throttled: the cache is unavailable", exc_info=True)
    return None


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
    key = failure_key(request.POST.get("username", ""), request.META.get("REMOTE_ADDR", ""))
    place = _take_place(key)
    if place is not None and place > max_failures():
        logger.warning("Admin login throttled after %d failures", max_failures())
        return _throttled(request)
    response = admin.site.login(request, **kwargs)
    if _succeeded(request, response):
        _clear(key)
    # A failure keeps its place: it is the count.
    return response


def _succeeded(request: HttpRequest, response: HttpResponse) -> bool:
    # The admin redirects after a successful login and shows the form again after a failed one.
    user = getattr(request, "user", None)
    return response.status_code == 302 and user is not None and user.is_authenticated
