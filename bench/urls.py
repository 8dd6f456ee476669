"""The project's routes plus the baseline that bench/api.py compares the API with."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns

# About the size of one deal's state, so both sides send comparable bodies.
FIXED_BODY = {
    "id": "00000000-0000-0000-0000-000000000000",
    "title": "Baseline",
    "notes": [{"text": "x" * 60} for _ in range(12)],
}


def baseline(request: HttpRequest) -> JsonResponse:
    """A plain Django view: no authentication, no database, a fixed JSON body."""
    return JsonResponse(FIXED_BODY)


urlpatterns = [path("bench/baseline/", baseline), *project_urlpatterns]
