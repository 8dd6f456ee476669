"""Every error the API returns, as RFC 9457 problem details with a stable `code` (API.md).

One table, `KINDS`, says which status and title each code has. An exception reaches a code in
one of two ways:

- its class (or a base class) is in `CODE_BY_CLASS`: the place for exceptions from Django, DRF
  and the database, whose own codes are not the API's;
- it has a string attribute `code` that is a key of `KINDS`: every domain error does
  (`VersionConflict.code == "version_conflict"`), so a new app's errors need no entry here as
  long as their codes are the contract's. `register()` adds a class whose code differs.

Field errors come from the exception's `errors` (objects with `field` and `message`), or from
an extractor in `ERRORS_BY_CLASS`. Anything else is a 500 that is logged and says nothing about
its cause: the goal is that none happens.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import exceptions as django_exceptions
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import set_rollback

from tracker.eventstore.errors import (
    IdempotencyKeyReused,
    InvalidCursor,
    UnstorableValue,
    VersionConflict,
)

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:deal-tracker:problem:"
API_PATH_PREFIXES = ("/api/", "/health/")


@dataclass(frozen=True, slots=True)
class ProblemKind:
    status: int
    title: str
    extra: tuple[str, ...] = ()
    """Attributes of the exception copied into the body (e.g. `current_version`)."""
    fixed_detail: str | None = None
    """When set, the detail shown instead of the exception's message, which may hold internals."""


KINDS: dict[str, ProblemKind] = {
    "malformed_request": ProblemKind(400, "Malformed request"),
    "not_authenticated": ProblemKind(401, "Not authenticated"),
    "permission_denied": ProblemKind(403, "Permission denied"),
    "not_found": ProblemKind(404, "Not found"),
    "method_not_allowed": ProblemKind(405, "Method not allowed"),
    "not_acceptable": ProblemKind(406, "Not acceptable"),
    "version_conflict": ProblemKind(409, "Version conflict", extra=("current_version",)),
    "payload_too_large": ProblemKind(413, "Payload too large"),
    "unsupported_media_type": ProblemKind(415, "Unsupported media type"),
    "invalid_event": ProblemKind(422, "Invalid event"),
    # The store's message names its key, which is scoped to the user (`u<id>:…`): not the
    # client's own key, and an internal detail.
    "idempotency_key_reused": ProblemKind(
        422,
        "Idempotency key reused",
        fixed_detail=(
            "This Idempotency-Key was first used for a different request; "
            "send a new key for a new request."
        ),
    ),
    "throttled": ProblemKind(429, "Too many requests"),
    "internal_error": ProblemKind(
        500, "Internal error", fixed_detail="The server failed to handle the request."
    ),
    "unavailable": ProblemKind(
        503, "Service unavailable", fixed_detail="The database is unavailable; nothing was written."
    ),
}

CODE_BY_CLASS: dict[type[BaseException], str] = {
    VersionConflict: "version_conflict",
    IdempotencyKeyReused: "idempotency_key_reused",
    InvalidCursor: "malformed_request",
    UnstorableValue: "invalid_event",
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "not_authenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    django_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    Http404: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
    drf_exceptions.ValidationError: "invalid_event",
    django_exceptions.RequestDataTooBig: "payload_too_large",
    django_exceptions.TooManyFieldsSent: "malformed_request",
    django_exceptions.TooManyFilesSent: "malformed_request",
    django_exceptions.BadRequest: "malformed_request",
    # A connection that cannot be made or was lost: the database is down, not the request bad.
    OperationalError: "unavailable",
    InterfaceError: "unavailable",
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


def register(exception: type[BaseException], code: str) -> None:
    """Map an exception class to one of the contract's codes (one line per class)."""
    if code not in KINDS:
        raise ValueError(f"{code!r} is not a problem code of the API")
    CODE_BY_CLASS[exception] = code


def _unstorable_errors(exc: BaseException) -> list[FieldProblem]:
    assert isinstance(exc, UnstorableValue)
    return [FieldProblem(exc.path, exc.reason)]


def _validation_errors(exc: BaseException) -> list[FieldProblem]:
    assert isinstance(exc, drf_exceptions.ValidationError)
    return list(_flatten(exc.detail, ""))


ERRORS_BY_CLASS: dict[type[BaseException], Callable[[BaseException], list[FieldProblem]]] = {
    UnstorableValue: _unstorable_errors,
    drf_exceptions.ValidationError: _validation_errors,
}


class MalformedRequest(drf_exceptions.ParseError):
    """A request the API cannot read: query parameters or body of the wrong shape."""

    default_code = "malformed_request"

    def __init__(self, detail: str, errors: Iterable[FieldProblem] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)

    @classmethod
    def from_serializer_errors(cls, detail: str, errors: Any) -> MalformedRequest:
        return cls(detail, _flatten(errors, ""))


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception a view raises becomes problem details."""
    request = context.get("request")
    code = code_for(exc)
    if code == "internal_error":
        logger.exception("Unexpected error handling %s", _describe(request), exc_info=exc)
    elif code == "unavailable":
        logger.error("Database unavailable handling %s: %s", _describe(request), exc)
    body = problem_body(exc, code, instance=getattr(request, "path", None))
    set_rollback()
    response = Response(body, status=body["status"], headers=_headers(exc))
    renderer = getattr(request, "accepted_renderer", None)
    if renderer is None or isinstance(renderer, JSONRenderer):
        response.content_type = PROBLEM_CONTENT_TYPE
    return response


def code_for(exc: BaseException) -> str:
    """The contract's code for an exception; `internal_error` when it has none."""
    for klass in type(exc).__mro__:
        if klass in CODE_BY_CLASS:
            if klass is drf_exceptions.ValidationError and _is_top_level_shape_error(exc):
                return "malformed_request"
            return CODE_BY_CLASS[klass]
    own = getattr(exc, "code", None)
    if isinstance(own, str) and own in KINDS:
        return own
    if isinstance(exc, drf_exceptions.APIException):
        default = exc.default_code
        if isinstance(default, str) and default in KINDS:
            return default
    return "internal_error"


def problem_body(exc: BaseException, code: str, *, instance: str | None = None) -> dict[str, Any]:
    kind = KINDS[code]
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": kind.title,
        "status": kind.status,
        "detail": kind.fixed_detail or _detail(exc, code),
        "code": code,
        "errors": [
            {"field": error.field, "message": error.message} for error in _errors(exc, code)
        ],
    }
    if instance:
        body["instance"] = instance
    for name in kind.extra:
        if hasattr(exc, name):
            body[name] = getattr(exc, name)
    return body


def _detail(exc: BaseException, code: str) -> str:
    if code == "payload_too_large":
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return f"The request body is over the limit of {limit} bytes."
    if isinstance(exc, drf_exceptions.ValidationError):
        if code == "malformed_request":
            return "The request body has the wrong shape."
        return "The request failed validation; see errors."
    if isinstance(exc, drf_exceptions.APIException):
        return str(exc.detail)
    message = str(exc)
    return message or KINDS[code].title


def _errors(exc: BaseException, code: str) -> list[FieldProblem]:
    if KINDS[code].fixed_detail is not None:
        return []
    for klass in type(exc).__mro__:
        if klass in ERRORS_BY_CLASS:
            return ERRORS_BY_CLASS[klass](exc)
    return [_field_problem(error) for error in getattr(exc, "errors", None) or ()]


def _field_problem(error: Any) -> FieldProblem:
    if isinstance(error, Mapping):
        return FieldProblem(str(error.get("field", "")), str(error.get("message", "")))
    if isinstance(error, tuple) and len(error) == 2:
        return FieldProblem(str(error[0]), str(error[1]))
    return FieldProblem(str(getattr(error, "field", "")), str(getattr(error, "message", error)))


def _flatten(detail: Any, path: str) -> Iterable[FieldProblem]:
    """DRF's nested error detail as (dotted path, message) pairs; `[i]` for list items."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if isinstance(key, int):
                # A list serializer's errors, keyed by the failing items' indexes.
                yield from _flatten(value, f"{path}[{key}]")
            elif key == "non_field_errors":
                yield from _flatten(value, path)
            else:
                yield from _flatten(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list):
        if all(not isinstance(item, Mapping | list) for item in detail):
            for item in detail:
                yield FieldProblem(path, str(item))
        else:
            for index, item in enumerate(detail):
                if item:
                    yield from _flatten(item, f"{path}[{index}]")
    else:
        yield FieldProblem(path, str(detail))


def _is_top_level_shape_error(exc: BaseException) -> bool:
    """A serializer given a list or a string where it wants an object: the body's shape."""
    if not isinstance(exc, drf_exceptions.ValidationError):
        return False
    codes = exc.get_codes()
    if not isinstance(codes, Mapping) or set(codes) != {"non_field_errors"}:
        return False
    return set(codes["non_field_errors"]) <= {"invalid", "not_a_list"}


def _headers(exc: BaseException) -> dict[str, str]:
    headers = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if isinstance(exc, drf_exceptions.Throttled) and wait:
        headers["Retry-After"] = str(int(wait))
    return headers


def _describe(request: Any) -> str:
    if request is None:
        return "a request"
    return f"{getattr(request, 'method', '?')} {getattr(request, 'path', '?')}"


# --- Django-level handlers (errors raised outside DRF views) --------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIXES)


def _problem_response(request: HttpRequest, exc: BaseException, code: str) -> HttpResponse:
    body = problem_body(exc, code, instance=request.path)
    return JsonResponse(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Bad requests outside DRF views, e.g. a body over the limit read by Django itself."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    error = exception or django_exceptions.BadRequest()
    return _problem_response(request, error, code_for(error))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    error = exception or django_exceptions.PermissionDenied()
    return _problem_response(request, error, "permission_denied")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Unknown paths under /api/ (including ids that are not UUIDs) as problem details."""
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return _problem_response(request, Http404(f"No resource at {request.path}."), "not_found")


def handler500(request: HttpRequest) -> HttpResponse:
    """Uncaught errors outside DRF views; Django calls this inside its `except` block."""
    if not _is_api(request):
        return defaults.server_error(request)
    error = sys.exc_info()[1] or Exception()
    code = "unavailable" if code_for(error) == "unavailable" else "internal_error"
    return _problem_response(request, error, code)
