"""OpenAPI helpers: the problem-details responses every endpoint documents."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse

from .problems import KINDS, PROBLEM_CONTENT_TYPE
from .serializers import ProblemSerializer

_WHEN = {
    400: "Malformed request (`malformed_request`).",
    401: "No or invalid credentials (`not_authenticated`).",
    403: "The user lacks the role (`permission_denied`).",
    404: "No such resource (`not_found`).",
    409: "`expected_version` is stale (`version_conflict`, with `current_version`).",
    413: "Body over the configured limit (`payload_too_large`).",
    422: (
        "Fails validation (`invalid_event`) or reuses an idempotency key "
        "(`idempotency_key_reused`)."
    ),
    429: "Over the rate limit (`throttled`); see Retry-After.",
    503: "The database is down; nothing was written (`unavailable`).",
}
AUTHENTICATED = (401, 403, 429, 503)


def problem_responses(*statuses: int) -> dict[Any, OpenApiResponse]:
    """`responses` entries for extend_schema: each status as `application/problem+json`."""
    known = {kind.status for kind in KINDS.values()}
    responses: dict[Any, OpenApiResponse] = {}
    for status in statuses:
        if status not in known:
            raise ValueError(f"no problem kind has status {status}")
        responses[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
            response=ProblemSerializer, description=_WHEN.get(status, "")
        )
    return responses
