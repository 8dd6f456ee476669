"""Output shapes of the API (and, through drf-spectacular, of its OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers


def format_api_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds: `2025-07-02T09:14:03.120Z` (API.md)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ApiTimeField(serializers.DateTimeField):
    def to_representation(self, value: datetime) -> str:
        return format_api_time(value)


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path of the field, e.g. `data.shares`.")
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, served as `application/problem+json`."""

    type = serializers.CharField(help_text="URI reference naming the problem type.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.ChoiceField(
        choices=[
            "malformed_request",
            "not_authenticated",
            "permission_denied",
            "not_found",
            "method_not_allowed",
            "not_acceptable",
            "version_conflict",
            "payload_too_large",
            "unsupported_media_type",
            "invalid_event",
            "idempotency_key_reused",
            "throttled",
            "internal_error",
            "unavailable",
        ],
        help_text="Stable machine-readable code (API.md).",
    )
    errors = FieldErrorSerializer(many=True)
    instance = serializers.CharField(required=False, help_text="The request path.")
    current_version = serializers.IntegerField(
        required=False, help_text="With `version_conflict`: the stream's version now."
    )


class OccurredSerializer(serializers.Serializer):
    date = serializers.DateField()
    precision = serializers.ChoiceField(choices=["day", "month", "year"])


class SourceSerializer(serializers.Serializer):
    title = serializers.CharField()
    publisher = serializers.CharField()
    url = serializers.URLField(allow_null=True)
    published_on = serializers.DateField(allow_null=True)


class EventSerializer(serializers.Serializer):
    """An event as the API shows it (API.md); reads a `RecordedEvent`."""

    event_id = serializers.UUIDField()
    deal = serializers.UUIDField(source="stream_id")
    version = serializers.IntegerField(min_value=1)
    position = serializers.IntegerField(min_value=1, help_text="Insertion order, across deals.")
    type = serializers.CharField()
    schema_version = serializers.IntegerField(min_value=1)
    data = serializers.JSONField(help_text="The event's data; its shape depends on `type`.")
    occurred = OccurredSerializer(allow_null=True)
    source = SourceSerializer(allow_null=True)
    actor = serializers.CharField(allow_blank=True)
    recorded_at = ApiTimeField(help_text="Ledger time, set by the server.")
    prev_hash = serializers.CharField(min_length=64, max_length=64)
    hash = serializers.CharField(min_length=64, max_length=64)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # The stored JSON is returned as stored; field serializers would re-format dates.
        return {
            "event_id": str(instance.event_id),
            "deal": str(instance.stream_id),
            "version": instance.version,
            "position": instance.position,
            "type": instance.type,
            "schema_version": instance.schema_version,
            "data": instance.data,
            "occurred": instance.occurred,
            "source": instance.source,
            "actor": instance.actor,
            "recorded_at": format_api_time(instance.recorded_at),
            "prev_hash": instance.prev_hash,
            "hash": instance.hash,
        }


class FeedQuerySerializer(serializers.Serializer):
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The `next` cursor of the previous page; omit it to start at the beginning.",
    )
    limit = serializers.IntegerField(
        required=False, default=100, min_value=1, help_text="Events per page, at most 1000."
    )


class FeedPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next = serializers.CharField(
        help_text="Opaque cursor to pass back as `after`; the same cursor when nothing is new."
    )


class VerificationSerializer(serializers.Serializer):
    deal = serializers.UUIDField(source="stream_id")
    valid = serializers.BooleanField()
    events = serializers.IntegerField(help_text="Events in the stream.")
    head = serializers.CharField(help_text="Hash of the last event checked.")
    first_bad_version = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True)


HEALTH_STATES = ["ok", "unavailable"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=HEALTH_STATES)
    database = serializers.ChoiceField(choices=HEALTH_STATES)
    broker = serializers.ChoiceField(choices=["ok", "unavailable", "embedded"])
    projection_lag = serializers.IntegerField(
        allow_null=True, help_text="Events recorded but not yet projected; null if unknown."
    )
