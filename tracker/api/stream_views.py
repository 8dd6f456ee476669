"""Server-sent events: the feed pushed to clients as it grows (issue 16; being written)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import View


class EventStreamView(View):
    def get(self, request: HttpRequest) -> HttpResponse:  # pragma: no cover - placeholder
        return HttpResponse(status=501)


class DealEventStreamView(View):
    def get(self, request: HttpRequest, deal_id: object) -> HttpResponse:  # pragma: no cover
        return HttpResponse(status=501)
