"""The project's routes plus the baseline that bench/api.py compares the API with, and the
floors that place each endpoint between that baseline and what any endpoint must do.

- `baseline`: a plain Django view, no authentication, no database, a fixed JSON body.
- `floor/drf/` (GET) and `floor/drf/<stream>/` (POST): a DRF view with the API's own
  authentication, permission, rate limit, parser and renderer, which reads no database and
  answers the fixed body (GET) or the body's version plus one (POST): the cost of the framework
  and of who-is-asking alone.
- `floor/insert/<stream>/`: a plain Django view that parses the JSON body with orjson and
  inserts it as one row, one prepared INSERT in autocommit (durable), into bench/append.py's
  bare table, whose unique `(stream_id, version)` refuses a stale version (409): a durable
  write with no framework around it.
- `floor/drf-insert/<stream>/`: both, the least that an authenticated, rate-limited durable
  append over this stack does, with none of the store's or the service's work (no stream row,
  hash chain, catalogue, rules, read model or projection dispatch).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import orjson
import psycopg
from django.db import IntegrityError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from psycopg.types.json import Jsonb
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.append import FAKE_HASH, RAW_INSERT
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns
from tracker.api.permissions import CanEdit
from tracker.eventstore.postgres import native

# About the size of one deal's state, so both sides send comparable bodies.
FIXED_BODY = {
    "id": "00000000-0000-0000-0000-000000000000",
    "title": "Baseline",
    "notes": [{"text": "x" * 60} for _ in range(12)],
}


def baseline(request: HttpRequest) -> JsonResponse:
    """A plain Django view: no authentication, no database, a fixed JSON body."""
    return JsonResponse(FIXED_BODY)


def _insert(stream: UUID, body: dict[str, Any], actor: str) -> int | None:
    """The body as one row at version expected_version + 1; None if that version is taken."""
    version = body["expected_version"] + 1
    row = (
        stream,
        version,
        uuid.uuid4(),
        body["type"],
        1,
        Jsonb(body["data"]),
        Jsonb(body["occurred"]),
        Jsonb(body["source"]),
        actor,
        FAKE_HASH,
        FAKE_HASH,
    )
    # As the store writes: Django's connection (autocommit, checked once a request) under a
    # plain psycopg cursor, so the INSERT is prepared and bound on the server; Django's own
    # cursor binds on the client and cannot prepare.
    try:
        with connection.wrap_database_errors, psycopg.Cursor(native(connection)) as cursor:
            cursor.execute(RAW_INSERT, row, prepare=True)
    except IntegrityError:
        return None
    return version


@csrf_exempt
def floor_insert(request: HttpRequest, stream: UUID) -> HttpResponse:
    version = _insert(stream, orjson.loads(request.body), "bench")
    if version is None:
        return HttpResponse(status=409)
    return HttpResponse(
        orjson.dumps({"version": version}), status=201, content_type="application/json"
    )


class FloorView(APIView):
    """The API's authentication, rate limit, parser and renderer around no work at all."""

    permission_classes = [CanEdit]

    def get(self, request: Request) -> Response:
        return Response(FIXED_BODY)

    def post(self, request: Request, stream: UUID) -> Response:
        return Response({"version": request.data["expected_version"] + 1}, status=201)


class FloorInsertView(APIView):
    """FloorView's framework around floor_insert's row."""

    permission_classes = [CanEdit]

    def post(self, request: Request, stream: UUID) -> Response:
        version = _insert(stream, request.data, request.user.username)
        if version is None:
            return Response(status=409)
        return Response({"version": version}, status=201)


urlpatterns = [
    path("bench/baseline/", baseline),
    path("bench/floor/drf/", FloorView.as_view()),
    path("bench/floor/drf/<uuid:stream>/", FloorView.as_view()),
    path("bench/floor/insert/<uuid:stream>/", floor_insert),
    path("bench/floor/drf-insert/<uuid:stream>/", FloorInsertView.as_view()),
    *project_urlpatterns,
]
