"""Reference data: organisations (editable by editors) and the event catalogue."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.deals import history
from tracker.deals.errors import UnknownEventType
from tracker.deals.events import EVENT_TYPES, json_schemas
from tracker.deals.models import Organisation

from .filters import KnownParametersOnly, OrganisationFilter, ProblemFilterBackend
from .pagination import OrganisationPagination
from .parsers import BodyRequired
from .permissions import CanEdit, CanRead
from .replica import ReplicaReads
from .schema import AUTHENTICATED, problem_responses
from .serializers import EventTypeListSerializer, EventTypeSerializer, OrganisationSerializer

READ_ERRORS = problem_responses(400, *AUTHENTICATED)
WRITE_ERRORS = problem_responses(400, 413, 422, *AUTHENTICATED)


@extend_schema_view(
    get=extend_schema(
        operation_id="organisations_list",
        summary="Organisations, by name",
        description="Filter by `kind`, `country` (ISO 3166-1 alpha-2) and `search` in the name.",
        responses={200: OrganisationSerializer(many=True), **READ_ERRORS},
    ),
    post=extend_schema(
        operation_id="organisations_create",
        summary="Add an organisation (editor)",
        description="`country` must be an ISO 3166-1 alpha-2 code and `parent` an existing id; "
        "otherwise 422 `invalid_event` naming the field.",
        responses={201: OrganisationSerializer, **WRITE_ERRORS},
    ),
)
class OrganisationListView(
    ReplicaReads, KnownParametersOnly, BodyRequired, generics.ListCreateAPIView
):
    permission_classes = [CanEdit]
    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    filter_backends = [ProblemFilterBackend]
    filterset_class = OrganisationFilter
    pagination_class = OrganisationPagination

    def perform_create(self, serializer: Any) -> None:
        # Recorded in the organisation's history as this user's edit through the API.
        with history.edited_by(self.request.user.get_username(), via="api"):
            serializer.save()


@extend_schema_view(
    get=extend_schema(
        operation_id="organisations_retrieve",
        summary="One organisation",
        responses={200: OrganisationSerializer, **problem_responses(404, *AUTHENTICATED)},
    ),
    patch=extend_schema(
        operation_id="organisations_update",
        summary="Change an organisation (editor)",
        responses={
            200: OrganisationSerializer,
            **problem_responses(400, 404, 413, 422, *AUTHENTICATED),
        },
    ),
)
class OrganisationDetailView(ReplicaReads, BodyRequired, generics.RetrieveUpdateAPIView):
    permission_classes = [CanEdit]
    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    lookup_url_kwarg = "organisation_id"
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer: Any) -> None:
        # Recorded in the organisation's history as this user's edit through the API.
        with history.edited_by(self.request.user.get_username(), via="api"):
            serializer.save()


class EventTypeListView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="event_types_list",
        summary="The event catalogue",
        description="Each type, its current schema version and the JSON Schema of its `data`.",
        responses={200: EventTypeListSerializer, **problem_responses(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        return Response({"results": [_entry(name, item) for name, item in json_schemas().items()]})


class EventTypeDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="event_types_retrieve",
        summary="One event type",
        parameters=[
            OpenApiParameter(
                "name", str, OpenApiParameter.PATH, enum=sorted(EVENT_TYPES), description="A type."
            )
        ],
        responses={200: EventTypeSerializer, **problem_responses(404, *AUTHENTICATED)},
    )
    def get(self, request: Request, name: str) -> Response:
        catalogue = json_schemas()
        if name not in catalogue:
            raise UnknownEventType(name)
        return Response(_entry(name, catalogue[name]))


def _entry(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": name, "schema_version": item["schema_version"], "schema": item["schema"]}
