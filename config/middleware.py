"""The access log, one record per request; the security headers that Django does not set."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.functional import SimpleLazyObject, empty

log = logging.getLogger("tracker.access")


class AccessLogMiddleware:
    """One record per request, with its request id, user, deal and timing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        deal_id = match.kwargs.get("deal_id") if match else None
        user = getattr(request, "user", None)
        # The path only: query strings and headers may carry what logs must not.
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user": user.get_username() if user is not None and user.is_authenticated else None,
                "deal_id": str(deal_id) if deal_id else None,
            },
        )
        return response


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every answer (unless a view set its
    own), and `Cache-Control: no-store, private` on every API answer to a request that carried
    credentials, so that no browser or proxy keeps a copy of what only that user may see.

    The policies come from settings: CONTENT_SECURITY_POLICY ({directive: [sources]}) and
    PERMISSIONS_POLICY ({feature: [allowlist]}).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = _csp_header(settings.CONTENT_SECURITY_POLICY)
        self.permissions = ", ".join(
            f"{feature}=({' '.join(allowed)})"
            for feature, allowed in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", self.permissions)
        if request.path.startswith("/api/") and _carried_credentials(request):
            patch_cache_control(response, no_store=True, private=True)
        return response


def _csp_header(policy: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([directive, *sources]) for directive, sources in policy.items())


def _carried_credentials(request: HttpRequest) -> bool:
    # DRF sets the user it authenticated (token or session) on the request it wraps; a token
    # it refused still counts, since the answer is about that request alone.
    user = getattr(request, "user", None)
    return "HTTP_AUTHORIZATION" in request.META or bool(user and user.is_authenticated)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, making the message storage only for a request that uses it.

    The storage (a cookie and a session store) was made for every request, API requests
    included, which never show a message: about 2 % of an append's CPU.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response  # never used: nothing to store
        return super().process_response(request, response)
