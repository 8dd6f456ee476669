"""Deals: the list and detail from the projection, the stream, appends, replay and timeline.

Each view parses the request with an input serializer, authorises, calls one service or reads
one read model, and renders. Domain errors (`InvalidEvent`, `DealNotFound`, `VersionConflict`,
`IdempotencyKeyReused`) reach the problem handler unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.db import connections
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import generics
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.deals import replay
from tracker.deals.errors import DealNotFound
from tracker.deals.reducer import Deal, deal_json
from tracker.deals.roles import Role, has_role
from tracker.deals.services import ProposedEvent, open_deal, record_event, record_events
from tracker.eventstore.store import read_stream, stream_version
from tracker.projections.dispatch import heal_if_embedded
from tracker.projections.models import DealState

from .filters import DealFilter, KnownParametersOnly, ProblemFilterBackend, names_a_filter
from .idempotency import HEADER, idempotency_key
from .pagination import DealPagination, ProjectedStates
from .parsers import BodyRequired
from .permissions import CanAudit, CanEdit, CanRead
from .prepared import PreparedStatement
from .problems import MalformedRequest
from .renderers import json_values
from .replica import replica_read, require_version
from .schema import AUTHENTICATED, problem_responses
from .serializers import (
    AppendedSerializer,
    AppendManySerializer,
    AppendOneSerializer,
    DealQuerySerializer,
    NoQuerySerializer,
    OpenDealSerializer,
    ReplayedStateSerializer,
    StateQuerySerializer,
    StreamPageSerializer,
    StreamQuerySerializer,
    TimelineSerializer,
    event_json,
    format_api_time,
)

STREAM_MAX_LIMIT = 1000
WRITE_ERRORS = (400, *AUTHENTICATED, 413, 422)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description=(
        "Up to 255 characters. The same key with the same body returns the first response "
        "again (nothing is appended twice); with another body it is 422 "
        "`idempotency_key_reused`. Keys are scoped to the user."
    ),
)


def parse_query(serializer_class: type, request: Request) -> dict[str, Any]:
    """Validated query parameters; 400 `malformed_request` naming each bad one."""
    query = serializer_class(data=request.query_params)
    if not query.is_valid():
        raise MalformedRequest.from_serializer_errors("Invalid query parameters.", query.errors)
    return dict(query.validated_data)


def refuse_any_query(request: Request) -> None:
    """For endpoints that take no query parameters: any one is 400 `malformed_request`."""
    if request.query_params:
        parse_query(NoQuerySerializer, request)


def parse_body(serializer_class: type, request: Request) -> dict[str, Any]:
    """The body checked for shape (422 `invalid_event` per field; 400 if not an object)."""
    if not isinstance(request.data, Mapping):
        raise MalformedRequest("The request body must be a JSON object.")
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def state_json(deal: Deal | None) -> dict[str, Any] | None:
    return None if deal is None else deal_json(deal)


def _require_deal(deal_id: UUID, using: str) -> int:
    version = stream_version(deal_id, using=using)
    if version == 0:
        raise DealNotFound(deal_id)
    return version


class DealListView(KnownParametersOnly, BodyRequired, generics.ListAPIView):
    permission_classes = [CanEdit]
    queryset = DealState.objects.filter(state__isnull=False)
    filter_backends = [ProblemFilterBackend]
    filterset_class = DealFilter
    pagination_class = DealPagination
    serializer_class = OpenDealSerializer

    @extend_schema(
        operation_id="deals_list",
        summary="Current state of deals, from the projection",
        description=(
            "The newest first (by `updated_at`, then id), in pages linked by `next` and "
            "`previous`. A filter value that cannot be meant (`party=not-a-uuid`, "
            "`kind=unknown`, `updated_after=yesterday`), and a parameter that is not one of "
            "these (`stag=signed`), is 400 `malformed_request`; a well-formed value that "
            "matches nothing gives an empty page."
        ),
        responses={200: Deal, **problem_responses(400, *AUTHENTICATED)},
    )
    @replica_read
    def get(self, request: Request, *, using: str) -> Response:
        heal_if_embedded()
        rows: ProjectedStates | QuerySet
        if connections[using].vendor == "postgresql" and not names_a_filter(request, DealFilter):
            rows = ProjectedStates(using=using)
        else:
            # The state as text, decoded by orjson: model instances and the JSON field's
            # json.loads cost more than the query.
            queryset = self.filter_queryset(self.get_queryset().using(using))
            rows = queryset.values_list("updated_at", Cast("state", TextField()))
        page = self.paginate_queryset(rows)  # type: ignore[arg-type]
        assert page is not None
        return self.get_paginated_response(json_values((row[1] for row in page), request))

    @extend_schema(
        operation_id="deals_open",
        summary="Open a deal",
        description=(
            "The body is a `DealOpened` event's fields. 201 with the deal's state (replayed, "
            "so it does not wait for the projection) and its `Location`. A retry with the same "
            "`Idempotency-Key` and body returns the same deal and opens no other."
        ),
        request=OpenDealSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: Deal, **problem_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        body = parse_body(OpenDealSerializer, request)
        key = idempotency_key(request)
        # The body is the event's fields themselves: errors name them at the top level.
        appended = open_deal(**body, actor=request.user.username, idempotency_key=key, fields_at="")
        # The state right after the opening: the same body when a retry is answered.
        state = replay.replay_events(appended.events, deal_id=appended.stream_id).state
        location = request.build_absolute_uri(f"{request.path}{appended.stream_id}/")
        return Response(state_json(state), status=201, headers={"Location": location})


class DealDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="deals_retrieve",
        summary="A deal's current state",
        description=(
            "From the projection. With `min_version`, when the projection is behind that "
            "version (or has no row yet) the state is replayed from the stream instead, so a "
            "client reads its own writes. With a read replica, the replica answers unless it "
            "has not replayed `min_version` yet; then the primary does."
        ),
        parameters=[DealQuerySerializer],
        responses={200: Deal, **problem_responses(400, 404, *AUTHENTICATED)},
    )
    @replica_read
    def get(self, request: Request, deal_id: UUID, *, using: str) -> Response:
        # Most reads name no version: building the serializer for nothing cost 0.08 ms a request.
        min_version = (
            parse_query(DealQuerySerializer, request).get("min_version", 0)
            if request.query_params
            else 0
        )
        heal_if_embedded(deal_id)
        row = _projected_state(deal_id, using)
        if row is not None and row[0] >= min_version:
            return Response(json_values([row[1]], request)[0])
        # A replica that has not replayed min_version yet: the primary answers instead.
        require_version(deal_id, min_version, using)
        replayed = replay.state(deal_id, using=using)
        if replayed.state is None:
            raise DealNotFound(deal_id)
        return Response(deal_json(replayed.state))


_DEAL_ID = DealState._meta.get_field("deal")
# Written out rather than built by the ORM, whose compiling of this one-row read cost more
# than the query and was the largest part of the view.
_PROJECTED_STATE = PreparedStatement(
    "projected_state",
    "SELECT {version}, CAST({state} AS text) FROM {table} "
    "WHERE {deal} = %s AND {state} IS NOT NULL".format(
        version=DealState._meta.get_field("version").column,
        state=DealState._meta.get_field("state").column,
        table=DealState._meta.db_table,
        deal=_DEAL_ID.column,
    ),
    ["uuid"],
)


def _projected_state(deal_id: UUID, using: str) -> tuple[int, str] | None:
    """The read model's version and state (its stored JSON text) of the deal, or None if it
    has no state yet."""
    connection = connections[using]
    with connection.cursor() as cursor:
        _PROJECTED_STATE.execute(cursor, [_DEAL_ID.get_db_prep_value(deal_id, connection)])
        return cursor.fetchone()


class DealEventsView(BodyRequired, APIView):
    permission_classes = [CanEdit]

    @extend_schema(
        operation_id="deals_events_list",
        summary="A deal's stream, in version order",
        description=(
            "Events with version above `after_version`, `limit` at a time (at most 1000); "
            "`next` links the following page."
        ),
        parameters=[StreamQuerySerializer],
        responses={200: StreamPageSerializer, **problem_responses(400, 404, *AUTHENTICATED)},
    )
    @replica_read
    def get(self, request: Request, deal_id: UUID, *, using: str) -> Response:
        query = parse_query(StreamQuerySerializer, request)
        _require_deal(deal_id, using)
        limit = min(query["limit"], STREAM_MAX_LIMIT)
        events = read_stream(deal_id, query["after_version"], limit=limit, using=using)
        next_url = None
        if len(events) == limit:
            params = urlencode({"after_version": events[-1].version, "limit": limit})
            next_url = request.build_absolute_uri(f"{request.path}?{params}")
        return Response({"results": [event_json(e) for e in events], "next": next_url})

    @extend_schema(
        operation_id="deals_events_append",
        summary="Append one event, or several atomically",
        description=(
            "One event (`type`, `data`, `occurred`, `source`, `expected_version`) or several "
            '(`{"expected_version": n, "events": [...]}`), all or none. `expected_version` '
            "is required (422 `invalid_event` naming it when missing); when the deal has moved "
            "on it is 409 `version_conflict` with `current_version`."
        ),
        request=PolymorphicProxySerializer(
            component_name="AppendRequest",
            serializers=[AppendOneSerializer, AppendManySerializer],
            resource_type_field_name=None,
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: AppendedSerializer,
            **problem_responses(400, 404, 409, 413, 422, *AUTHENTICATED),
        },
    )
    def post(self, request: Request, deal_id: UUID) -> Response:
        if isinstance(request.data, Mapping) and "events" in request.data:
            body = parse_body(AppendManySerializer, request)
            appended = record_events(
                deal_id=deal_id,
                events=[ProposedEvent(**event) for event in body["events"]],
                expected_version=body["expected_version"],
                actor=request.user.username,
                idempotency_key=idempotency_key(request),
            )
        else:
            body = parse_body(AppendOneSerializer, request)
            appended = record_event(
                deal_id=deal_id,
                **body,
                actor=request.user.username,
                idempotency_key=idempotency_key(request),
            )
        return Response(
            {
                "events": [event_json(e) for e in appended.events],
                "version": appended.version,
            },
            status=201,
        )


class DealStateView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="deals_state",
        summary="A deal's state replayed: as of a date, as known at a time",
        description=(
            "DOMAIN.md's rule: the events recorded by `known_at`, with their retractions and "
            "corrections, whose period starts on or before `as_of`. `state` is null where the "
            "deal had not opened. `known_at` is inclusive to the millisecond (the precision of "
            "`recorded_at`). Readers may use `as_of`; `known_at` needs the auditor role "
            "(403 otherwise)."
        ),
        parameters=[StateQuerySerializer],
        responses={200: ReplayedStateSerializer, **problem_responses(400, 404, *AUTHENTICATED)},
    )
    @replica_read
    def get(self, request: Request, deal_id: UUID, *, using: str) -> Response:
        query = parse_query(StateQuerySerializer, request)
        known_at = query.get("known_at")
        replayed = replay.state(
            deal_id,
            as_of=query.get("as_of"),
            known_at=known_at_moment(request, known_at),
            using=using,
        )
        return Response(
            {
                "deal": str(deal_id),
                "as_of": replayed.as_of.isoformat() if replayed.as_of else None,
                "known_at": format_api_time(known_at) if known_at else None,
                "version": replayed.version,
                "uncertain": replayed.uncertain,
                "state": state_json(replayed.state),
            }
        )


def known_at_moment(request: Request, known_at: datetime | None) -> datetime | None:
    """A `known_at` a client asked for, as replay takes it: auditors only (403 otherwise), and
    covering its whole millisecond, as the API shows `recorded_at` (`replay.to_the_millisecond`).
    """
    if known_at is None:
        return None
    if not has_role(request.user, Role.AUDITOR):
        raise PermissionDenied("`known_at` needs the auditor role.")
    return replay.to_the_millisecond(known_at)


class DealTimelineView(APIView):
    permission_classes = [CanAudit]

    @extend_schema(
        operation_id="deals_timeline",
        summary="Every event with the state after it and the fields it changed",
        responses={200: TimelineSerializer, **problem_responses(400, 404, *AUTHENTICATED)},
    )
    @replica_read
    def get(self, request: Request, deal_id: UUID, *, using: str) -> Response:
        refuse_any_query(request)
        entries = replay.timeline(deal_id, using=using)
        return Response(
            {
                "deal": str(deal_id),
                "version": entries[-1].event.version,
                "entries": [
                    {
                        "event": event_json(entry.event),
                        "state": state_json(entry.state_after),
                        "changed": entry.changed,
                    }
                    for entry in entries
                ],
            }
        )
