"""Endpoints that need only the event store: the feed, verify, export, the ledger digest, health."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.eventstore.digest import digest_document, latest_digest, take_digest
from tracker.eventstore.errors import StreamNotFound
from tracker.eventstore.export import export_lines
from tracker.eventstore.store import read_all, stream_head, verify_stream
from tracker.projections.dispatch import embedded_digest

from .deal_views import refuse_any_query
from .permissions import CanAudit, CanRead
from .problems import MalformedRequest
from .renderers import JSONLinesRenderer
from .replica import replica_health, replica_read
from .schema import AUTHENTICATED, problem_responses
from .serializers import (
    FeedPageSerializer,
    FeedQuerySerializer,
    HealthSerializer,
    LedgerDigestSerializer,
    VerificationSerializer,
    event_json,
)

logger = logging.getLogger(__name__)

FEED_MAX_LIMIT = 1000


class EventFeedView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="events_feed",
        summary="Every deal's events in commit order",
        description=(
            "Pages through all events in the order their transactions committed. Pass a page's "
            "`next` back as `after`. Never skips an event that commits later with a smaller "
            "`position`; a long-running writing transaction delays the feed until it ends. "
            "`limit` above 1000 is read as 1000. With a read replica, pages may come from "
            "the replica, a little behind the primary, and never skip there either."
        ),
        parameters=[FeedQuerySerializer],
        responses={200: FeedPageSerializer, **problem_responses(400, *AUTHENTICATED)},
    )
    @replica_read
    def get(self, request: Request, *, using: str) -> Response:
        query = FeedQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise MalformedRequest.from_serializer_errors("Invalid query parameters.", query.errors)
        after = query.validated_data.get("after") or None
        limit = min(query.validated_data["limit"], FEED_MAX_LIMIT)
        # Gap-safe on a hot standby too: a transaction the standby has not seen end (its
        # commit not replayed yet, whatever the primary says) is running in the standby's
        # snapshot, so the bound below stays under it (README: "Reads from a replica").
        page = read_all(after=after, limit=limit, using=using)
        return Response({"results": [event_json(e) for e in page.events], "next": page.next})


class VerifyView(APIView):
    permission_classes = [CanAudit]

    @extend_schema(
        operation_id="deals_verify",
        summary="Recompute a deal's hash chain",
        description=(
            "`valid: true` when every event's hash matches its contents and the previous hash; "
            "otherwise `first_bad_version` and `reason` say where and why it breaks."
        ),
        responses={200: VerificationSerializer, **problem_responses(400, 404, *AUTHENTICATED)},
    )
    def get(self, request: Request, deal_id: UUID) -> Response:
        refuse_any_query(request)
        if stream_head(deal_id) is None:
            raise NotFound(f"No deal {deal_id}.")
        return Response(VerificationSerializer(verify_stream(deal_id)).data)


class ExportView(APIView):
    permission_classes = [CanAudit]
    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    @extend_schema(
        operation_id="deals_export",
        summary="A deal's whole stream as JSON Lines, verifiable offline",
        description=(
            "A header line, then one line per event with every stored field, `prev_hash` and "
            "`hash`. The format and a standard-library verifier are in docs/export-format.md "
            "and tools/verify_export.py."
        ),
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                response=OpenApiTypes.STR, description="JSON Lines: header, then events."
            ),
            **problem_responses(400, 404, *AUTHENTICATED),
        },
    )
    def get(self, request: Request, deal_id: UUID) -> StreamingHttpResponse:
        refuse_any_query(request)
        try:
            lines = export_lines(deal_id)
        except StreamNotFound:
            raise NotFound(f"No deal {deal_id}.") from None
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="deal-{deal_id}.jsonl"'
        return response


class LedgerDigestView(APIView):
    permission_classes = [CanAudit]

    @extend_schema(
        operation_id="ledger_digest",
        summary="The latest ledger digest, for an auditor to keep",
        description=(
            "A commitment to the head hash of every stream at one point of the feed "
            "(`feed_cursor`), chained to the digest before it through `prev_digest`. Digests "
            "are taken on a schedule (embedded, with no scheduler, here once the period has "
            "passed); when none has been taken yet, one is taken first. Save "
            "the document outside this system: `tools/verify_export.py --ledger EXPORT "
            "--digest SAVED` later proves that no event it covers was rewritten, even with "
            "every hash recomputed. The format and the hash are in docs/export-format.md."
        ),
        responses={200: LedgerDigestSerializer, **problem_responses(400, *AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        refuse_any_query(request)
        # GET stays safe to repeat: it adds a digest only to a ledger that has none (or, in the
        # embedded mode, none within the period), which the scheduled task would do anyway.
        # Two first requests at once may both take one; the chain stays whole (takers queue on
        # a lock) and the latest is returned.
        digest = embedded_digest() or latest_digest() or take_digest()
        return Response(LedgerDigestSerializer(digest_document(digest)).data)


REPLICA_STATES = ["ok", "down", "not configured"]


@extend_schema_serializer(component_name="Health")
class HealthReportSerializer(HealthSerializer):
    replica = serializers.ChoiceField(
        choices=REPLICA_STATES,
        help_text="The read replica; `down` does not fail the check (reads go to the primary).",
    )
    replica_lag_bytes = serializers.IntegerField(
        allow_null=True, help_text="WAL the replica has not replayed yet; null if unknown."
    )
    replica_lag_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Since the last transaction the replica replayed, 0 when it has replayed "
        "everything; null if unknown.",
    )


class HealthView(APIView):
    """Liveness for load balancers and operators: no credentials, no rate limit."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="health",
        summary="Database, broker, projection lag, and the read replica and its lag",
        auth=[],
        responses={
            200: HealthReportSerializer,
            503: HealthReportSerializer,
            **problem_responses(),
        },
    )
    def get(self, request: Request) -> Response:
        database = _check_database()
        body = {
            "status": database,
            "database": database,
            "broker": _check_broker(),
            "projection_lag": _projection_lag() if database == "ok" else None,
            **replica_health(primary_ok=database == "ok"),
        }
        return Response(body, status=200 if database == "ok" else 503)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("Health check: database unavailable", exc_info=True)
        # Drop the broken connection so the next request connects afresh.
        connection.close()
        return "unavailable"
    return "ok"


def _check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url:
        return "embedded"
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            try:
                client.ping()
            finally:
                client.close()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=1) as broker:
                broker.ensure_connection(max_retries=1)
    except Exception:
        logger.warning("Health check: broker unavailable", exc_info=True)
        return "unavailable"
    return "ok"


def _projection_lag() -> int | None:
    try:
        from tracker.projections.projector import projection_lag
    except ImportError:
        # TODO(projections): import at the top once tracker.projections.projector exists.
        return None
    try:
        return projection_lag()
    except DatabaseError:
        logger.warning("Health check: projection lag unavailable", exc_info=True)
        return None


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI with the same Cross-Origin-Opener-Policy as every other page.

    The split view serves Swagger UI's start-up script as a file (`?script=`), not inline, so
    the page runs under the same Content-Security-Policy as every other.

    drf-spectacular relaxes it to `unsafe-none` so that Swagger UI's OAuth2 pop-up can talk
    back to it; this API has no OAuth2, so the page keeps the project's policy.
    """

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        policy = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        if policy:
            response["Cross-Origin-Opener-Policy"] = policy
        else:
            del response["Cross-Origin-Opener-Policy"]
        return response
