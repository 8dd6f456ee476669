"""Server-sent events: the feed, and one deal's events, pushed to clients as they commit.

Authentication, roles, throttling and errors are those of every other view (DRF, as for
`GET /events/`): an error before the stream starts is problem details, whatever the request's
Accept says. Once authorised, the view returns a streaming response whose messages come from
tracker.api.streaming: under an ASGI server an asynchronous loop woken by LISTEN/NOTIFY, under a
WSGI server (the embedded demo's `runserver`) a loop that polls.

Where to resume: the `Last-Event-ID` header wins over the query parameter (`after` on the feed,
`after_version` or `after` on a deal's stream). A browser's EventSource reconnects to the URL it was
opened with, query included, and sends the id of the last message it got as `Last-Event-ID`:
that id is where it stopped, the query only where it first started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from tracker.deals.errors import DealNotFound
from tracker.eventstore.feed import decode_cursor
from tracker.eventstore.store import stream_version

from .permissions import CanRead
from .problems import MalformedRequest
from .renderers import FastJSONRenderer
from .schema import AUTHENTICATED, problem_responses
from .serializers import MAX_VERSION, QuerySerializer
from .streaming import DealSource, FeedSource, Source, follow_async, follow_sync

LAST_EVENT_ID = "Last-Event-ID"


class EventStreamRenderer(JSONRenderer):
    """Lets clients ask for `text/event-stream` (as EventSource does); errors still render as
    JSON problem details. The stream itself is not rendered: the view streams it."""

    media_type = "text/event-stream"
    format = "sse"


MESSAGE_FORMAT = (
    "Server-sent events (`text/event-stream`). The stream opens with `retry: 2000`; each event "
    "is one message:\n\n"
    "    id: <{id}>\n    event: event\n    data: <the event as JSON, as in GET /events/>\n\n"
    "and a comment line `: keep-alive` follows every 15 seconds (a setting) without a message. "
    "To resume, send the last id received as the `Last-Event-ID` header (EventSource does so "
    "when it reconnects); it wins over the query parameter. Nothing is repeated or skipped. "
    "The stream does not end by itself. Readers, editors and auditors; errors before the "
    "stream starts are problem details."
)

LAST_EVENT_ID_PARAMETER = OpenApiParameter(
    LAST_EVENT_ID,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The id of the last message received: resume after it (wins over the query).",
)


class FeedStreamQuerySerializer(QuerySerializer):
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=(
            "A feed cursor (a message's id, or `next` of GET /events/): start after it. "
            "Omitted: from the first event."
        ),
    )


class DealStreamQuerySerializer(QuerySerializer):
    after_version = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_VERSION,
        help_text="Start after this version (a message's id). Omitted: from version 1.",
    )
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_VERSION,
        help_text=(
            "The same as `after_version`, by the name API.md gives both streams' resume "
            "parameter (a message's id, here a version)."
        ),
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        given = {data[name] for name in ("after_version", "after") if name in data}
        if len(given) > 1:
            raise serializers.ValidationError({"after": "Two different versions to start after."})
        return {"after_version": given.pop() if given else 0}


class _StreamView(APIView):
    permission_classes = [CanRead]
    renderer_classes = [FastJSONRenderer, EventStreamRenderer]

    def _query(self, serializer_class: type, request: Request, field: str) -> dict[str, Any]:
        data = request.query_params.dict()
        header = request.headers.get(LAST_EVENT_ID, "")
        if header:
            # It wins over the query's start, under either name.
            data.pop("after", None)
            data[field] = header
        query = serializer_class(data=data)
        if not query.is_valid():
            where = (
                f"The {LAST_EVENT_ID} header"
                if header and field in query.errors
                else "A query parameter"
            )
            raise MalformedRequest.from_serializer_errors(f"{where} is invalid.", query.errors)
        return dict(query.validated_data)

    def _stream(self, request: Request, source: Source) -> StreamingHttpResponse:
        is_asgi = isinstance(request._request, ASGIRequest)
        if request.method == "HEAD":
            # A GET's status and headers, and no stream: a HEAD must end (the server would
            # otherwise follow the feed for a body it never sends, and never see the client go).
            messages: Any = _no_messages() if is_asgi else iter(())
        elif is_asgi:
            messages = follow_async(source)
        else:
            messages = follow_sync(source)
        response = StreamingHttpResponse(messages, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        # nginx and the like pass each message on at once instead of buffering the answer.
        response["X-Accel-Buffering"] = "no"
        return response


class EventStreamView(_StreamView):
    @extend_schema(
        operation_id="events_stream",
        summary="Every deal's events in commit order, pushed as they commit",
        description=(
            "The events of GET /events/, in the same order, sent as they commit. "
            + MESSAGE_FORMAT.format(id="the feed cursor after this event")
            + " The id is the same opaque cursor as GET /events/ returns as `next`: a client "
            "may switch between the two. A long-running writing transaction delays the events "
            "committed after it began, never skips one."
        ),
        parameters=[FeedStreamQuerySerializer, LAST_EVENT_ID_PARAMETER],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=OpenApiTypes.STR, description="Server-sent events, one per event."
            ),
            **problem_responses(400, *AUTHENTICATED),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        after = self._query(FeedStreamQuerySerializer, request, "after").get("after") or None
        if after is not None:
            decode_cursor(after)  # InvalidCursor: 400 before the stream starts
        return self._stream(request, FeedSource(after))


class DealEventStreamView(_StreamView):
    @extend_schema(
        operation_id="deals_events_stream",
        summary="One deal's events in version order, pushed as they commit",
        description=(
            "The events of GET /deals/{id}/events/, in version order, sent as they commit. "
            + MESSAGE_FORMAT.format(id="the event's version")
            + " The id is the version, not a feed cursor: a deal's versions have no gaps and "
            "commit in order, so the version alone says where to resume."
        ),
        parameters=[DealStreamQuerySerializer, LAST_EVENT_ID_PARAMETER],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=OpenApiTypes.STR, description="Server-sent events, one per event."
            ),
            **problem_responses(400, 404, *AUTHENTICATED),
        },
    )
    def get(self, request: Request, deal_id: UUID) -> StreamingHttpResponse:
        after_version = self._query(DealStreamQuerySerializer, request, "after_version")[
            "after_version"
        ]
        if stream_version(deal_id) == 0:
            raise DealNotFound(deal_id)
        return self._stream(request, DealSource(deal_id, after_version))


async def _no_messages() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing
