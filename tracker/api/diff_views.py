"""What changed in a deal between two points in time, and the events that explain it."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.deals.diff import deal_diff

from .deal_views import known_at_moment, parse_query
from .permissions import CanRead
from .replica import replica_read
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
    @replica_read
    def get(self, request: Request, deal_id: UUID, *, using: str) -> Response:
        query = parse_query(DiffQuerySerializer, request)
        found = deal_diff(
            deal_id,
            from_as_of=query.get("from_as_of"),
            from_known_at=known_at_moment(request, query.get("from_known_at")),
            to_as_of=query.get("to_as_of"),
            to_known_at=known_at_moment(request, query.get("to_known_at")),
            using=using,
        )
        return Response(DiffSerializer(found).data)
