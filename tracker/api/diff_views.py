"""What changed in a deal between two points in time (issue 16; being written)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import View


class DealDiffView(View):
    def get(self, request: HttpRequest, deal_id: object) -> HttpResponse:  # pragma: no cover
        return HttpResponse(status=501)
