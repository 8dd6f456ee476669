"""What changed in a deal between two points in time, and the events that explain it."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.deals.diff import deal_diff
from tracker.deals.roles import Role, has_role

from .deal_views import _inclusive, parse_query
from .permissions import CanRead
from .schema import AUTHENTICATED, problem_responses
from .serializers import DiffQuerySerializer, DiffSerializer


class DealDiffView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="deals_diff",
        summary="What differs between two replays of a deal, and which events explain it",
        description=(
            "Each end is a point of `/state/` (`as_of`, `known_at`; an omitted one is now), "
            "replayed by DOMAIN.md's rule. `changes` are JSON Patch operations on JSON "
            "Pointer paths that turn `from`'s state into `to`'s (`version` and `updated_at` "
            "are not compared), each with the events that moved its value on the way from "
            "one point to the other: those recorded between the two `known_at` moments "
            "(a retraction or correction with the event it `names`), and the facts whose "
            "period starts, or ends, between the two `as_of` dates. Readers may use `as_of`; "
            "`known_at` needs the auditor role (403 otherwise), as on `/state/`."
        ),
        parameters=[DiffQuerySerializer],
        responses={200: DiffSerializer, **problem_responses(400, 404, *AUTHENTICATED)},
    )
    def get(self, request: Request, deal_id: UUID) -> Response:
        query = parse_query(DiffQuerySerializer, request)
        asks_known_at = "from_known_at" in query or "to_known_at" in query
        if asks_known_at and not has_role(request.user, Role.AUDITOR):
            raise PermissionDenied("`known_at` needs the auditor role.")
        found = deal_diff(
            deal_id,
            from_as_of=query.get("from_as_of"),
            from_known_at=_inclusive(query.get("from_known_at")),
            to_as_of=query.get("to_as_of"),
            to_known_at=_inclusive(query.get("to_known_at")),
        )
        return Response(DiffSerializer(found).data)
