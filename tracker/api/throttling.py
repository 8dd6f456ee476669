"""Rate limits that read their rates when asked and let requests through if the cache is down.

DRF's throttles copy the rates when the class is defined, so a changed REST_FRAMEWORK setting
would not reach them. A cache (Redis) outage must not turn every request into an error: the
limit is then not enforced, and the outage is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import throttling
from rest_framework.request import Request
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)


class _LiveRatesMixin:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception:
            logger.warning("Rate limit not applied: the cache is unavailable", exc_info=True)
            return True


class AnonRateThrottle(_LiveRatesMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_LiveRatesMixin, throttling.UserRateThrottle):
    pass
