"""The project's routes plus two test-only views that exercise the problem handler."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns
from tracker.api.permissions import CanEdit
from tracker.api.serializers import EventSerializer
from tracker.eventstore.store import NewEvent, append


class _NewEventSerializer(serializers.Serializer):
    type = serializers.CharField()
    data = serializers.JSONField()


class _AppendSerializer(serializers.Serializer):
    stream = serializers.UUIDField()
    expected_version = serializers.IntegerField(min_value=0)
    events = _NewEventSerializer(many=True, allow_empty=False)


class AppendView(APIView):
    """A stand-in for the deals endpoints to come: append through the store over HTTP."""

    permission_classes = [CanEdit]

    def post(self, request: Request) -> Response:
        body = _AppendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        appended = append(
            body.validated_data["stream"],
            [NewEvent(type=e["type"], data=e["data"]) for e in body.validated_data["events"]],
            body.validated_data["expected_version"],
            actor=request.user.username,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return Response(
            {
                "version": appended.version,
                "events": EventSerializer(appended.events, many=True).data,
            },
            status=200 if appended.replayed else 201,
        )


class FieldError:
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


class PluggedInvalidEvent(Exception):
    """Shaped like tracker.deals.errors.InvalidEvent: a `code` and `errors`, nothing else."""

    code = "invalid_event"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("the event breaks a domain rule")
        self.errors = errors


class PluggedNotFound(Exception):
    code = "not_found"


RAISES: dict[str, Any] = {
    "plugged-invalid": lambda: PluggedInvalidEvent(
        [FieldError("data.shares", "shares must sum to 100")]
    ),
    "plugged-not-found": lambda: PluggedNotFound("No deal 42."),
    "bug": lambda: RuntimeError("password=hunter2 in /srv/secret.py"),
}


class RaiseView(APIView):
    permission_classes = [CanEdit]

    def get(self, request: Request, name: str) -> Response:
        raise RAISES[name]()


urlpatterns = [
    path("api/v1/test/append/", AppendView.as_view()),
    path("api/v1/test/raise/<str:name>/", RaiseView.as_view()),
    *project_urlpatterns,
]
