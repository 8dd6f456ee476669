"""The access log: one record per request, with its request id, user, deal and timing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

log = logging.getLogger("tracker.access")


class AccessLogMiddleware:
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
