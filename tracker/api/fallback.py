"""Requests for paths under /api/ that no route matches, whatever DEBUG says.

A path that differs from a route's only by a missing trailing slash or by upper-case hex in a
UUID is served by that route's view, as if the canonical path had been asked for: a client that
drops the slash keeps its body (CommonMiddleware's APPEND_SLASH would redirect, losing it, or
raise under DEBUG), and UUIDs are case-insensitive (RFC 9562). Any other path is 404
`not_found` as problem details; Django uses `handler404` only when DEBUG is off.

Only canonical paths are in the OpenAPI schema: this is a plain Django view, which
drf-spectacular does not document.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from .problems import handler404

# A whole path segment shaped like a UUID, in any case.
_UUID_SEGMENT = re.compile(r"(?<=/)[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?=/|\Z)")


def canonical_path(path: str) -> str:
    """The path with a trailing slash and its UUIDs in lower case."""
    path = _UUID_SEGMENT.sub(lambda match: match.group(0).lower(), path)
    return path if path.endswith("/") else path + "/"


# Exempt here so that the view it hands over to decides: DRF's views check CSRF themselves,
# for session-authenticated requests only, and a token client never sends a CSRF token.
@csrf_exempt
def unmatched(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Serve a loosely written canonical path with its view; otherwise 404 problem details."""
    canonical = canonical_path(request.path_info)
    if canonical != request.path_info:
        try:
            match = resolve(canonical)
        except Resolver404:
            match = None
        if match is not None and match.func is not unmatched:
            # The view sees the canonical path, so the links and `Location` it builds are too.
            script_name = request.path[: len(request.path) - len(request.path_info)]
            request.path_info = canonical
            request.path = script_name + canonical
            request.resolver_match = match
            return match.func(request, *match.args, **match.kwargs)
    return handler404(request)
