"""Imports of published registers: what each edition was, who imported it, what it appended.

The importer (`deals.registers.importer`) records one `RegisterImport` per file and one
`ImportedEvent` per event it appended; these views only read them, and the events themselves
from the event store, in the API's event shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.deals.models import ImportedEvent, RegisterImport
from tracker.deals.roles import Role, has_role
from tracker.eventstore.models import Event

from .deal_views import parse_query
from .filters import KnownParametersOnly
from .pagination import UtcTimePagination
from .schema import AUTHENTICATED, problem_responses
from .serializers import (
    ImportDetailSerializer,
    ImportQuerySerializer,
    ImportSerializer,
    event_json,
)

EVENTS_MAX_LIMIT = 1000


class CanSeeImports(BasePermission):
    """Editors (who import) and auditors (who check what an edition changed)."""

    code = "permission_denied"
    message = "This needs the editor or auditor role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, Role.EDITOR) or has_role(request.user, Role.AUDITOR)


class ImportPagination(UtcTimePagination):
    # The newest first, by when they started (an import that stopped has no `finished_at`);
    # the id breaks ties.
    ordering = ("-started_at", "id")


class ImportListView(KnownParametersOnly, generics.ListAPIView):
    permission_classes = [CanSeeImports]
    serializer_class = ImportSerializer
    pagination_class = ImportPagination

    def get_queryset(self) -> QuerySet[RegisterImport]:
        # The refused rows may be thousands; the list shows only how many.
        return RegisterImport.objects.defer("refused")

    @extend_schema(
        operation_id="imports_list",
        summary="Imports of published registers, newest first (editor, auditor)",
        description=(
            "Each import of a register edition: the edition, the file's SHA-256, who imported "
            "it and when, what it counted, how many rows it refused and the register names "
            "it could not resolve. Pages linked by `next` and `previous`."
        ),
        responses={200: ImportSerializer(many=True), **problem_responses(400, *AUTHENTICATED)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ImportDetailView(APIView):
    permission_classes = [CanSeeImports]

    @extend_schema(
        operation_id="imports_retrieve",
        summary="One import: its refused rows and the events it appended (editor, auditor)",
        description=(
            "The import as listed, with every refused row (line, deal, reason) and the events "
            "it appended in ledger order (`position`), `limit` at a time after "
            "`after_position`; `events_next` links the following page."
        ),
        parameters=[ImportQuerySerializer],
        responses={
            200: ImportDetailSerializer,
            **problem_responses(400, 404, *AUTHENTICATED),
        },
    )
    def get(self, request: Request, import_id: UUID) -> Response:
        query = parse_query(ImportQuerySerializer, request)
        found = RegisterImport.objects.filter(id=import_id).first()
        if found is None:
            raise NotFound(f"No import {import_id}.")
        limit = min(query["limit"], EVENTS_MAX_LIMIT)
        appended = ImportedEvent.objects.filter(register_import=found).values("event_id")
        events = list(
            Event.objects.filter(
                event_id__in=appended, position__gt=query["after_position"]
            ).order_by("position")[:limit]
        )
        next_url = None
        if len(events) == limit:
            params = urlencode({"after_position": events[-1].position, "limit": limit})
            next_url = request.build_absolute_uri(f"{request.path}?{params}")
        body = ImportSerializer(found).data
        body["refused"] = found.refused
        body["events"] = [event_json(e) for e in events]
        body["events_next"] = next_url
        return Response(body)
